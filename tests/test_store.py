"""The storage layer: canonical codec, object envelope, local store transactions, refs, stat cache."""

from __future__ import annotations

import multiprocessing as mp
import os
import struct
import time
from pathlib import Path

import msgpack
import pytest
from _ref_racer import race
from conftest import assert_one_line_error, run_mv, tmp_leftovers
from hypothesis import given
from hypothesis import strategies as st

import mvstore
from mvstore import codec
from mvstore.codec import ENVELOPE_SIZE, KIND_DATA, KIND_STRUCT, envelope_header, parse_envelope
from mvstore.errors import CorruptObject, InvalidObject, LockHeld, RefConflict, RefExists
from mvstore.formats.safetensors import build_header
from mvstore.ids import ObjectId, hash_bytes
from mvstore.objects import Chunk, ChunkedBlob, Commit, SafetensorsManifest, Tag, TensorEntry, Tree, TreeEntry
from mvstore.refs import RefStore
from mvstore.statcache import RACY_NS, FileStat, StatCache
from mvstore.store.local import LocalObjectStore


def oid(n: int) -> ObjectId:
    return hash_bytes(n.to_bytes(8, "little"))


# --- canonical msgpack ---------------------------------------------------------------------------------------

SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@given(VALUES)
def test_canonical_round_trip(value: object) -> None:
    raw = codec.pack(value)
    assert codec.unpack(raw, "t") == value
    assert codec.pack(codec.unpack(raw, "t")) == raw


@given(st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1), min_size=2, max_size=8))
def test_key_order_does_not_change_the_bytes(d: dict[str, int]) -> None:
    reversed_d = dict(reversed(list(d.items())))
    assert codec.pack(d) == codec.pack(reversed_d)


NON_CANONICAL = {
    "unsorted map": msgpack.packb({"b": 1, "a": 2}),
    "uint16 for a small int": b"\xcd\x00\x01",
    "int64 for a small negative": b"\xd3" + struct.pack(">q", -1),
    "float32": b"\xca" + struct.pack(">f", 1.5),
    "str8 for a short string": b"\xd9\x01a",
    "map16 for a small map": b"\xde\x00\x01\xa1a\x01",
    "array16 for a small list": b"\xdc\x00\x01\x01",
}


@pytest.mark.parametrize("case", sorted(NON_CANONICAL))
def test_non_canonical_encodings_rejected(case: str) -> None:
    raw = NON_CANONICAL[case]
    msgpack.unpackb(raw)  # valid msgpack...
    with pytest.raises(InvalidObject, match="canonical"):
        codec.unpack(raw, "obj")  # ...but not the one encoding we accept


@pytest.mark.parametrize("raw", [b"\xc1", b"\x92\x01", codec.pack({"a": 1}) + b"\x00", b"", b"\x81\x01\x02"])
def test_invalid_msgpack_rejected(raw: bytes) -> None:
    with pytest.raises(CorruptObject):
        codec.unpack(raw, "obj")


def _manifest() -> SafetensorsManifest:
    h = build_header([("w", "F32", (2, 1024)), ("b", "F32", (2,))], {"format": "pt"})
    b, w = h.tensors  # the reference layout: same width, so by name
    assert (b.name, w.name) == ("b", "w")
    return SafetensorsManifest(
        size=h.file_size,
        header=h.header_bytes,
        tensors=(
            TensorEntry(b.name, b.dtype, b.shape, b.begin, b.end, (), bytes(8)),
            TensorEntry(w.name, w.dtype, w.shape, w.begin, w.end, (Chunk(oid(1), 4096), Chunk(oid(2), 4096))),
        ),
        metadata=(("format", "pt"),),
    )


OBJECTS = [
    Commit(oid(1), (oid(2),), "A <a@b>", 1_700_000_000, 60, "msg\nbody", (("loss", 2.5), ("step", 10), ("x", None))),
    Commit(oid(1), (), "A <a@b>", 0, -300, "", ()),
    Tree((
        TreeEntry("a.txt", "inline", 3, False, None, b"abc"),
        TreeEntry("b/c.safetensors", "safetensors", 10, False, oid(3)),
        TreeEntry("run.sh", "blob", 5000, True, oid(4)),
        TreeEntry("z.bin", "chunked", 9, False, oid(5)),
    )),
    Tree(()),
    ChunkedBlob(9, (Chunk(oid(6), 4), Chunk(oid(7), 5))),
    _manifest(),
    Tag(oid(1), "commit", "v1.0.0", "T <t@t>", 1_700_000_000, 0, "release"),
]


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: type(o).__name__)
def test_objects_round_trip(obj: codec.StoredObject) -> None:
    raw = codec.encode_object(obj)
    assert codec.decode_object(raw, "x") == obj
    assert codec.object_id(obj) == hash_bytes(raw)
    assert codec.encode_object(codec.decode_object(raw, "x")) == raw


def _map_of(obj: codec.StoredObject) -> dict:
    return codec.unpack(codec.encode_object(obj), "x")


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: type(o).__name__)
def test_unknown_fields_and_versions_rejected(obj: codec.StoredObject) -> None:
    m = _map_of(obj)
    for bad in ({**m, "extra": 1}, {**m, "v": 2}, {**m, "v": 0}, {k: v for k, v in m.items() if k != "v"},
                {**m, "type": "blob"}, {k: v for k, v in m.items() if k != "type"}):
        with pytest.raises(InvalidObject):
            codec.decode_object(codec.pack(bad), "x")


def test_mistyped_fields_rejected() -> None:
    commit = _map_of(OBJECTS[0])
    tree = _map_of(OBJECTS[2])
    blob = _map_of(OBJECTS[4])
    manifest = _map_of(OBJECTS[5])
    bad_maps = [
        {**commit, "time": "yesterday"},
        {**commit, "time": True},  # bool is not an int
        {**commit, "tree": b"short"},
        {**commit, "parents": [b"x" * 31]},
        {**commit, "meta": {"k": [1, 2]}},
        {**commit, "message": b"bytes"},
        {**tree, "entries": [tree["entries"][1], tree["entries"][0]]},  # unsorted
        {**tree, "entries": [tree["entries"][0], tree["entries"][0]]},  # duplicate
        {**tree, "entries": [{**tree["entries"][0], "size": 4}]},  # inline data length
        {**tree, "entries": [{**tree["entries"][0], "kind": "symlink"}]},
        {**tree, "entries": [{**tree["entries"][0], "size": -1}]},
        {**tree, "entries": [{**tree["entries"][1], "data": b"x"}]},  # both id and data
        {**tree, "entries": [{**tree["entries"][1], "extra": 1}]},
        {**blob, "size": 10},  # chunks do not add up
        {**blob, "chunks": [[bytes(oid(1)), -1]]},
        {**manifest, "size": manifest["size"] + 1},  # header and size disagree
        {**manifest, "tensors": manifest["tensors"][:1]},
        {**manifest, "tensors": [manifest["tensors"][0], {**manifest["tensors"][1], "shape": [2, 1023]}]},
        {**manifest, "tensors": [{**manifest["tensors"][0], "data": bytes(4)}, manifest["tensors"][1]]},
        {**manifest, "tensors": manifest["tensors"][::-1]},
        {**manifest, "tensors": [manifest["tensors"][0], {**manifest["tensors"][1], "chunks": [[bytes(oid(1)), 4096]]}]},
        {**manifest, "header": b'{"w": 1}'},
    ]
    for i, m in enumerate(bad_maps):
        with pytest.raises(InvalidObject):
            codec.decode_object(codec.pack(m), f"case {i}")


# --- the envelope ----------------------------------------------------------------------------------------


def test_envelope_round_trip() -> None:
    head = envelope_header(KIND_DATA, 1234)
    assert len(head) == ENVELOPE_SIZE == 16
    env = parse_envelope(head, "x")
    assert (env.kind, env.raw_size, env.encoding, env.params) == (KIND_DATA, 1234, 0, b"")


@pytest.mark.parametrize(
    ("name", "mutate"),
    [
        ("bad magic", lambda b: b"XXXX" + b[4:]),
        ("unknown encoding", lambda b: b[:4] + bytes([200]) + b[5:]),
        ("reserved encoding", lambda b: b[:4] + bytes([1]) + b[5:]),
        ("unknown kind", lambda b: b[:5] + bytes([9]) + b[6:]),
        ("truncated header", lambda b: b[:10]),
        ("truncated params", lambda b: b[:6] + struct.pack("<H", 100) + b[8:]),
        ("short payload", lambda b: b[:-1]),
        ("long payload", lambda b: b + b"\x00"),
        ("raw size lies", lambda b: b[:8] + struct.pack("<Q", 3) + b[16:]),
        ("flipped payload byte", lambda b: b[:-1] + bytes([b[-1] ^ 1])),
        ("empty file", lambda b: b""),
    ],
)
def test_corrupt_object_files(tmp_path: Path, name: str, mutate) -> None:
    store = LocalObjectStore(tmp_path / "objects", tmp_path / "tmp")
    payload = codec.encode_object(OBJECTS[0])
    data_oid, struct_oid = hash_bytes(b"some data bytes"), hash_bytes(payload)
    with store.transaction() as txn:
        txn.put(data_oid, b"some data bytes", KIND_DATA)
        txn.put(struct_oid, payload, KIND_STRUCT)
    assert store.read(data_oid) == b"some data bytes" and store.read(struct_oid, KIND_STRUCT) == payload
    for o in (data_oid, struct_oid):
        p = store.path(o)
        p.write_bytes(mutate(p.read_bytes()))
        with pytest.raises(CorruptObject, match=o.hex()):
            store.read(o)
    out = memoryview(bytearray(len(b"some data bytes")))
    with pytest.raises(CorruptObject, match=data_oid.hex()):
        store.read_into(data_oid, out)
    with pytest.raises(CorruptObject, match=data_oid.hex()):
        store.map_data(data_oid)


def test_read_checks_the_kind(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects", tmp_path / "tmp")
    payload = codec.encode_object(OBJECTS[0])
    o = hash_bytes(payload)
    with store.transaction() as txn:
        txn.put(o, payload, KIND_DATA)  # a struct's bytes stored as data
    with pytest.raises(CorruptObject):
        store.read(o, KIND_STRUCT)


# --- transactions --------------------------------------------------------------------------------------


def test_transaction_commit_and_abort(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects", tmp_path / "tmp")
    blobs = [os.urandom(1000 + i) for i in range(20)]
    ids = [hash_bytes(b) for b in blobs]
    with pytest.raises(RuntimeError), store.transaction() as txn:
        for o, b in zip(ids, blobs, strict=True):
            assert txn.put(o, b, KIND_DATA)
        assert not any(store.has(o) for o in ids), "nothing is visible before the transaction commits"
        assert len(list((tmp_path / "tmp").iterdir())) == 20
        raise RuntimeError("boom")
    assert not any(store.has(o) for o in ids)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / "objects").exists() or list(store.iter_ids()) == []

    with store.transaction() as txn:
        for o, b in zip(ids, blobs, strict=True):
            txn.put(o, b, KIND_DATA)
        assert not txn.put(ids[0], blobs[0], KIND_DATA), "staged twice"
    assert all(store.read(o) == b for o, b in zip(ids, blobs, strict=True))
    assert list((tmp_path / "tmp").iterdir()) == []
    assert sorted(store.iter_ids()) == sorted(ids)
    with store.transaction() as txn:
        assert not txn.put(ids[1], blobs[1], KIND_DATA), "already stored"
    assert txn.new_objects == 0 and txn.existing_objects == 1


# --- refs ---------------------------------------------------------------------------------------------------


@pytest.fixture
def refs(tmp_path: Path) -> RefStore:
    mv = tmp_path / ".mv"
    (mv / "refs" / "heads").mkdir(parents=True)
    (mv / "HEAD").write_text("ref: refs/heads/main\n")
    return RefStore(mv)


def test_ref_compare_and_swap(refs: RefStore) -> None:
    a, b, c = oid(1), oid(2), oid(3)
    refs.update("refs/heads/main", a, expected=None)
    assert refs.read("refs/heads/main") == a and refs.head().id == a
    with pytest.raises(RefExists):
        refs.update("refs/heads/main", b, expected=None)
    with pytest.raises(RefConflict):
        refs.update("refs/heads/main", c, expected=b)  # stale expectation
    assert refs.read("refs/heads/main") == a
    refs.update("refs/heads/main", b, expected=a)
    assert refs.read("refs/heads/main") == b
    refs.update("refs/tags/x/y", c, expected=None)
    assert refs.list("refs/tags/") == {"x/y": c}
    refs.update("refs/tags/x/y", None, expected=c)
    assert refs.read("refs/tags/x/y") is None
    assert [e[:2] for e in refs.reflog("refs/heads/main")] == [("0" * 64, a.hex()), (a.hex(), b.hex())]
    assert not list(refs.mvdir.rglob("*.lock"))


def test_held_lock(refs: RefStore, tmp_path: Path) -> None:
    refs.update("refs/heads/main", oid(1), expected=None)
    lock = refs.mvdir / "refs" / "heads" / "main.lock"
    lock.write_text("someone else\n")
    with pytest.raises(LockHeld, match="main.lock"):
        refs.update("refs/heads/main", oid(2), expected=oid(1))
    assert lock.read_text() == "someone else\n", "another process's lock is never removed"
    assert refs.read("refs/heads/main") == oid(1)
    lock.unlink()
    refs.update("refs/heads/main", oid(2), expected=oid(1))


def test_held_lock_through_the_cli(work: Path) -> None:
    repo = mvstore.Repo.init(work)
    (work / "a.txt").write_text("1")
    repo.commit("one")
    head = repo.resolve("HEAD")
    (work / "a.txt").write_text("2")
    lock = work / ".mv" / "refs" / "heads" / "main.lock"
    lock.write_text("")
    assert_one_line_error(run_mv("commit", "-m", "two", cwd=work, check=False), "main.lock")
    assert mvstore.Repo(work).resolve("HEAD") == head and lock.exists()
    assert tmp_leftovers(work) == []
    lock.unlink()
    run_mv("commit", "-m", "two", cwd=work)
    assert mvstore.Repo(work).resolve("HEAD~1") == head


def test_concurrent_ref_updates_exactly_one_wins(refs: RefStore) -> None:
    procs_n, rounds = 8, 6
    refs.update("refs/heads/main", oid(0), expected=None)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs_n)
    results = ctx.Queue()
    procs = [ctx.Process(target=race, args=(str(refs.mvdir), i, rounds, barrier, results)) for i in range(procs_n)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in range(procs_n * rounds)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    winners = []
    for r in range(rounds):
        this = [g for g in got if g[0] == r]
        assert len(this) == procs_n
        won = [g for g in this if g[2] == "won"]
        assert len(won) == 1, f"round {r}: {this}"
        winners.append(won[0][3])
    assert refs.read("refs/heads/main").hex() == winners[-1]
    log = refs.reflog("refs/heads/main")
    assert [e[1] for e in log[1:]] == winners
    assert all(log[i][1] == log[i + 1][0] for i in range(len(log) - 1)), "every move started from the previous value"
    assert not list(refs.mvdir.rglob("*.lock"))


# --- stat cache ----------------------------------------------------------------------------------------


def _past(path: Path, seconds: float = 10) -> None:
    t = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(t, t))


def test_racy_rule_in_the_cache(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 100)
    st = FileStat.of(os.stat(f))
    cache = StatCache(tmp_path / "index")
    entry = TreeEntry("f", "inline", 100, False, None, b"x" * 100)
    cache.record(entry, st, st.mtime_ns + RACY_NS // 2)  # recorded within the racy window
    assert cache.lookup("f", st) is None
    cache.record(entry, st, st.mtime_ns + RACY_NS + 1)
    assert cache.lookup("f", st) == entry
    cache.save()
    again = StatCache(tmp_path / "index")
    assert again.lookup("f", st) == entry
    other = FileStat(st.size, st.mtime_ns, st.ctime_ns + 1, st.ino, st.executable)
    assert again.lookup("f", other) is None
    (tmp_path / "index").write_bytes(b"garbage")
    assert StatCache(tmp_path / "index").lookup("f", st) is None  # a damaged cache only costs a re-hash


def test_status_does_not_trust_racy_entries(work: Path) -> None:
    repo = mvstore.Repo.init(work)
    f = work / "weights.bin"
    f.write_bytes(b"a" * 8000)
    # An mtime at or after the moment an entry is recorded (minus the racy window) is "racy": a
    # same-size rewrite in the same clock tick would keep the stat. Put it in the future so the
    # entry stays racy however slow this machine is.
    future = time.time_ns() + 60 * 1_000_000_000
    os.utime(f, ns=(future, future))
    repo.commit("one")
    assert repo.status().hashed_files == 1  # never trusted: re-hashed every time
    assert repo.status().hashed_files == 1
    # Rewrite with the same size and put the same mtime back: still detected.
    f.write_bytes(b"b" * 8000)
    os.utime(f, ns=(future, future))
    s = repo.status()
    assert s.modified == ["weights.bin"]
    # Once the mtime is older than the racy window before recording, the entry is trusted.
    from mvstore.cli.fast import RACY_NS

    past = time.time_ns() - 10 * RACY_NS
    os.utime(f, ns=(past, past))
    repo.status()
    assert repo.status().hashed_files == 0


def test_unchanged_folder_is_not_rehashed(work: Path) -> None:
    repo = mvstore.Repo.init(work)
    for i in range(5):
        (work / f"f{i}.bin").write_bytes(os.urandom(10_000 + i))
    (work / "sub").mkdir()
    (work / "sub" / "g.safetensors").write_bytes(
        struct.pack("<Q", 8) + b"{}      "
    )
    for p in work.rglob("*"):
        if p.is_file() and ".mv" not in p.parts:
            _past(p)
    repo.commit("one")
    s = repo.status()
    assert s.clean and s.hashed_files == 0
    assert repo.status().hashed_files == 0
    # commit of an unchanged folder: nothing hashed either
    with pytest.raises(mvstore.NothingToCommit):
        repo.commit("again")
    # one file changes (and is old again): exactly one re-hash, reported as modified
    (work / "f3.bin").write_bytes(os.urandom(10_003))
    _past(work / "f3.bin")
    s = repo.status()
    assert s.modified == ["f3.bin"] and s.hashed_files == 1
    assert repo.status().hashed_files == 0
    # a fresh cache (deleted index) re-hashes everything once, then trusts it again
    (work / ".mv" / "index").unlink()
    assert repo.status().hashed_files == 6
    assert repo.status().hashed_files == 0


def test_status_cache_does_not_hide_missing_objects(work: Path) -> None:
    """status records entries without storing objects; a later commit must still store them."""
    repo = mvstore.Repo.init(work)
    (work / "a.txt").write_text("a")
    repo.commit("one")
    (work / "big.bin").write_bytes(os.urandom(50_000))
    _past(work / "big.bin")
    assert repo.status().added == ["big.bin"]
    repo.commit("two")
    assert repo.read_file("HEAD", "big.bin") == (work / "big.bin").read_bytes()


def test_concurrent_commits_lose_nothing(work: Path) -> None:
    """Several ``mv commit`` processes at once: each either lands in the history or fails cleanly."""
    import json
    import subprocess

    from conftest import MV, cli_env

    repo = mvstore.Repo.init(work)
    (work / "a.txt").write_text("a")
    base = repo.commit("base")
    procs = [
        subprocess.Popen([MV, "commit", "--allow-empty", "--json", "-m", f"c{i}"], cwd=work, env=cli_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(6)
    ]
    won, lost = [], []
    for p in procs:
        out, err = p.communicate(timeout=120)
        if p.returncode == 0:
            won.append(json.loads(out)["id"])
        else:
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
            assert "lock" in err or "moved" in err, err
            lost.append(err)
    assert won, "at least the first commit lands"
    history = [e.id.hex() for e in mvstore.Repo(work).log()]
    assert sorted(history[:-1]) == sorted(won) and history[-1] == base, "every reported commit is in the history"
    assert tmp_leftovers(work) == []
