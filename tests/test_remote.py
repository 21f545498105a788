"""Remotes: push / fetch / pull / clone round trips, incremental transfers, compare-and-swap refs,
interrupted pushes, corrupt and hostile remotes — on every backend fixture in ``remote_url``."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import mvstore
from mvstore.errors import CorruptObject, MvError, RefConflict
from mvstore.ops import sync
from mvstore.remote.backend import RemoteError, UnsafeRemote
from mvstore.repo import Repository
from tests.conftest import assert_one_line_error, assert_same_files, files_of, run_mv


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


@pytest.fixture(params=["path", "file-url"])
def remote_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    root = tmp_path / "remote-store"
    return str(root) if request.param == "path" else f"file://{root}"


def _repo_with_two_commits(tmp_path: Path) -> tuple[Repository, Path]:
    work = tmp_path / "work"
    _model(work, 0)
    api = mvstore.Repo.init(work)
    api.commit("one")
    _model(work, 1, changed=1)
    api.commit("two")
    return api.repository, work


def test_push_clone_round_trip_byte_for_byte(tmp_path: Path, remote_url: str) -> None:
    repo, work = _repo_with_two_commits(tmp_path)
    res = sync.push(repo, remote_url, ["main"])
    assert res.objects > 0 and not res.up_to_date
    again = sync.push(repo, remote_url, ["main"])
    assert again.up_to_date and again.objects == 0
    assert again.requests <= 4  # marker + ref listing + ref read: no per-object round trips
    clone, res = sync.clone(remote_url, tmp_path / "clone")
    assert res.objects > 0
    assert_same_files(work, clone.root)
    assert Repository.find(clone.root).refs.head().branch == "main"
    assert mvstore.Repo(clone.root).log()[0].commit.message == "two"


def test_incremental_push_sends_only_new_objects(tmp_path: Path, remote_url: str) -> None:
    work = tmp_path / "work"
    _model(work, 0)
    api = mvstore.Repo.init(work)
    api.commit("one")
    first = sync.push(api.repository, remote_url, ["main"])
    _model(work, 7, changed=1)  # only layer.1 changes
    api.commit("two")
    second = sync.push(api.repository, remote_url, ["main"], compress=False)
    layer_bytes = 256 * 256 * 4
    # the changed tensor, the new manifest, tree and commit: nothing of the unchanged embedding
    assert layer_bytes <= second.raw_bytes <= layer_bytes * 1.05 + 64 * 1024
    assert second.objects < first.objects


def test_fetch_by_bare_hash_and_pin_mismatch(tmp_path: Path, remote_url: str) -> None:
    repo, _ = _repo_with_two_commits(tmp_path)
    sync.push(repo, remote_url, ["main"])
    first = mvstore.Repo(repo.root).resolve("HEAD~1")
    other = mvstore.Repo.init(tmp_path / "other").repository
    res = sync.fetch(other, remote_url, [first])
    assert res.objects > 0
    assert other.commit_object(mvstore.ObjectId.from_hex(first)).message == "one"
    with pytest.raises(MvError):
        sync.fetch(other, remote_url, ["f" * 64])  # a pin the remote does not have


def test_clone_rev_fetches_only_what_it_needs(tmp_path: Path, remote_url: str) -> None:
    repo, _work = _repo_with_two_commits(tmp_path)
    api = mvstore.Repo(repo.root)
    api.tag("v1", "HEAD~1")
    sync.push(repo, remote_url, ["main", "v1"])
    full, res_full = sync.clone(remote_url, tmp_path / "full")
    part, res_part = sync.clone(remote_url, tmp_path / "part", rev="v1")
    assert res_part.objects < res_full.objects
    sd = mvstore.Repo(part.root).load_state_dict("HEAD")
    assert torch.equal(sd["layer.1.weight"], api.load_state_dict("v1")["layer.1.weight"])
    bare, _ = sync.clone(remote_url, tmp_path / "bare", no_checkout=True)
    assert not (bare.root / "model.safetensors").exists()


def test_non_fast_forward_rejected_unless_forced(tmp_path: Path, remote_url: str) -> None:
    repo, work = _repo_with_two_commits(tmp_path)
    sync.push(repo, remote_url, ["main"])
    clone, _ = sync.clone(remote_url, tmp_path / "clone")
    _model(clone.root, 3, changed=3)
    mvstore.Repo(clone.root).commit("from the clone")
    sync.push(clone, "origin")  # upstream was set by clone
    _model(work, 4, changed=4)
    mvstore.Repo(work).commit("diverged")
    with pytest.raises(sync.NonFastForward):
        sync.push(repo, remote_url, ["main"])
    sync.push(repo, remote_url, ["main"], force=True)
    res = sync.fetch(clone, "origin")
    assert res.refs  # the tracking ref moved


def test_pull_fast_forwards_and_updates_files(tmp_path: Path, remote_url: str) -> None:
    repo, work = _repo_with_two_commits(tmp_path)
    sync.push(repo, remote_url, ["main"])
    clone, _ = sync.clone(remote_url, tmp_path / "clone")
    _model(work, 9, changed=9)
    mvstore.Repo(work).commit("three")
    sync.push(repo, remote_url, ["main"])
    sync.pull(clone)
    assert_same_files(work, clone.root)
    assert mvstore.Repo(clone.root).log()[0].commit.message == "three"


def _pusher(args: tuple[str, str, int, object]) -> str:
    work, url, i, barrier = args
    repo = Repository.find(work)
    barrier.wait()  # type: ignore[attr-defined]
    try:
        sync.push(repo, url, ["main"])
        return "won"
    except RefConflict:
        return "lost"


@pytest.mark.parametrize("identical", [False, True])
def test_concurrent_pushers_exactly_one_wins(tmp_path: Path, remote_url: str, identical: bool) -> None:
    """8 processes push different (or identical: the ABA trap) commits to one new ref at once."""
    base, _ = _repo_with_two_commits(tmp_path)
    sync.push(base, remote_url, ["main"])
    workers = []
    for i in range(8):
        clone, _ = sync.clone(remote_url, tmp_path / f"c{i}")
        (clone.root / "note.txt").write_text("same" if identical else f"writer {i}")
        os.utime(clone.root / "note.txt", (1_600_000_000, 1_600_000_000))
        os.environ["MV_AUTHOR"] = "Same <same@example.com>"
        mvstore.Repo(clone.root).commit("concurrent")
        workers.append(str(clone.root))
    ctx = mp.get_context("fork")
    barrier = ctx.Manager().Barrier(8)
    with ctx.Pool(8) as pool:
        outcomes = pool.map(_pusher, [(w, remote_url, i, barrier) for i, w in enumerate(workers)])
    if identical:
        assert outcomes.count("won") >= 1  # identical commits: later pushers may find it already there
    else:
        assert outcomes.count("won") == 1, outcomes
    # whatever won, the remote ref names a commit whose objects are all there: a clone verifies
    check, _ = sync.clone(remote_url, tmp_path / "check")
    assert (check.root / "note.txt").exists()


def test_interrupted_push_resumes_with_only_missing_objects(tmp_path: Path, remote_url: str) -> None:
    work = tmp_path / "work"
    _model(work, 0, rows=2000)  # a 2 MB embedding: stored loose, not packed
    api = mvstore.Repo.init(work)
    api.commit("one")
    repo = api.repository
    full = sync.push(repo, remote_url, ["main"], compress=False)
    # simulate a push killed after objects went up but before the ref moved: drop the ref and
    # some objects on the remote, keep the rest
    root = Path(remote_url.removeprefix("file://"))
    (root / "refs/heads/main").unlink()
    packs = sorted((root / "packs").glob("*.idx"))
    assert packs
    packs[0].unlink()  # a pack whose index never made it is invisible: its objects count as missing
    packs[0].with_suffix(".pack").unlink()
    again = sync.push(repo, remote_url, ["main"], compress=False)
    assert 0 < again.objects < full.objects
    assert again.raw_bytes < full.raw_bytes / 2  # the big embedding was already there
    clone, _ = sync.clone(remote_url, tmp_path / "clone")
    assert_same_files(repo.root, clone.root)


def test_corrupt_remote_object_is_refused(tmp_path: Path, remote_url: str) -> None:
    repo, _ = _repo_with_two_commits(tmp_path)
    sync.push(repo, remote_url, ["main"], compress=False)
    root = Path(remote_url.removeprefix("file://"))
    victim = next(p for p in (root / "packs").glob("*.pack"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(CorruptObject):
        sync.clone(remote_url, tmp_path / "clone")
    assert not (tmp_path / "clone").exists()  # nothing half-applied
    victim.write_bytes(bytes(data[: len(data) // 3]))  # truncated
    with pytest.raises((CorruptObject, MvError)):
        sync.clone(remote_url, tmp_path / "clone2")
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


def test_lazy_open_reads_only_the_tensor(tmp_path: Path, remote_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MVSTORE_CACHE", str(tmp_path / "cache"))
    repo, work = _repo_with_two_commits(tmp_path)
    sync.push(repo, remote_url, ["main"], compress=False)
    pin = mvstore.Repo(work).resolve("HEAD")
    model = mvstore.open(remote_url, rev=pin)
    before = model.layout.bytes_in
    t = model.tensor("layer.1.weight")
    read = model.layout.bytes_in - before
    nbytes = t.numel() * t.element_size()
    assert nbytes <= read <= 1.1 * nbytes
    local = mvstore.Repo(work).tensor("layer.1.weight")
    assert torch.equal(t, local)
    sd = mvstore.load_state_dict(remote_url, rev=pin)
    assert set(sd) == {"embed.weight", "layer.0.weight", "layer.1.weight", "norm.bias"}


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
