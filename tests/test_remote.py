"""Remotes: push / fetch / pull / clone round trips, incremental transfers, compare-and-swap refs,
interrupted pushes, corrupt and hostile remotes — on every backend fixture in ``remote_url``."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

import mvstore
from mvstore.errors import CorruptObject, MvError, RefConflict
from mvstore.ops import sync
from mvstore.ops.sync import open_backend
from mvstore.remote.backend import RemoteError, UnsafeRemote
from mvstore.remote.config import add_remote
from mvstore.repo import Repository
from tests.conftest import assert_one_line_error, assert_same_files, files_of, run_mv, save_st


def _model(path: Path, seed: int, rows: int = 600, width: int = 256, changed: int | None = None) -> None:
    """A small HF-style folder: a big embedding (sub-chunked), layers, tiny tensors, config."""
    g = torch.Generator().manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    base = torch.Generator().manual_seed(0)
    sd = {
        "embed.weight": torch.randn(rows, width, generator=base) * 0.02,
        "layer.0.weight": torch.randn(width, width, generator=base) * 0.02,
        "layer.1.weight": torch.randn(width, width, generator=g if changed is not None else base) * 0.02,
        "norm.bias": torch.zeros(width),
    }
    save_file(sd, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "config.json").write_text(f'{{"hidden": {width}}}')


@dataclass
class Remote:
    """A remote under test: its URL, storage options (no secrets) and env for subprocesses."""

    kind: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    atomic: bool = True  # the server serialises conditional writes (moto does not)

    def backend(self) -> Any:
        return open_backend(self.url, self.options)

    def add_to(self, repo: Repository, name: str = "r") -> str:
        add_remote(repo.config, name, self.url, self.options, overwrite=True)
        return name


SERVER_KINDS = ["moto", "seaweed", "gcs"]


@pytest.fixture(params=["path", "file-url", *SERVER_KINDS])
def remote(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Remote:
    kind = request.param
    if kind == "path":
        return Remote(kind, str(tmp_path / "remote-store"))
    if kind == "file-url":
        return Remote(kind, f"file://{tmp_path / 'remote-store'}")
    if kind in ("moto", "seaweed"):
        server = request.getfixturevalue("moto_s3" if kind == "moto" else "seaweed_s3")
        for k, v in server.env.items():
            monkeypatch.setenv(k, v)  # credentials come from the environment, never the config
        url = server.make_bucket() + "/models/x"
        return Remote(kind, url, {"client_kwargs": {"endpoint_url": server.endpoint_url}}, server.env,
                      server.atomic_conditional_writes)
    server = request.getfixturevalue("fake_gcs")
    for k, v in server.env.items():
        monkeypatch.setenv(k, v)
    return Remote(kind, server.make_bucket() + "/models/x", dict(server.storage_options), server.env)


def _repo_with_two_commits(tmp_path: Path) -> tuple[Repository, Path]:
    work = tmp_path / "work"
    _model(work, 0)
    api = mvstore.Repo.init(work)
    api.commit("one")
    _model(work, 1, changed=1)
    api.commit("two")
    return api.repository, work


def _clone(remote: Remote, dest: Path, **kw: Any) -> tuple[Repository, sync.TransferResult]:
    return sync.clone(remote.url, dest, options=remote.options, **kw)


@pytest.mark.parametrize("kind", ["moto", "seaweed"])
def test_s3_http_requests_per_object(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Count the HTTP calls s3fs makes: one GET per fetched loose object (s3fs's default HEADs each
    object first), one HEAD per presence check (``fs.exists`` adds a listing for every missing key),
    and a no-op push or pull costs a handful of requests."""
    import collections

    import s3fs

    server = request.getfixturevalue("moto_s3" if kind == "moto" else "seaweed_s3")
    for k, v in server.env.items():
        monkeypatch.setenv(k, v)
    calls: collections.Counter[str] = collections.Counter()
    real = s3fs.S3FileSystem._call_s3

    async def counting(self: Any, method: str, *a: Any, **kw: Any) -> Any:
        calls[method] += 1
        return await real(self, method, *a, **kw)

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", counting)
    url = server.make_bucket() + "/m"
    work = tmp_path / "work"
    big = {f"big{i}": torch.randn(700_000) for i in range(3)}  # 2.8 MB each: pushed loose
    save_st(work / "model.safetensors", {**big, **{f"small{i}": torch.randn(50) for i in range(30)}})
    api = mvstore.Repo.init(work)
    api.commit("one")
    api.add_remote("origin", url, {"endpoint_url": server.endpoint_url})
    pushed = api.push("origin", ["main"], set_upstream=True)
    assert calls["head_object"] <= 3 + 4, calls  # one per big object checked, plus empty listings
    calls.clear()
    assert api.push().objects == 0
    assert sum(calls.values()) <= 5 and calls["head_object"] == 0, calls
    calls.clear()
    clone = mvstore.Repo.clone(url, tmp_path / "clone", options={"endpoint_url": server.endpoint_url})
    assert calls["head_object"] == 0, calls
    assert calls["get_object"] <= pushed.objects + 4, (calls, pushed.objects)
    assert_same_files(work, clone.path)
    calls.clear()
    assert clone.pull().objects == 0
    assert sum(calls.values()) <= 5 and calls["head_object"] == 0, calls


def test_push_clone_round_trip_byte_for_byte(tmp_path: Path, remote: Remote) -> None:
    repo, work = _repo_with_two_commits(tmp_path)
    name = remote.add_to(repo)
    res = sync.push(repo, name, ["main"])
    assert res.objects > 0 and not res.up_to_date
    again = sync.push(repo, name, ["main"])
    assert again.up_to_date and again.objects == 0
    assert again.requests <= 4  # marker + ref listing + ref read: no per-object round trips
    clone, res = _clone(remote, tmp_path / "clone")
    assert res.objects > 0
    assert_same_files(work, clone.root)
    assert Repository.find(clone.root).refs.head().branch == "main"
    assert mvstore.Repo(clone.root).log()[0].commit.message == "two"


def test_incremental_push_sends_only_new_objects(tmp_path: Path, remote: Remote) -> None:
    work = tmp_path / "work"
    _model(work, 0)
    api = mvstore.Repo.init(work)
    name = remote.add_to(api.repository)
    api.commit("one")
    first = sync.push(api.repository, name, ["main"])
    _model(work, 7, changed=1)  # only layer.1 changes
    api.commit("two")
    second = sync.push(api.repository, name, ["main"], compress=False)
    layer_bytes = 256 * 256 * 4
    # the changed tensor, the new manifest, tree and commit: nothing of the unchanged embedding
    assert layer_bytes <= second.raw_bytes <= layer_bytes * 1.05 + 64 * 1024
    assert second.objects < first.objects


def test_fetch_by_bare_hash_and_pin_mismatch(tmp_path: Path, remote: Remote) -> None:
    repo, _ = _repo_with_two_commits(tmp_path)
    sync.push(repo, remote.add_to(repo), ["main"])
    first = mvstore.Repo(repo.root).resolve("HEAD~1")
    other = mvstore.Repo.init(tmp_path / "other").repository
    name = remote.add_to(other)
    res = sync.fetch(other, name, [first])
    assert res.objects > 0
    assert other.commit_object(mvstore.ObjectId.from_hex(first)).message == "one"
    with pytest.raises(MvError):
        sync.fetch(other, name, ["f" * 64])  # a pin the remote does not have


def test_clone_rev_fetches_only_what_it_needs(tmp_path: Path, remote: Remote) -> None:
    repo, _work = _repo_with_two_commits(tmp_path)
    api = mvstore.Repo(repo.root)
    api.tag("v1.0.0", "HEAD~1")
    sync.push(repo, remote.add_to(repo), ["main", "v1.0.0"])
    _full, res_full = _clone(remote, tmp_path / "full")
    part, res_part = _clone(remote, tmp_path / "part", rev="v1.0.0")
    assert res_part.objects < res_full.objects
    sd = mvstore.Repo(part.root).load_state_dict("HEAD")
    assert torch.equal(sd["layer.1.weight"], api.load_state_dict("v1.0.0")["layer.1.weight"])
    bare, _ = _clone(remote, tmp_path / "bare", no_checkout=True)
    assert not (bare.root / "model.safetensors").exists()


def test_non_fast_forward_rejected_unless_forced(tmp_path: Path, remote: Remote) -> None:
    repo, work = _repo_with_two_commits(tmp_path)
    name = remote.add_to(repo)
    sync.push(repo, name, ["main"])
    clone, _ = _clone(remote, tmp_path / "clone")
    _model(clone.root, 3, changed=3)
    mvstore.Repo(clone.root).commit("from the clone")
    sync.push(clone)  # upstream (origin/main) was set by clone
    _model(work, 4, changed=4)
    mvstore.Repo(work).commit("diverged")
    with pytest.raises(sync.NonFastForward):
        sync.push(repo, name, ["main"])
    sync.push(repo, name, ["main"], force=True)
    res = sync.fetch(clone, "origin")
    assert res.refs  # the tracking ref moved


def test_pull_fast_forwards_and_updates_files(tmp_path: Path, remote: Remote) -> None:
    repo, work = _repo_with_two_commits(tmp_path)
    name = remote.add_to(repo)
    sync.push(repo, name, ["main"])
    clone, _ = _clone(remote, tmp_path / "clone")
    _model(work, 9, changed=9)
    mvstore.Repo(work).commit("three")
    sync.push(repo, name, ["main"])
    sync.pull(clone)
    assert_same_files(work, clone.root)
    assert mvstore.Repo(clone.root).log()[0].commit.message == "three"


def _pusher(args: tuple[str, dict[str, str], object]) -> str:
    work, env, barrier = args
    os.environ.update(env)
    repo = Repository.find(work)
    barrier.wait()  # type: ignore[attr-defined]
    try:
        res = sync.push(repo, "origin", ["main"])
        return "already" if res.up_to_date else "won"  # identical commit already there: a no-op
    except RefConflict as e:  # lost the CAS race, or started after the winner: non-fast-forward
        assert any(m in str(e) for m in ("moved on the remote", "created on the remote", "commits you don't")), e
        return "lost"


@pytest.mark.parametrize("identical", [False, True])
def test_concurrent_pushers_exactly_one_wins(tmp_path: Path, remote: Remote, identical: bool) -> None:
    """8 processes push to one ref at once: different commits, or identical ones (the ABA trap)."""
    base, _ = _repo_with_two_commits(tmp_path)
    sync.push(base, remote.add_to(base), ["main"])
    workers = []
    for i in range(8):
        clone, _ = _clone(remote, tmp_path / f"c{i}")
        note = clone.root / "note.txt"
        note.write_text("same" if identical else f"writer {i}")
        os.utime(note, (1_600_000_000, 1_600_000_000))
        workers.append(str(clone.root))
        mvstore.Repo(clone.root).commit("concurrent")
    ctx = mp.get_context("fork")
    barrier = ctx.Manager().Barrier(8)
    with ctx.Pool(8) as pool:
        outcomes = pool.map(_pusher, [(w, remote.env, barrier) for w in workers])
    assert identical or "already" not in outcomes
    if remote.atomic:
        assert outcomes.count("won") == 1, outcomes
    else:
        assert outcomes.count("won") >= 1, outcomes  # moto checks-then-writes: semantics only
    # whatever won, the remote ref names a commit whose objects are all there: a clone verifies
    check, _ = _clone(remote, tmp_path / "check")
    assert (check.root / "note.txt").exists()
    winners = {Path(w, "note.txt").read_text() for w, o in zip(workers, outcomes, strict=True) if o == "won"}
    assert (check.root / "note.txt").read_text() in winners


def test_interrupted_push_resumes_with_only_missing_objects(tmp_path: Path, remote: Remote) -> None:
    work = tmp_path / "work"
    _model(work, 0, rows=2000)  # a 2 MB embedding: stored loose, not packed
    api = mvstore.Repo.init(work)
    api.commit("one")
    repo = api.repository
    name = remote.add_to(repo)
    full = sync.push(repo, name, ["main"], compress=False)
    # a push killed after some objects went up but before the ref moved: drop the ref and one pack
    backend = remote.backend()
    assert backend.delete("refs/heads/main")
    idx = [n for n in backend.list("packs/") if n.endswith(".idx")]
    assert idx
    backend.delete(idx[0])  # a pack whose index never made it is invisible: its objects count as missing
    again = sync.push(repo, name, ["main"], compress=False)
    assert 0 < again.objects < full.objects
    assert again.raw_bytes < full.raw_bytes / 2  # the big embedding was already there
    clone, _ = _clone(remote, tmp_path / "clone")
    assert_same_files(repo.root, clone.root)


def test_corrupt_remote_object_is_refused(tmp_path: Path, remote: Remote) -> None:
    repo, _ = _repo_with_two_commits(tmp_path)
    sync.push(repo, remote.add_to(repo), ["main"], compress=False)
    backend = remote.backend()
    victim = next(n for n in backend.list("packs/") if n.endswith(".pack"))
    data = bytearray(backend.read(victim))
    data[len(data) // 2] ^= 0x01  # one bit flipped
    backend.write_many({victim: bytes(data)})
    with pytest.raises(CorruptObject):
        _clone(remote, tmp_path / "clone")
    assert not (tmp_path / "clone").exists()  # nothing half-applied
    backend.write_many({victim: bytes(data[: len(data) // 3])})  # truncated
    with pytest.raises(MvError):
        _clone(remote, tmp_path / "clone2")
    assert not (tmp_path / "clone2").exists()


def test_not_an_mvstore_remote_and_hostile_ref_names(tmp_path: Path) -> None:
    other = tmp_path / "random"
    other.mkdir()
    (other / "data.bin").write_bytes(b"x" * 10)
    with pytest.raises(RemoteError, match="not an mvstore remote"):
        sync.clone(str(other), tmp_path / "c")
    repo, _ = _repo_with_two_commits(tmp_path)
    url = str(tmp_path / "remote")
    sync.push(repo, url, ["main"])
    evil = Path(url) / "refs/heads/..%2F..%2Fx"
    evil.write_text("0" * 64 + "\n")
    (Path(url) / "refs/tags").mkdir(exist_ok=True)
    (Path(url) / "refs/tags/a..b").write_text("0" * 64 + "\n")
    clone, _ = sync.clone(url, tmp_path / "clone")  # hostile names are ignored, never used as paths
    assert not (tmp_path / "x").exists()
    assert mvstore.Repo(clone.root).tags() == {}


def test_memory_backend_needs_unsafe_opt_in(tmp_path: Path) -> None:
    repo, work = _repo_with_two_commits(tmp_path)
    url = f"memory://mvtest-{os.getpid()}"
    with pytest.raises(UnsafeRemote):
        sync.push(repo, url, ["main"])
    sync.push(repo, url, ["main"], unsafe=True)
    clone, _ = sync.clone(url, tmp_path / "clone")
    assert_same_files(work, clone.root)


def test_lazy_open_reads_only_the_tensor(tmp_path: Path, remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MVSTORE_CACHE", str(tmp_path / "cache"))
    repo, work = _repo_with_two_commits(tmp_path)
    sync.push(repo, remote.add_to(repo), ["main"], compress=False)
    pin = mvstore.Repo(work).resolve("HEAD")
    model = mvstore.open(remote.url, rev=pin, storage_options=remote.options)
    before = model.layout.bytes_in
    t = model.tensor("layer.1.weight")
    read = model.layout.bytes_in - before
    nbytes = t.numel() * t.element_size()
    assert nbytes <= read <= 1.1 * nbytes
    assert torch.equal(t, mvstore.Repo(work).tensor("layer.1.weight"))
    sd = mvstore.load_state_dict(remote.url, rev=pin, storage_options=remote.options)
    assert set(sd) == {"embed.weight", "layer.0.weight", "layer.1.weight", "norm.bias"}
    with pytest.raises(MvError):
        mvstore.open(remote.url, rev="0" * 64, storage_options=remote.options)


def test_cli_remote_workflow(tmp_path: Path) -> None:
    _model(tmp_path / "w", 0)
    w = tmp_path / "w"
    run_mv("init", cwd=w)
    run_mv("commit", "-m", "one", cwd=w)
    url = str(tmp_path / "bucket")
    run_mv("remote", "add", "origin", url, cwd=w)
    out = run_mv("push", "--json", cwd=w).stdout
    assert '"objects"' in out
    assert "up to date" in run_mv("push", cwd=w).stdout
    run_mv("clone", url, str(tmp_path / "c"), cwd=tmp_path)
    assert files_of(w) == files_of(tmp_path / "c")
    cp = run_mv("remote", "add", "x", "s3://b/p", "--option", "secret=abc", cwd=w, check=False)
    assert_one_line_error(cp, "credentials")
    cp = run_mv("clone", str(tmp_path / "nothing-here"), str(tmp_path / "c2"), cwd=tmp_path, check=False)
    assert_one_line_error(cp, "not an mvstore remote")
    assert not (tmp_path / "c2").exists()
    shutil.rmtree(tmp_path / "c")


def test_cli_against_s3_server(tmp_path: Path, moto_s3: Any) -> None:
    """The README's S3 example, end to end through subprocesses: storage options, no secrets stored."""
    _model(tmp_path / "w", 0)
    w = tmp_path / "w"
    env = moto_s3.env
    url = moto_s3.make_bucket() + "/llama-ft"
    run_mv("init", cwd=w)
    run_mv("commit", "-m", "one", cwd=w)
    run_mv("remote", "add", "origin", url, "--option", f"endpoint_url={moto_s3.endpoint_url}", cwd=w, env=env)
    assert "testing" not in (w / ".mv" / "config").read_text()
    run_mv("push", "origin", "main", cwd=w, env=env)
    run_mv("clone", url, str(tmp_path / "c"), "--option", f"endpoint_url={moto_s3.endpoint_url}", cwd=tmp_path, env=env)
    assert files_of(w) == files_of(tmp_path / "c")
    cp = run_mv("clone", "s3://no-such-bucket-mv/x", str(tmp_path / "c3"), "--option",
                f"endpoint_url={moto_s3.endpoint_url}", cwd=tmp_path, env=env, check=False)
    assert_one_line_error(cp)
    assert not (tmp_path / "c3").exists()
    cp = run_mv("clone", "s3://b/x", str(tmp_path / "c4"), "--option", "endpoint_url=http://127.0.0.1:9",
                cwd=tmp_path, env=env, check=False, timeout=120)
    assert_one_line_error(cp)


def test_stage_history_travels_with_push_and_fetch(tmp_path: Path) -> None:
    """Lifecycle stages are refs + event objects: a push carries them, a clone and a fetch bring them."""
    _model(tmp_path / "w", 0)
    w = tmp_path / "w"
    run_mv("init", cwd=w)
    run_mv("commit", "-m", "one", cwd=w)
    run_mv("tag", "v1.0.0", cwd=w)
    run_mv("stage", "v1.0.0", "candidate", "-m", "looks good", "--no-validate", cwd=w)
    url = str(tmp_path / "remote")
    run_mv("remote", "add", "origin", url, cwd=w)
    run_mv("push", "origin", "main", "v1.0.0", cwd=w)
    run_mv("clone", url, str(tmp_path / "c"), cwd=tmp_path)
    assert "candidate" in run_mv("stage", "-l", cwd=tmp_path / "c").stdout
    run_mv("stage", "v1.0.0", "release", "-m", "ship it", "--no-validate", cwd=w)
    run_mv("push", "origin", "main", cwd=w)
    run_mv("fetch", "origin", cwd=tmp_path / "c")
    listing = run_mv("stage", "-l", cwd=tmp_path / "c").stdout
    assert "release" in listing, listing


def test_shallow_clone_history_commands_stop_at_the_edge(tmp_path: Path) -> None:
    """``clone --rev`` fetches no parents: log, stats, repack, gc and verify work from there and
    stop at the edge, and a new commit on top of it pushes back (found by review: log and repack
    walked into the missing parent)."""
    repo, work = _repo_with_two_commits(tmp_path)
    url = str(tmp_path / "remote")
    api = mvstore.Repo(work)
    api.add_remote("origin", url)
    api.push("origin", ["main"])
    shallow = mvstore.Repo.clone(url, tmp_path / "shallow", rev="main")
    assert [e.commit.message for e in shallow.log()] == ["two"]
    assert "two" in run_mv("log", cwd=shallow.path).stdout
    _model(shallow.path, 2, changed=1)
    shallow.commit("three")
    assert [e.commit.message for e in shallow.log()] == ["three", "two"]
    assert shallow.stats().commits == 2
    assert shallow.repack().objects > 0
    assert shallow.fsck(full=True).ok
    assert shallow.gc(prune="now").removed_objects == 0
    out = shallow.export("HEAD~1", tmp_path / "out")
    assert files_of(out) == files_of(work)
