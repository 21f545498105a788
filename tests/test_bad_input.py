"""Bad input gets a clear error and loses nothing.

Every case is checked twice: through the Python API (a specific :class:`MvError` subclass) and
through the real ``mv`` command (non-zero exit, one stderr line naming the file/object, no
traceback). After every failed write: no ref moved, no new visible object, nothing left in
``.mv/tmp``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import (
    RawTensor,
    RepoState,
    assert_one_line_error,
    assert_unchanged,
    files_of,
    header_file,
    json_object_bytes,
    rand_bytes,
    raw_safetensors,
    run_mv,
    save_st,
    tmp_leftovers,
)

import mvstore
from mvstore import codec
from mvstore.codec import KIND_STRUCT
from mvstore.errors import (
    CorruptObject,
    FileChanged,
    InvalidObject,
    InvalidRefName,
    InvalidSafetensors,
    MvError,
    ObjectNotFound,
)
from mvstore.ids import hash_bytes
from mvstore.ops.tensors import manifest_of


@pytest.fixture
def committed(work: Path) -> Path:
    """A repository with one good commit (a safetensors file with one chunked tensor, a config)."""
    save_st(work / "model.safetensors", {"w": torch.randn(64, 64), "b": torch.zeros(64)})
    (work / "config.json").write_text('{"hidden": 64}\n')
    mvstore.Repo.init(work).commit("good")
    return work


# --- repository and revision errors --------------------------------------------------------------------


def test_not_a_repository(tmp_path: Path) -> None:
    d = tmp_path / "plain"
    d.mkdir()
    with pytest.raises(mvstore.NotARepository):
        mvstore.Repo(d)
    for args in (["status"], ["log"], ["commit", "-m", "x"], ["rev-parse", "HEAD"], ["stats"]):
        cp = run_mv(*args, cwd=d, check=False)
        assert_one_line_error(cp, str(d))
    assert list(d.iterdir()) == []


def test_unknown_revision(committed: Path) -> None:
    repo = mvstore.Repo(committed)
    for rev in ("nope", "HEAD~1", "HEAD^2", "deadbeef", "v9", "abc"):
        with pytest.raises(mvstore.RevisionNotFound):
            repo.resolve(rev)
    for args in (["rev-parse", "nope"], ["checkout", "nope"], ["log", "nope"], ["export", "nope", "out"],
                 ["ls", "nope"], ["cat", "HEAD:missing.txt"], ["diff", "nope", "HEAD"]):
        cp = run_mv(*args, cwd=committed, check=False)
        assert_one_line_error(cp, "nope" if "nope" in args else "missing.txt")
    assert not (committed / "out").exists()


def test_unborn_head(work: Path) -> None:
    run_mv("init", cwd=work)
    cp = run_mv("log", cwd=work, check=False)
    assert_one_line_error(cp, "HEAD")


def _forge_commits_with_shared_prefix(root: Path) -> tuple[str, str]:
    """Write two real commit objects whose ids share their first 4 hex digits (birthday search)."""
    repo = mvstore.Repo(root)
    r = repo.repository
    tree = r.commit_object(mvstore.ObjectId.from_hex(repo.resolve("HEAD"))).tree
    seen: dict[str, tuple[mvstore.ObjectId, bytes]] = {}
    for i in range(100_000):
        raw = codec.pack({"v": 1, "type": "commit", "tree": bytes(tree), "parents": [], "author": "a <a@b>",
                          "time": 1_700_000_000 + i, "tz": 0, "message": f"forged {i}", "meta": {}})
        oid = hash_bytes(raw)
        if oid.hex()[:4] in seen:
            break
        seen[oid.hex()[:4]] = (oid, raw)
    other_id, other_raw = seen[oid.hex()[:4]]
    with r.store.transaction() as txn:
        txn.put(oid, raw, KIND_STRUCT)
        txn.put(other_id, other_raw, KIND_STRUCT)
    return oid.hex(), other_id.hex()


def test_ambiguous_prefix(committed: Path) -> None:
    a, b = _forge_commits_with_shared_prefix(committed)
    prefix = a[:4]
    repo = mvstore.Repo(committed)
    with pytest.raises(mvstore.AmbiguousRevision) as ei:
        repo.resolve(prefix)
    assert a[:16] in str(ei.value) and b[:16] in str(ei.value)
    line = assert_one_line_error(run_mv("rev-parse", prefix, cwd=committed, check=False), prefix)
    assert a[:12] in line and b[:12] in line
    # A longer prefix that tells them apart resolves.
    n = next(i for i in range(4, 64) if a[i] != b[i]) + 1
    assert repo.resolve(a[:n]) == a
    assert run_mv("rev-parse", b[:n], cwd=committed).stdout.strip() == b


def test_prefix_only_names_commits_and_tags(committed: Path) -> None:
    repo = mvstore.Repo(committed)
    head = repo.resolve("HEAD")
    assert repo.resolve(head[:4]) == head
    assert repo.resolve(head[:10]) == head
    with pytest.raises(mvstore.RevisionNotFound):
        repo.resolve(head[:3])  # below the 4-digit minimum
    # A chunk (data object) and the tree share the id space but are never what a prefix means.
    m = manifest_of(repo.repository, head, "model.safetensors")
    chunk = m.tensor("w").chunks[0].id.hex()
    tree = repo.repository.commit_object(mvstore.ObjectId.from_hex(head)).tree.hex()
    for oid in (chunk, tree):
        if oid[:8] != head[:8]:
            with pytest.raises(mvstore.RevisionNotFound):
                repo.resolve(oid[:8])


def test_nothing_to_commit(committed: Path) -> None:
    before = RepoState.of(committed)
    with pytest.raises(mvstore.NothingToCommit):
        mvstore.Repo(committed).commit("again")
    assert_one_line_error(run_mv("commit", "-m", "again", cwd=committed, check=False), "nothing to commit")
    assert_unchanged(committed, before)


def test_nothing_to_commit_in_empty_folder(work: Path) -> None:
    repo = mvstore.Repo.init(work)
    with pytest.raises(mvstore.NothingToCommit):
        repo.commit("empty")


# --- invalid safetensors files ---------------------------------------------------------------------------


def _t(name: str, dtype: str = "F32", shape: tuple[int, ...] = (2,), data: bytes | None = None) -> RawTensor:
    from mvstore.formats.safetensors import element_bytes

    return RawTensor(name, dtype, shape, bytes(element_bytes(dtype, shape)) if data is None else data)


def _entry(dtype: str, shape: list, offsets: list) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


def _many_empty_tensors(n: int) -> bytes:
    body = ",".join(f'"t{i}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}' for i in range(n))
    return header_file(("{" + body + "}").encode())


BAD_FILES: dict[str, object] = {
    "bad_json": header_file(b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}  ', bytes(8)),
    "not_an_object": header_file(b"[1, 2, 3]", b""),
    "not_utf8": header_file(b'{"\xff\xfe": 1}', b""),
    "header_past_eof": header_file(b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', bytes(8), length=1000),
    "huge_header_claim": struct.pack("<Q", 2**62) + b"{}" + bytes(64),
    "header_above_cap": struct.pack("<Q", 200_000_000) + b"{" + b" " * 100,
    "zero_header_length": struct.pack("<Q", 0) + bytes(16),
    "too_short": b"\x05\x00\x00",
    "offsets_out_of_range": raw_safetensors([_t("w", shape=(4,), data=bytes(8))], offsets={"w": [0, 16]}),
    "offsets_negative": raw_safetensors([_t("w")], offsets={"w": [-8, 0]}),
    "offsets_reversed": raw_safetensors([_t("w")], offsets={"w": [8, 0]}),
    "overlapping": raw_safetensors([_t("a"), _t("b"), _t("c", shape=(1,))], offsets={"b": [4, 12]}),
    "gap": raw_safetensors([_t("a"), _t("b")], offsets={"b": [12, 20]}, trailing=bytes(4)),
    "unknown_dtype": header_file(json_object_bytes([("w", _entry("F128", [2], [0, 32]))]), bytes(32)),
    "dtype_not_string": header_file(json_object_bytes([("w", _entry(7, [2], [0, 8]))]), bytes(8)),
    "shape_times_dtype_mismatch": header_file(json_object_bytes([("w", _entry("F32", [3], [0, 8]))]), bytes(8)),
    "negative_dim": header_file(json_object_bytes([("w", _entry("F32", [-2], [0, 8]))]), bytes(8)),
    "float_offsets": header_file(json_object_bytes([("w", _entry("F32", [2], [0.0, 8.0]))]), bytes(8)),
    "f4_odd_elements": header_file(json_object_bytes([("w", _entry("F4", [3], [0, 2]))]), bytes(2)),
    "extra_field": header_file(json_object_bytes([("w", _entry("F32", [2], [0, 8]) | {"x": 1})]), bytes(8)),
    "duplicate_names": header_file(
        json_object_bytes([("w", _entry("F32", [2], [0, 8])), ("w", _entry("F32", [2], [8, 16]))]), bytes(16)
    ),
    "trailing_bytes": raw_safetensors([_t("w")], trailing=b"extra"),
    "metadata_not_strings": header_file(json_object_bytes([("__metadata__", {"step": 5})]), b""),
    "too_many_tensors": lambda: _many_empty_tensors(300_000),  # built lazily: 20 MB
    "deeply_nested": header_file(b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
    "name_too_long": raw_safetensors([_t("n" * 5000)]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_invalid_safetensors(committed: Path, case: str) -> None:
    name = f"bad_{case}.safetensors"
    # A new, valid file that sorts first: its objects are staged before the bad file is read.
    (committed / "a_new_blob.dat").write_bytes(rand_bytes(50_000, sorted(BAD_FILES).index(case)))
    content = BAD_FILES[case]
    (committed / name).write_bytes(content() if callable(content) else content)
    before = RepoState.of(committed)
    t0 = time.monotonic()
    with pytest.raises(InvalidSafetensors) as ei:
        mvstore.Repo(committed).commit("bad")
    assert time.monotonic() - t0 < 10, "a hostile header must be rejected cheaply"
    assert name in str(ei.value)
    assert_unchanged(committed, before)

    cp = run_mv("commit", "-m", "bad", cwd=committed, check=False)
    assert_one_line_error(cp, name)
    assert_unchanged(committed, before)


def test_invalid_safetensors_in_subfolder_via_paths(committed: Path) -> None:
    (committed / "sub").mkdir()
    (committed / "sub" / "x.safetensors").write_bytes(BAD_FILES["duplicate_names"])
    before = RepoState.of(committed)
    cp = run_mv("commit", "-m", "bad", "sub", cwd=committed, check=False)
    assert_one_line_error(cp, "sub/x.safetensors", "duplicate")
    assert_unchanged(committed, before)


# --- corrupt objects -------------------------------------------------------------------------------------


def _object_path(root: Path, oid_hex: str) -> Path:
    return root / ".mv" / "objects" / oid_hex[:2] / oid_hex[2:]


def _flip_byte(p: Path, offset: int = -1) -> None:
    data = bytearray(p.read_bytes())
    data[offset] ^= 0x01
    os.chmod(p, 0o644)
    p.write_bytes(bytes(data))


def test_corrupt_chunk_detected_on_every_read(committed: Path, tmp_path: Path) -> None:
    repo = mvstore.Repo(committed)
    head = repo.resolve("HEAD")
    w = manifest_of(repo.repository, head, "model.safetensors").tensor("w")
    assert w is not None and len(w.chunks) == 1 and w.data is None
    bad = w.chunks[0].id.hex()
    _flip_byte(_object_path(committed, bad))
    before = RepoState.of(committed)

    with pytest.raises(CorruptObject, match=bad):
        mvstore.Repo(committed).load_state_dict("HEAD")
    with pytest.raises(CorruptObject, match=bad):
        mvstore.Repo(committed).tensor("w")
    assert mvstore.Repo(committed).tensor("b").shape == (64,)  # an intact (inline) tensor still loads
    with pytest.raises(CorruptObject, match=bad):
        mvstore.Repo(committed).export("HEAD", tmp_path / "exp")
    assert not (tmp_path / "exp").exists()
    assert [p.name for p in tmp_path.iterdir() if "mvtmp" in p.name] == []
    with pytest.raises(CorruptObject, match=bad):
        mvstore.Repo(committed).read_file("HEAD", "model.safetensors")

    (committed / "model.safetensors").unlink()
    with pytest.raises(CorruptObject, match=bad):
        mvstore.Repo(committed).checkout("HEAD", force=True)
    assert not (committed / "model.safetensors").exists()
    assert [p.name for p in committed.iterdir() if "mvtmp" in p.name] == []

    assert_one_line_error(run_mv("export", "HEAD", tmp_path / "exp2", cwd=committed, check=False), bad)
    assert_one_line_error(run_mv("checkout", "-f", "HEAD", cwd=committed, check=False), bad)
    assert_one_line_error(run_mv("cat", "HEAD:model.safetensors", cwd=committed, check=False), bad)
    assert not (tmp_path / "exp2").exists()
    assert_unchanged(committed, before)


def test_corrupt_structured_objects(committed: Path) -> None:
    repo = mvstore.Repo(committed)
    head = repo.resolve("HEAD")
    tree = repo.repository.commit_object(mvstore.ObjectId.from_hex(head)).tree.hex()
    _flip_byte(_object_path(committed, tree), offset=-3)
    with pytest.raises(CorruptObject, match=tree):
        mvstore.Repo(committed).checkout("HEAD", force=True)
    assert_one_line_error(run_mv("ls", "HEAD", cwd=committed, check=False), tree)
    _flip_byte(_object_path(committed, head), offset=20)
    assert_one_line_error(run_mv("log", cwd=committed, check=False), head)


def test_truncated_and_missing_objects(committed: Path, tmp_path: Path) -> None:
    repo = mvstore.Repo(committed)
    head = repo.resolve("HEAD")
    chunk = manifest_of(repo.repository, head, "model.safetensors").tensor("w").chunks[0].id.hex()
    p = _object_path(committed, chunk)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptObject, match=chunk):
        mvstore.Repo(committed).export("HEAD", tmp_path / "a")
    with pytest.raises(CorruptObject, match=chunk):
        mvstore.Repo(committed).load_state_dict()
    p.unlink()
    with pytest.raises(ObjectNotFound, match=chunk):
        mvstore.Repo(committed).export("HEAD", tmp_path / "b")
    assert_one_line_error(run_mv("export", "HEAD", "c", cwd=committed, check=False), chunk)


def test_swapped_object_detected(committed: Path, tmp_path: Path) -> None:
    """A valid object file stored under the wrong id is a hash mismatch."""
    (committed / "other.safetensors").write_bytes(raw_safetensors([_t("z", shape=(2048,), data=rand_bytes(8192, 5))]))
    repo = mvstore.Repo(committed)
    repo.commit("two")
    head = repo.resolve("HEAD")
    w = manifest_of(repo.repository, head, "model.safetensors").tensor("w").chunks[0].id.hex()
    z = manifest_of(repo.repository, head, "other.safetensors").tensor("z").chunks[0].id.hex()
    assert len(_object_path(committed, w).read_bytes()) != 0
    shutil.copyfile(_object_path(committed, z), _object_path(committed, w))
    with pytest.raises(CorruptObject, match=w):
        mvstore.Repo(committed).export("HEAD", tmp_path / "x")


# --- files that change while being committed -----------------------------------------------------------

WRITER = r"""
import os, sys, time
path, mode = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR)
size = os.fstat(fd).st_size
print("ready", flush=True)
i = 0
deadline = time.time() + 60
while time.time() < deadline:
    if mode == "rewrite":
        os.pwrite(fd, bytes([i & 0xFF]) * 64, 4096 + (i * 1_048_573) % (size - 4096 - 64))  # past any header
    else:
        os.ftruncate(fd, size // 3)
        os.ftruncate(fd, size)
    i += 1
"""


def _with_writer(path: Path, mode: str, action):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), mode], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return action()
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(
    ("fname", "mode"),
    [("big.bin", "rewrite"), ("big.bin", "truncate"), ("model2.safetensors", "rewrite")],
)
def test_file_changing_during_commit(committed: Path, fname: str, mode: str) -> None:
    target = committed / fname
    if fname.endswith(".safetensors"):
        save_st(target, {f"t{i}": torch.randn(1024, 1024) for i in range(12)})  # 48 MiB
    else:
        target.write_bytes(rand_bytes(48 * 1024 * 1024, 9))

    def api_commit() -> FileChanged | None:
        try:
            mvstore.Repo(committed).commit("racing")
        except FileChanged as e:
            return e
        return None

    # The writer never stops, so a commit should always notice. A success is only possible if the
    # writer got no CPU during the whole read (then the file really was stable): retry that case.
    for _attempt in range(4):
        before = RepoState.of(committed)
        err = _with_writer(target, mode, api_commit)
        if err is not None:
            break
    else:
        pytest.fail("commit never noticed a file being rewritten by another process")
    assert fname in str(err)
    assert_unchanged(committed, before)

    for _attempt in range(4):
        before = RepoState.of(committed)
        cp = _with_writer(target, mode, lambda: run_mv("commit", "-m", "racing", cwd=committed, check=False))
        if cp.returncode != 0:
            break
    assert_one_line_error(cp, fname)
    assert_unchanged(committed, before)


# --- full disk and permission errors mid-commit -------------------------------------------------------------


def _limit_file_size() -> None:
    # RLIMIT_FSIZE applies to root too; Python ignores SIGXFSZ, so a write past it fails with EFBIG,
    # exactly like a full disk does (ENOSPC) half-way through writing an object.
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_full_disk_mid_commit(committed: Path) -> None:
    (committed / "a.bin").write_bytes(rand_bytes(300_000, 1))  # fits: staged first
    (committed / "big.safetensors").write_bytes(
        raw_safetensors([_t("w", "U8", (3 * 1024 * 1024,), rand_bytes(3 * 1024 * 1024, 2))])
    )
    before = RepoState.of(committed)
    cp = run_mv("commit", "-m", "too big", cwd=committed, check=False, preexec_fn=_limit_file_size)
    assert_unchanged(committed, before)
    line = assert_one_line_error(cp)
    assert "big.safetensors" in line or ".mv" in line, f"the message names neither the file nor the store: {line!r}"
    # and the same commit succeeds once there is room
    run_mv("commit", "-m", "fits now", cwd=committed)


DROP_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"]


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux) to drop root's DAC override")
@pytest.mark.parametrize("where", ["tmp", "objects", "source"])
def test_permission_error_mid_commit(committed: Path, where: str) -> None:
    """The tests run as root, which ignores file modes; dropping CAP_DAC_OVERRIDE makes them bite."""
    (committed / "new.bin").write_bytes(rand_bytes(200_000, 3))
    save_st(committed / "model.safetensors", {"w": torch.randn(64, 64), "b": torch.ones(64)})
    (committed / "z_unreadable.bin").write_bytes(rand_bytes(10_000, 4))
    before = RepoState.of(committed)
    if where == "source":
        locked, modes = [committed / "z_unreadable.bin"], (0o000, 0o644)
    else:
        d = committed / ".mv" / where
        locked = [d] + ([x for x in d.iterdir() if x.is_dir()] if where == "objects" else [])
        modes = (0o555, 0o755)
    for p in locked:
        os.chmod(p, modes[0])
    try:
        cp = run_mv("commit", "-m", "denied", cwd=committed, check=False, wrapper=DROP_DAC)
    finally:
        for p in locked:
            os.chmod(p, modes[1])
    after = RepoState.of(committed)
    assert after.head_file == before.head_file and after.refs == before.refs
    assert tmp_leftovers(committed) == []
    # Anything that did become visible is a complete, valid object.
    for rel in after.objects - before.objects:
        oid = mvstore.ObjectId.from_hex(rel.replace("/", ""))
        mvstore.Repo(committed).repository.store.read(oid)
    line = assert_one_line_error(cp, "ermission denied")
    assert ("z_unreadable.bin" if where == "source" else ".mv") in line
    run_mv("commit", "-m", "allowed", cwd=committed)


# --- ref names -------------------------------------------------------------------------------------------

BAD_REF_NAMES = ["../../x", "a..b", "-x", "x.lock", "a/../b", "/x", "x/", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[",
                 "a\\b", "@", "HEAD", ".hidden", "a//b", "x.", "a@{1}", "\x01", "", "a" * 300]


CLI_REF_NAMES = {"../../x", "a..b", "-x", "x.lock", "HEAD"}


@pytest.mark.parametrize("name", BAD_REF_NAMES)
def test_bad_ref_names_rejected(committed: Path, name: str) -> None:
    repo = mvstore.Repo(committed)
    before = RepoState.of(committed)
    outside = sorted(p.name for p in committed.parent.iterdir())
    with pytest.raises(InvalidRefName):
        repo.tag(name)
    with pytest.raises(InvalidRefName):
        repo.tag(name, message="annotated")
    with pytest.raises(InvalidRefName):
        repo.branch(name)
    if name in CLI_REF_NAMES:
        for args in (["tag", "--", name], ["branch", "--", name], ["switch", "-c", "--", name]):
            assert_one_line_error(run_mv(*args, cwd=committed, check=False))
    assert_unchanged(committed, before)
    assert sorted(p.name for p in committed.parent.iterdir()) == outside
    assert not (committed / "x").exists()


# --- hostile trees ---------------------------------------------------------------------------------------


def _forge_tree_branch(root: Path, path: str, branch: str = "evil") -> str:
    """A commit whose tree holds one inline file at ``path``, written with the store's transaction."""
    r = mvstore.Repo(root).repository
    tree_raw = codec.pack({"v": 1, "type": "tree",
                           "entries": [{"path": path, "kind": "inline", "size": 4, "data": b"evil"}]})
    tree_id = hash_bytes(tree_raw)
    commit_raw = codec.pack({"v": 1, "type": "commit", "tree": bytes(tree_id), "parents": [], "author": "x <x@x>",
                             "time": 0, "tz": 0, "message": "evil", "meta": {}})
    commit_id = hash_bytes(commit_raw)
    with r.store.transaction() as txn:
        txn.put(tree_id, tree_raw, KIND_STRUCT)
        txn.put(commit_id, commit_raw, KIND_STRUCT)
    r.refs.update("refs/heads/" + branch, commit_id, expected=None)
    return tree_id.hex()


EVIL_PATHS = ["../evil", "a/../../evil", "/tmp/mvstore-evil-abs", "./evil", "a//evil", "evil/", ".mv/HEAD",
              ".mv/objects/x", "a\\..\\evil", "evil\x00", "a/./b", ".."]


@pytest.mark.parametrize("path", EVIL_PATHS)
def test_hostile_tree_paths_rejected(committed: Path, tmp_path: Path, path: str) -> None:
    tree = _forge_tree_branch(committed, path)
    head_before = (committed / ".mv" / "HEAD").read_bytes()
    files_before = files_of(committed)
    repo = mvstore.Repo(committed)
    with pytest.raises(MvError) as ei:
        repo.checkout("evil", force=True)
    assert isinstance(ei.value, (CorruptObject, mvstore.errors.InvalidPath))
    assert tree in str(ei.value) or repr(path)[1:-1][:20] in str(ei.value)
    with pytest.raises((CorruptObject, mvstore.errors.InvalidPath)):
        repo.export("evil", tmp_path / "out")
    for args in (["checkout", "-f", "evil"], ["export", "evil", str(tmp_path / "out2")], ["ls", "evil"]):
        assert_one_line_error(run_mv(*args, cwd=committed, check=False))
    assert (committed / ".mv" / "HEAD").read_bytes() == head_before
    assert files_of(committed) == files_before
    assert not (committed.parent / "evil").exists() and not Path("/tmp/mvstore-evil-abs").exists()
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


def test_tree_cannot_write_into_git_dir(committed: Path) -> None:
    """``.git`` is never part of a snapshot, so a tree naming it is hostile (think ``.git/hooks``)."""
    (committed / ".git" / "hooks").mkdir(parents=True)
    _forge_tree_branch(committed, ".git/hooks/pre-commit")
    with pytest.raises(MvError):
        mvstore.Repo(committed).checkout("evil", force=True)
    assert not (committed / ".git" / "hooks" / "pre-commit").exists()


def test_checkout_refuses_to_write_through_a_symlinked_folder(committed: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, committed / "link")
    _forge_tree_branch(committed, "link/evil")
    with pytest.raises(mvstore.errors.InvalidPath):
        mvstore.Repo(committed).checkout("evil", force=True)
    assert list(outside.iterdir()) == []


def test_bad_meta_and_usage(committed: Path) -> None:
    (committed / "config.json").write_text('{"hidden": 65}\n')
    before = RepoState.of(committed)
    assert_one_line_error(run_mv("commit", "-m", "x", "--meta", "novalue", cwd=committed, check=False), "novalue")
    assert_one_line_error(run_mv("commit", "-m", "x", "--meta", "=1", cwd=committed, check=False))
    assert_one_line_error(run_mv("commit", "--no-such-option", cwd=committed, check=False))
    assert_one_line_error(run_mv("commit", "-m", "x", "../outside", cwd=committed, check=False), "outside")
    assert_one_line_error(run_mv("diff", "HEAD", "HEAD", "HEAD", cwd=committed, check=False))
    assert_one_line_error(run_mv("log", "-n", "-1", cwd=committed, check=False))
    assert_one_line_error(run_mv("-C", "/nonexistent/dir", "status", cwd=committed, check=False), "/nonexistent/dir")
    assert_unchanged(committed, before)
    assert json.loads(run_mv("status", "--json", cwd=committed).stdout)["modified"] == ["config.json"]


@pytest.mark.parametrize("fname", ["new\nline.txt", "tab\there.txt", "back\\slash.txt"])
def test_unstorable_file_names_give_one_line(committed: Path, fname: str) -> None:
    """Names a tree cannot hold are refused with one clean line (the newline must not split it)."""
    (committed / fname).write_text("x")
    before = RepoState.of(committed)
    with pytest.raises(MvError):
        mvstore.Repo(committed).commit("odd name")
    assert_one_line_error(run_mv("commit", "-m", "odd", cwd=committed, check=False))
    assert_unchanged(committed, before)


@pytest.mark.parametrize("paths", [["a", "a/b"], ["w", "w-x", "w/x/y"]])
def test_tree_with_a_file_that_is_also_a_folder_is_invalid(paths: list[str]) -> None:
    """No checkout could write such a tree: the decoder refuses it (docs/format.md, trees)."""
    raw = codec.pack({"v": 1, "type": "tree",
                      "entries": [{"path": p, "kind": "inline", "size": 1, "data": b"x"} for p in paths]})
    with pytest.raises(InvalidObject, match="both a file and a folder"):
        codec.decode_object(raw, "t")
    ok = codec.pack({"v": 1, "type": "tree",
                     "entries": [{"path": p, "kind": "inline", "size": 1, "data": b"x"} for p in paths[1:]]})
    assert len(codec.decode_object(ok, "t").entries) == len(paths) - 1  # type: ignore[union-attr]
