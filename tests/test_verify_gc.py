"""``mv verify``, ``mv gc`` and ``mv repair``: what they check, keep, remove and fix — locally and on
remotes (a local folder and the moto S3 server). The campaign files (test_crash, test_concurrency,
test_faults) break things on purpose; this file pins the commands' contracts."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from campaign import age_files, age_store, digests, head_commit, mv, verify_clean, write_model
from conftest import assert_one_line_error

import mvstore
from mvstore.codec import KIND_DATA
from mvstore.ids import ObjectId, hash_bytes
from mvstore.objects import SafetensorsManifest
from mvstore.repo import Repository

DAY = 86400


def _repo(tmp_path: Path, commits: int = 2, mb: float = 1.0) -> Path:
    work = tmp_path / "w"
    write_model(work, 0, mb)
    mv("init", cwd=work)
    mv("commit", "-m", "c0", cwd=work)
    for i in range(1, commits):
        write_model(work, i, mb, changed=[i % 4])
        mv("commit", "-m", f"c{i}", cwd=work)
    return work


def _manifest(repo: Repository, rev: str = "HEAD") -> tuple[ObjectId, SafetensorsManifest]:
    from mvstore.revparse import resolve_commit

    tree = repo.tree(repo.commit_object(resolve_commit(repo, rev)).tree)
    entry = tree.by_path()["model.safetensors"]
    assert entry.id is not None
    return entry.id, repo.manifest(entry.id)


def _chunk(repo: Repository, rev: str = "HEAD", tensor: str = "layer.1.weight") -> ObjectId:
    _mid, m = _manifest(repo, rev)
    t = m.tensor(tensor)
    assert t is not None and t.chunks
    return t.chunks[0].id


def _flip(path: Path, at: int = -1) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[at] ^= 0x10
    path.write_bytes(bytes(data))


def _garbage(repo: Repository, n: int, seed: int = 0) -> list[ObjectId]:
    import random

    r = random.Random(seed)
    out = []
    with repo.store.transaction() as txn:
        for _ in range(n):
            data = r.randbytes(2048)
            oid = hash_bytes(data)
            txn.put(oid, data, KIND_DATA)
            out.append(oid)
    return out


# -- verify -----------------------------------------------------------------------------------------


def test_verify_clean_repository(tmp_path: Path) -> None:
    work = _repo(tmp_path, 3)
    mv("tag", "v1.0.0", "-m", "annotated", cwd=work)
    cp = mv("verify", cwd=work)
    assert "match their ids" in cp.stdout and "3 commits" in cp.stdout
    report = verify_clean(work)
    assert report["problems"] == [] and report["dangling"] == [] and report["commits"] == 3
    assert report["hashed_bytes"] == 0  # the default trusts well-formed, correctly sized chunks
    full = verify_clean(work, "--full")
    assert full["hashed_bytes"] == full["data_bytes"] > 0
    rev = json.loads(mv("verify", "HEAD~1", "--json", cwd=work).stdout)
    assert rev["ok"] and rev["commits"] == 2 and rev["commit"] == mvstore.Repo(work).resolve("HEAD~1")


def test_verify_exit_codes_and_help(tmp_path: Path) -> None:
    work = _repo(tmp_path, 1)
    help_text = mv("verify", "--help", cwd=work).stdout
    assert "0 clean, 1 problems found" in help_text and "2 could not run" in help_text
    for cmd in ("gc", "repair"):
        assert "Usage" in mv(cmd, "--help", cwd=work).stdout
    cp = mv("verify", cwd=tmp_path, check=False)
    assert cp.returncode == 2
    assert_one_line_error(cp, "not an mvstore repository")
    cp = mv("verify", "no-such-rev", cwd=work, check=False)
    assert cp.returncode == 2
    assert_one_line_error(cp, "no-such-rev")
    repo = Repository.find(work)
    os.unlink(repo.store.path(_chunk(repo)))
    cp = mv("verify", cwd=work, check=False)
    assert cp.returncode == 1
    line = assert_one_line_error(cp, "missing", _chunk(repo).hex())
    assert "tensor layer.1.weight" in line  # says how it was reached
    assert "missing:" in cp.stdout
    bad = json.loads(mv("verify", "--json", cwd=work, check=False).stdout)
    assert not bad["ok"] and bad["problems"][0]["code"] == "missing"


def test_verify_rev_sees_only_what_it_reaches(tmp_path: Path) -> None:
    work = _repo(tmp_path, 2)
    repo = Repository.find(work)
    mv("switch", "-c", "side", cwd=work)
    write_model(work, 9, 1, changed=[3])
    mv("commit", "-m", "side", cwd=work)
    side_only = _chunk(repo, "side", "layer.3.weight")
    os.unlink(repo.store.path(side_only))
    assert mv("verify", "main", cwd=work).returncode == 0
    assert mv("verify", "side", cwd=work, check=False).returncode == 1
    assert mv("verify", cwd=work, check=False).returncode == 1


def test_verify_lists_dangling_objects(tmp_path: Path) -> None:
    work = _repo(tmp_path, 1)
    junk = _garbage(Repository.find(work), 3)
    report = verify_clean(work)
    assert sorted(d["id"] for d in report["dangling"]) == sorted(o.hex() for o in junk)
    assert all(d["kind"] == "data" for d in report["dangling"])
    assert "3 dangling" in mv("verify", cwd=work).stdout


def _finetune_series(tmp_path: Path, steps: int = 3) -> Path:
    """Checkpoints that differ by small updates (low mantissa bits): what repack stores as deltas."""
    import numpy as np
    from safetensors.numpy import save_file

    work = tmp_path / "w"
    work.mkdir()
    w = np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32)
    mv("init", cwd=work)
    for step in range(steps):
        save_file({"w": w, "b": np.zeros(16, np.float32)}, str(work / "model.safetensors"))
        mv("commit", "-m", f"step {step}", cwd=work)
        w = w + np.float32(1e-5) * np.random.default_rng(step + 1).standard_normal(w.shape, dtype=np.float32)
    return work


def test_verify_checks_delta_bases(tmp_path: Path) -> None:
    work = _finetune_series(tmp_path)
    mv("repack", cwd=work)
    report = verify_clean(work, "--full")
    assert report["dangling"] == []
    repo = Repository.find(work)
    bases = set()
    for oid, _s, _m in repo.store.scan():
        base = repo.store.delta_base(oid)
        if base is not None:
            bases.add(base)
    assert bases, "repack wrote no deltas"
    os.unlink(repo.store.path(next(iter(bases))))
    assert mv("verify", cwd=work, check=False).returncode == 1


# -- gc ---------------------------------------------------------------------------------------------


def test_gc_grace_period_dry_run_and_bytes(tmp_path: Path) -> None:
    work = _repo(tmp_path, 2)
    repo = Repository.find(work)
    before = digests(work)
    fresh = _garbage(repo, 4, seed=1)
    old = _garbage(repo, 6, seed=2)
    age_files([repo.store.path(o) for o in old], 21 * DAY)
    dry = json.loads(mv("gc", "--dry-run", "--json", cwd=work).stdout)
    assert dry["dry_run"] and dry["removed_objects"] == 6 and dry["kept_recent"] == 4
    assert all(repo.store.has(o) for o in old)  # a dry run changes nothing
    text = mv("gc", "--dry-run", cwd=work).stdout
    assert all(f"would remove {o.hex()}" in text for o in old)
    res = json.loads(mv("gc", "--json", cwd=work).stdout)
    assert res["removed_objects"] == 6 and res["removed_bytes"] == 6 * (2048 + 16)
    assert {r["id"] for r in res["removed"]} == {o.hex() for o in old}
    assert not any(repo.store.has(o) for o in old) and all(repo.store.has(o) for o in fresh)
    assert "Removed 0 unreachable objects" in mv("gc", cwd=work).stdout
    res = json.loads(mv("gc", "--prune=now", "--json", cwd=work).stdout)
    assert res["removed_objects"] == 4
    report = verify_clean(work, "--full")
    assert report["dangling"] == []
    assert digests(work) == before


def test_gc_prune_spellings(tmp_path: Path) -> None:
    from mvstore.errors import UsageError
    from mvstore.ops.gc import parse_expiry

    now = 1_700_000_000.0
    assert parse_expiry("2.weeks.ago", now) == now - 14 * DAY
    assert parse_expiry("3.days", now) == now - 3 * DAY
    assert parse_expiry("1.hour.ago", now) == now - 3600
    assert parse_expiry("90.minutes.ago", now) == now - 5400
    assert parse_expiry("2w", now) == now - 14 * DAY
    assert parse_expiry("now", now) == now
    assert parse_expiry("never", now) is None
    assert parse_expiry("@1600000000", now) == 1_600_000_000
    assert parse_expiry("2024-01-31T00:00:00+00:00", now) == 1706659200
    with pytest.raises(UsageError):
        parse_expiry("yesterday-ish", now)
    work = _repo(tmp_path, 1)
    assert_one_line_error(mv("gc", "--prune=soon", cwd=work, check=False), "cannot read the time")


def test_gc_roots_reflogs_remote_tracking_and_stages(tmp_path: Path) -> None:
    work = _repo(tmp_path, 1)
    repo = Repository.find(work)
    mv("switch", "-c", "experiment", cwd=work)
    write_model(work, 5, 1, changed=[2])
    mv("commit", "-m", "exp", cwd=work)
    exp_chunk = _chunk(repo, "experiment", "layer.2.weight")
    mv("switch", "main", cwd=work)
    mv("branch", "-d", "experiment", cwd=work)
    # a commit reachable only from a remote-tracking ref
    remote = tmp_path / "remote"
    other = tmp_path / "other"
    write_model(other, 7, 1, changed=[3])
    mv("init", cwd=other)
    mv("commit", "-m", "other", cwd=other)
    mv("push", str(remote), "main", cwd=other)
    mv("remote", "add", "origin", str(remote), cwd=work)
    mv("fetch", "origin", cwd=work)
    tracking = repo.refs.read("refs/remotes/origin/main")
    assert tracking is not None
    age_store(work, 30 * DAY)
    mv("gc", "--prune=now", cwd=work)
    assert repo.store.has(exp_chunk), "an object the reflog of a deleted branch names was removed"
    assert repo.store.has(tracking)
    verify_clean(work)
    # once the reflog entries expire, the deleted branch's objects go; remote-tracking refs stay roots
    res = json.loads(mv("gc", "--prune=now", "--expire-reflog=now", "--json", cwd=work).stdout)
    assert res["expired_reflog_entries"] > 0 and res["removed_objects"] > 0
    assert not repo.store.has(exp_chunk) and repo.store.has(tracking)
    assert verify_clean(work)["dangling"] == []


def test_gc_keeps_the_closure_of_recent_objects(tmp_path: Path) -> None:
    """An unreachable manifest written just now keeps its (old) chunks: a commit in progress."""
    from mvstore import codec
    from mvstore.codec import KIND_STRUCT
    from mvstore.objects import Chunk, ChunkedBlob

    work = _repo(tmp_path, 1)
    repo = Repository.find(work)
    chunks = _garbage(repo, 3, seed=5)
    age_files([repo.store.path(o) for o in chunks], 30 * DAY)
    blob = ChunkedBlob(3 * 2048, tuple(Chunk(o, 2048) for o in chunks))
    raw = codec.encode_object(blob)
    with repo.store.transaction() as txn:
        txn.put(hash_bytes(raw), raw, KIND_STRUCT)
    res = json.loads(mv("gc", "--prune=1.hour.ago", "--json", cwd=work).stdout)
    assert res["removed_objects"] == 0 and res["kept_recent"] == 4
    assert all(repo.store.has(o) for o in chunks)
    # reusing an object freshens it (what commit and fetch do): it is recent again
    old = _garbage(repo, 1, seed=6)[0]
    age_files([repo.store.path(old)], 30 * DAY)
    assert repo.store.freshen(old)
    assert json.loads(mv("gc", "--prune=1.hour.ago", "--json", cwd=work).stdout)["removed_objects"] == 0


def test_gc_puts_back_what_an_interrupted_gc_moved_aside(tmp_path: Path) -> None:
    work = _repo(tmp_path, 1)
    repo = Repository.find(work)
    victim = _chunk(repo)
    path = repo.store.path(victim)
    os.rename(path, path.with_name(path.name + ".gc-deadbeef"))  # as a gc killed mid-sweep leaves it
    cp = mv("verify", cwd=work, check=False)
    assert cp.returncode == 1 and "interrupted gc" in cp.stdout
    res = json.loads(mv("gc", "--json", cwd=work).stdout)
    assert res["restored"] == 1
    assert path.exists()
    verify_clean(work, "--full")


def test_gc_cleans_old_temp_files_only(tmp_path: Path) -> None:
    work = _repo(tmp_path, 1)
    tmp = work / ".mv" / "tmp"
    tmp.mkdir(exist_ok=True)
    (tmp / "abc-old").write_bytes(b"x" * 100)
    (tmp / "abc-new").write_bytes(b"y" * 10)
    stray = work / ".model.safetensors.mvtmp-0123abcd"  # a checkout killed mid-file
    stray.write_bytes(b"z" * 50)
    assert json.loads(mv("status", "--json", cwd=work).stdout)["clean"], "checkout temp files are not work"
    age_files([tmp / "abc-old", stray], 30 * DAY)
    res = json.loads(mv("gc", "--json", cwd=work).stdout)
    assert res["removed_tmp"] == 2 and res["removed_tmp_bytes"] == 150
    assert not (tmp / "abc-old").exists() and not stray.exists() and (tmp / "abc-new").exists()


def test_gc_refuses_a_damaged_repository(tmp_path: Path) -> None:
    work = _repo(tmp_path, 2)
    repo = Repository.find(work)
    junk = _garbage(repo, 2)
    age_store(work, 30 * DAY)
    mid, _m = _manifest(repo, "HEAD~1")
    os.unlink(repo.store.path(mid))
    cp = mv("gc", "--prune=now", cwd=work, check=False)
    assert_one_line_error(cp, mid.hex(), "damaged")
    assert all(repo.store.has(o) for o in junk), "gc deleted objects while refusing"
    (work / ".mv" / "refs" / "heads" / "broken").write_text("not a hash\n")
    cp = mv("gc", cwd=work, check=False)
    assert_one_line_error(cp, "refs/heads/broken")


def test_gc_keeps_delta_bases(tmp_path: Path) -> None:
    work = _finetune_series(tmp_path)
    mv("repack", cwd=work)
    age_store(work, 30 * DAY)
    mv("gc", "--prune=now", cwd=work)
    report = verify_clean(work, "--full")
    assert report["dangling"] == []
    for rev in ("HEAD", "HEAD~1", "HEAD~2"):
        mvstore.Repo(work).export(rev, tmp_path / f"out-{rev.replace('~', '-')}")


def test_stale_ref_lock_has_a_clear_way_out(tmp_path: Path) -> None:
    work = _repo(tmp_path, 1)
    lock = work / ".mv" / "refs" / "heads" / "main.lock"
    lock.write_text("")  # what a process killed inside a ref update leaves
    age_files([lock], 3 * 3600)
    write_model(work, 3, 1, changed=[1])
    cp = mv("commit", "-m", "blocked", cwd=work, check=False)
    assert_one_line_error(cp, "main.lock exists", "h ago", "if none is running, delete that file")
    out = mv("verify", cwd=work).stdout
    assert "main.lock" in out and "delete it" in out  # verify points at it too, still exit 0
    mv("gc", "--prune=now", cwd=work)
    assert lock.exists(), "gc must never steal a lock"
    lock.unlink()
    mv("commit", "-m", "unblocked", cwd=work)
    verify_clean(work)


# -- repair -----------------------------------------------------------------------------------------


def test_repair_from_the_upstream(tmp_path: Path) -> None:
    work = _repo(tmp_path, 2)
    files = digests(work)
    remote = tmp_path / "remote"
    mv("remote", "add", "origin", str(remote), cwd=work)
    mv("push", cwd=work)
    repo = Repository.find(work)
    chunk = _chunk(repo, "HEAD~1", "layer.1.weight")
    os.unlink(repo.store.path(chunk))
    mid, _m = _manifest(repo)
    _flip(repo.store.path(mid), 40)
    flipped = _chunk(repo, "HEAD~1", "layer.0.weight")
    _flip(repo.store.path(flipped))
    assert mv("verify", cwd=work, check=False).returncode == 1
    res = json.loads(mv("repair", "--full", "--json", cwd=work).stdout)
    assert res["ok"] and res["remote"] == "origin" and res["fetched"] >= 3
    assert set(res["quarantined"]) == {mid.hex(), flipped.hex()}
    assert (work / ".mv" / "quarantine" / mid.hex()).exists()
    verify_clean(work, "--full")
    mv("checkout", "HEAD~1", cwd=work)
    mv("checkout", "main", cwd=work)
    assert digests(work) == files
    assert "nothing to repair" in mv("repair", cwd=work).stdout


def test_repair_without_a_remote_says_so(tmp_path: Path) -> None:
    work = _repo(tmp_path, 1)
    repo = Repository.find(work)
    os.unlink(repo.store.path(_chunk(repo)))
    cp = mv("repair", cwd=work, check=False)
    assert cp.returncode == 1
    assert_one_line_error(cp, "still damaged", "no remote")
    cp = mv("verify", "--repair", cwd=work, check=False)
    assert_one_line_error(cp, "still damaged")


def test_repair_restores_a_corrupt_ref_from_its_reflog(tmp_path: Path) -> None:
    work = _repo(tmp_path, 2)
    head = head_commit(work)
    ref = work / ".mv" / "refs" / "heads" / "main"
    ref.write_bytes(b"\x00garbage\n")
    cp = mv("verify", cwd=work, check=False)
    assert_one_line_error(cp, "refs/heads/main", "corrupt")
    out = mv("repair", cwd=work).stdout
    assert "restored refs/heads/main" in out
    assert ref.read_text().strip() == head
    verify_clean(work)


# -- remotes ----------------------------------------------------------------------------------------


def _remote_setup(tmp_path: Path, url: str, options: dict[str, Any] | None = None) -> Path:
    work = _repo(tmp_path, 2, mb=3)
    from mvstore.remote.config import add_remote

    add_remote(Repository.find(work).config, "origin", url, options or {}, overwrite=True)
    mv("push", "origin", "main", cwd=work)
    mv("switch", "-c", "doomed", cwd=work)
    write_model(work, 42, 3, changed=[0, 1, 2, 3])
    (work / "big.bin").write_bytes(os.urandom(3 << 20))  # loose objects on the remote
    mv("commit", "-m", "doomed", cwd=work)
    mv("push", "origin", "doomed", cwd=work)
    mv("switch", "main", cwd=work)
    return work


@pytest.fixture(params=["folder", "moto"])
def remote_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, Any], dict[str, str]]:
    if request.param == "folder":
        return str(tmp_path / "remote"), {}, {}
    server = request.getfixturevalue("moto_s3")
    for k, v in server.env.items():
        monkeypatch.setenv(k, v)
    return (
        server.make_bucket() + "/m",
        {"client_kwargs": {"endpoint_url": server.endpoint_url}},
        dict(server.env),
    )


def test_remote_verify_and_gc(tmp_path: Path, remote_url: tuple[str, dict[str, Any], dict[str, str]]) -> None:
    from mvstore.ops.gc import gc_remote
    from mvstore.ops.sync import _layout, open_backend, resolve_remote

    url, options, env = remote_url
    work = _remote_setup(tmp_path, url, options)
    report = verify_clean(work, "--remote", "origin", env=env)
    assert report["dangling"] == [] and report["commits"] == 3
    full = verify_clean(work, "--remote", "origin", "--full", env=env)
    assert full["hashed_bytes"] == full["data_bytes"] > 0
    backend = open_backend(url, options)
    assert backend.delete("refs/heads/doomed")  # the branch is gone: its objects are garbage
    report = verify_clean(work, "--remote", "origin", env=env)
    assert report["dangling"], "objects of the deleted branch should be dangling"
    repo = Repository.find(work)
    layout = _layout(repo, resolve_remote(repo, "origin"))
    kept = gc_remote(repo, layout, "1.hour.ago")  # everything was just written: all recent
    assert kept.removed_objects == 0 and kept.kept_recent > 0
    res = json.loads(mv("gc", "--remote", "origin", "--prune=now", "--json", cwd=work, env=env).stdout)
    assert res["removed_objects"] > 0 and res["removed_bytes"] > 0
    assert verify_clean(work, "--remote", "origin", "--full", env=env)["dangling"] == []
    clone = tmp_path / "clone"
    mvstore_clone(url, clone, options)
    assert digests(clone) == digests(work)


def mvstore_clone(url: str, dest: Path, options: dict[str, Any]) -> None:
    from mvstore.ops.sync import clone

    clone(url, dest, options=options)


def test_remote_verify_finds_damage(tmp_path: Path) -> None:
    from mvstore.ops.sync import open_backend

    url = str(tmp_path / "remote")
    work = _remote_setup(tmp_path, url)
    backend = open_backend(url, {})
    loose = [n for n in backend.list("objects/")]
    assert loose
    data = bytearray(backend.read(loose[0]))
    data[-1] ^= 1
    backend.write_many({loose[0]: bytes(data)})
    assert mv("verify", "--remote", "origin", cwd=work).returncode == 0  # presence only by default
    cp = mv("verify", "--remote", "origin", "--full", cwd=work, check=False)
    assert cp.returncode == 1
    assert_one_line_error(cp, "does not match its id")
    pack = next(n for n in backend.list("packs/") if n.endswith(".pack"))
    backend.write_many({pack: backend.read(pack)[:100]})  # truncated
    cp = mv("verify", "--remote", "origin", cwd=work, check=False)
    assert cp.returncode == 1 and "truncated" in cp.stdout
    (Path(url) / "refs" / "heads" / "main").write_text("zz\n")
    cp = mv("verify", "--remote", "origin", cwd=work, check=False)
    assert "refs/heads/main is corrupt" in cp.stdout
    cp = mv("gc", "--remote", "origin", cwd=work, check=False)
    assert_one_line_error(cp, "corrupt")
    cp = mv("verify", "--remote", str(tmp_path / "nothing"), cwd=work, check=False)
    assert cp.returncode == 2
    assert_one_line_error(cp, "not an mvstore remote")


def test_push_freshens_reused_orphans(tmp_path: Path) -> None:
    """A push that reuses objects an interrupted push left (unreachable, old) makes them recent, so
    a concurrent ``gc --remote`` cannot delete them between the push's check and its ref update."""
    from mvstore.ops.gc import gc_remote
    from mvstore.ops.sync import _layout, open_backend, resolve_remote

    url = str(tmp_path / "remote")
    work = _repo(tmp_path, 1, mb=3)
    mv("remote", "add", "origin", url, cwd=work)
    mv("push", cwd=work)
    backend = open_backend(url, {})
    backend.delete("refs/heads/main")  # as if the ref update never happened
    files = [Path(url, n) for n in backend.list("objects/") + backend.list("packs/")]
    age_files(files, 30 * DAY)
    t0 = time.time()
    res = json.loads(mv("push", "origin", "main", "--json", cwd=work).stdout)
    assert res["objects"] == 0, "the orphans were reused, not re-uploaded"
    reused = [p for p in files if not p.name.endswith(".idx")]  # a pack's age counts from either file
    assert all(p.stat().st_mtime >= t0 - 1 for p in reused), "reused files were not made recent"
    repo = Repository.find(work)
    out = gc_remote(repo, _layout(repo, resolve_remote(repo, "origin")), "1.day.ago")
    assert out.removed_objects == 0
    verify_clean(work, "--remote", "origin", "--full")


def test_gc_keeps_a_delta_base_that_only_a_deleted_branch_reached(tmp_path: Path) -> None:
    """Reverse deltas point from a commit to its child: delete the child's branch and the parent's
    chunks still need the child's chunks as bases. gc must keep them (and verify must check them)."""
    work = _finetune_series(tmp_path, steps=1)
    before = digests(work)
    mv("switch", "-c", "exp", cwd=work)
    (work / "model.safetensors").unlink()
    import numpy as np
    from safetensors.numpy import save_file

    w = np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32)
    w = w + np.float32(1e-5) * np.random.default_rng(9).standard_normal(w.shape, dtype=np.float32)
    save_file({"w": w, "b": np.zeros(16, np.float32)}, str(work / "model.safetensors"))
    mv("commit", "-m", "child on exp", cwd=work)
    res = json.loads(mv("repack", "--json", cwd=work).stdout)
    assert res["deltas"] > 0
    mv("switch", "main", cwd=work)
    mv("branch", "-d", "exp", cwd=work)
    age_store(work, 30 * DAY)
    out = json.loads(mv("gc", "--prune=now", "--expire-reflog=now", "--json", cwd=work).stdout)
    assert out["removed_objects"] > 0  # the child's commit, tree and manifest go…
    report = verify_clean(work, "--full")  # …but not the chunks main's deltas are built on
    assert report["dangling"] == []
    mvstore.Repo(work).export("main", tmp_path / "out")
    assert digests(tmp_path / "out") == before


def test_stale_remote_ref_lock_has_a_clear_way_out(tmp_path: Path) -> None:
    """A push killed inside its ref update leaves ``<ref>.lock`` on a folder remote (found by the
    long crash campaign: every later push then failed with a misleading "moved on the remote")."""
    work = _repo(tmp_path, 1)
    remote = tmp_path / "remote"
    mv("remote", "add", "origin", str(remote), cwd=work)
    mv("push", cwd=work)
    lock = remote / "refs" / "heads" / "main.lock"
    lock.write_text(head_commit(work) or "")
    age_files([lock], 2 * 3600)
    write_model(work, 5, 1, changed=[1])
    mv("commit", "-m", "two", cwd=work)
    cp = mv("push", cwd=work, check=False)
    assert_one_line_error(
        cp, "main.lock exists", "another push is updating", "if none is running, delete that file"
    )
    assert "main.lock" in mv("verify", "--remote", "origin", cwd=work).stdout  # a warning, exit 0
    mv("gc", "--remote", "origin", "--prune=now", cwd=work)
    assert lock.exists(), "gc must never remove a lock"
    lock.unlink()
    mv("push", cwd=work)
    verify_clean(work, "--remote", "origin", "--full")
