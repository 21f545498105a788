"""repack: compression and XOR deltas that keep every checkpoint byte-exact and ids unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import mvstore
from mvstore.codec import ENVELOPE_SIZE, parse_envelope
from mvstore.errors import CorruptObject
from mvstore.ops.repack import repack
from mvstore.ops.stats import stats
from tests.conftest import assert_same_files, run_mv


def _series_repo(tmp_path: Path, kind: str, n: int = 3) -> tuple[mvstore.Repo, list[Path]]:
    from bench.data import make_series

    ckpts = make_series(kind, tmp_path / "series", n=n, steps=1)
    work = tmp_path / "work"
    shutil.copytree(ckpts[0], work)
    repo = mvstore.Repo.init(work)
    repo.commit("ckpt 0")
    for i, c in enumerate(ckpts[1:], 1):
        for p in c.rglob("*"):
            if p.is_file():
                dest = work / p.relative_to(c)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, dest)
        repo.commit(f"ckpt {i}")
    return repo, ckpts


@pytest.mark.parametrize("kind", ["full", "bf16"])
def test_repack_shrinks_history_and_every_checkpoint_stays_exact(tmp_path: Path, kind: str) -> None:
    repo, ckpts = _series_repo(tmp_path, kind)
    before = stats(repo.repository)
    pins = [repo.resolve_commit(f"HEAD~{len(ckpts) - 1 - i}") for i in range(len(ckpts))]
    res = repack(repo.repository)
    after = stats(repo.repository)
    assert res.deltas > 0
    assert after.stored_bytes < before.stored_bytes / (1.4 if kind == "full" else 3.0)
    for i, (pin, ckpt) in enumerate(zip(pins, ckpts, strict=True)):
        out = repo.export(pin, tmp_path / f"export-{i}")
        assert_same_files(ckpt, out)
        assert repo.resolve_commit(pin) == pin  # ids never change
    sd = repo.load_state_dict(pins[0])
    from safetensors.torch import load_file

    ref = load_file(ckpts[0] / "model.safetensors")
    assert all(torch.equal(sd[k], ref[k]) for k in ref)
    again = repack(repo.repository)
    assert again.rewritten == 0  # idempotent


def test_delta_chains_respect_depth_and_newest_is_a_key_frame(tmp_path: Path) -> None:
    repo, ckpts = _series_repo(tmp_path, "full", n=4)
    repack(repo.repository, depth=1)
    store = repo.repository.store
    newest = repo.repository.manifest(repo.repository.tree(repo.repository.commit_object(
        mvstore.ObjectId.from_hex(repo.resolve_commit("HEAD"))).tree).by_path()["model.safetensors"].id)
    for t in newest.tensors:
        for c in t.chunks:
            assert store.delta_base(c.id) is None  # the newest checkpoint decodes without deltas
    for oid in store.iter_ids():
        base = store.delta_base(oid) if store.read_kind(oid) == 1 else None
        if base is not None:
            assert store.delta_base(base) is None  # depth 1: bases are key frames


@pytest.mark.parametrize("step", [0, -3600], ids=["same-second", "clock-went-back"])
def test_deltas_follow_parentage_not_commit_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: int
) -> None:
    """Commit times have one-second resolution and clocks skew: repack must order checkpoints by
    parentage (CI once saw a same-second child sorted after its parent, and no deltas at all)."""
    import time
    import types

    import mvstore.ops.commit as commit_mod

    now = [1_700_000_000]

    def fake_time() -> float:
        value = now[0]
        now[0] += step
        return float(value)

    monkeypatch.setattr(commit_mod, "time", types.SimpleNamespace(time=fake_time, localtime=time.localtime))
    repo, ckpts = _series_repo(tmp_path, "full", n=3)
    res = repack(repo.repository)
    assert res.deltas > 0
    store = repo.repository.store
    head = repo.repository.commit_object(mvstore.ObjectId.from_hex(repo.resolve_commit("HEAD")))
    newest = repo.repository.manifest(repo.repository.tree(head.tree).by_path()["model.safetensors"].id)
    assert all(store.delta_base(c.id) is None for t in newest.tensors for c in t.chunks)
    for i, ckpt in enumerate(ckpts):
        assert_same_files(ckpt, repo.export(f"HEAD~{len(ckpts) - 1 - i}", tmp_path / f"out-{i}"))


def test_corrupt_delta_base_is_detected(tmp_path: Path) -> None:
    repo, _ = _series_repo(tmp_path, "full")
    repack(repo.repository)
    store = repo.repository.store
    delta = next(o for o in store.iter_ids() if store.read_kind(o) == 1 and store.delta_base(o) is not None)
    base = store.delta_base(delta)
    assert base is not None
    path = store.path(base)
    data = bytearray(path.read_bytes())
    env = parse_envelope(bytes(data[: ENVELOPE_SIZE + 4096]), "x")
    data[env.payload_offset + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptObject):
        store.read(delta)


def test_repack_cli(tmp_path: Path) -> None:
    repo, _ = _series_repo(tmp_path, "bf16", n=2)
    out = run_mv("repack", "--dry-run", "--json", cwd=repo.path).stdout
    assert '"dry_run": true' in out
    assert "Stored" in run_mv("repack", cwd=repo.path).stdout
    run_mv("checkout", "HEAD~1", cwd=repo.path)
    assert "nothing to commit" in run_mv("status", cwd=repo.path).stdout
