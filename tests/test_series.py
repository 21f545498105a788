"""Real fine-tuning series of MiniLM (bench.data.make_series) committed one checkpoint after another."""

from __future__ import annotations

import shutil
from pathlib import Path

import blake3
from conftest import files_of, object_files
from safetensors.torch import load_file

import mvstore
from bench.data import make_series
from mvstore.formats.safetensors import parse_header, read_header_length
from mvstore.ops.tensors import manifest_of


def _tensor_digests(path: Path) -> dict[bytes, int]:
    """blake3 of every tensor's bytes -> its size, parsed independently of the store."""
    data = path.read_bytes()
    n = read_header_length(data[:8], len(data), path.name)
    header = parse_header(data[8 : 8 + n], len(data), path.name)
    base = header.data_start
    return {blake3.blake3(data[base + t.begin : base + t.end]).digest(): t.nbytes for t in header.tensors}


def _unique_bytes(ckpts: list[Path]) -> tuple[int, int]:
    """(distinct tensor bytes over all checkpoints, distinct bytes of the other files)."""
    tensors: dict[bytes, int] = {}
    others: dict[bytes, int] = {}
    for c in ckpts:
        for rel, data in files_of(c).items():
            if rel.endswith(".safetensors"):
                tensors.update(_tensor_digests(c / rel))
            else:
                others[blake3.blake3(data).digest()] = len(data)
    return sum(tensors.values()), sum(others.values())


def _commit_series(work: Path, ckpts: list[Path]) -> list[str]:
    """Copy each checkpoint over the work folder (removing what it lacks) and commit it."""
    repo = mvstore.Repo.init(work)
    ids = []
    for i, c in enumerate(ckpts):
        for p in list(work.iterdir()):
            if p.name != ".mv":
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        shutil.copytree(c, work, dirs_exist_ok=True)
        ids.append(repo.commit(f"ckpt {i}", meta={"ckpt": i}))
    return ids


def _check_every_checkpoint(work: Path, ckpts: list[Path], ids: list[str], tmp: Path) -> None:
    repo = mvstore.Repo(work)
    for i, (c, cid) in enumerate(zip(ckpts, ids, strict=True)):
        repo.checkout(cid)
        assert files_of(work) == files_of(c), f"checkout of checkpoint {i} is not byte-identical"
    out = tmp / "exported"
    repo.export(ids[0], out)
    assert files_of(out) == files_of(ckpts[0])


def test_frozen_base_series_stores_only_unique_bytes(tmp_path: Path) -> None:
    ckpts = make_series("frozen", tmp_path / "series", n=3, steps=2, seed=0)
    ids = _commit_series(tmp_path / "work", ckpts)
    tensor_bytes, other_bytes = _unique_bytes(ckpts)
    stats = mvstore.Repo(tmp_path / "work").stats()
    assert stats.commits == 3
    # Everything stored (chunks, manifests, trees, commits, envelopes) against what is distinct.
    assert stats.stored_bytes <= 1.05 * (tensor_bytes + other_bytes), (stats.stored_bytes, tensor_bytes, other_bytes)
    assert stats.dedup_ratio > 2.5
    # The frozen layers really are shared: the second checkpoint stored far less than one model.
    model_bytes = (ckpts[0] / "model.safetensors").stat().st_size
    assert tensor_bytes < 1.4 * model_bytes
    _check_every_checkpoint(tmp_path / "work", ckpts, ids, tmp_path)


def test_full_finetune_series_round_trips(tmp_path: Path) -> None:
    ckpts = make_series("full", tmp_path / "series", n=3, steps=1, seed=1)
    ids = _commit_series(tmp_path / "work", ckpts)
    repo = mvstore.Repo(tmp_path / "work")
    d = repo.diff(ids[0], ids[1])
    changed = {t.name for f in d.files for t in f.tensors}
    assert "embeddings.position_ids" not in changed  # an int buffer that training never touches
    assert "encoder.layer.0.attention.self.query.weight" in changed
    for cid, c in zip(ids, ckpts, strict=True):
        ref = load_file(str(c / "model.safetensors"))
        sd = repo.load_state_dict(cid)
        assert sorted(sd) == sorted(ref)
        assert all(sd[k].dtype == v.dtype and (sd[k] == v).all() for k, v in ref.items())
    _check_every_checkpoint(tmp_path / "work", ckpts, ids, tmp_path)


def test_vocab_series_restores_only_the_embedding_tail(tmp_path: Path) -> None:
    ckpts = make_series("vocab", tmp_path / "series", n=3, steps=1, seed=2)
    work = tmp_path / "work"
    repo = mvstore.Repo.init(work)
    ids: list[str] = []
    new_objects: list[set[str]] = []
    for i, c in enumerate(ckpts):
        shutil.copytree(c, work, dirs_exist_ok=True)
        before = object_files(work)
        ids.append(repo.commit(f"vocab {i}"))
        new_objects.append(object_files(work) - before)
    key = "embeddings.word_embeddings.weight"
    for a, b, new in zip(ids, ids[1:], new_objects[1:], strict=False):
        ta = manifest_of(repo.repository, a, "model.safetensors").tensor(key)
        tb = manifest_of(repo.repository, b, "model.safetensors").tensor(key)
        assert ta is not None and tb is not None
        assert tb.shape[0] == ta.shape[0] + 64
        assert tb.chunks[:-1] == ta.chunks[:-1], "rows before the old tail are not re-stored"
        assert tb.chunks[-1] != ta.chunks[-1]
        # The new tail chunk, the manifest, the tree and the commit; config.json is inline in the tree.
        assert len(new) == 4, sorted(new)
        tail = tb.chunks[-1].id.hex()
        assert f"{tail[:2]}/{tail[2:]}" in new
        d = repo.diff(a, b)
        (mf,) = [f for f in d.files if f.path == "model.safetensors"]
        assert [t.name for t in mf.tensors] == [key] and mf.tensors[0].status == "retyped"
        assert mf.tensors[0].changed_bytes == tb.chunks[-1].size
    _check_every_checkpoint(work, ckpts, ids, tmp_path)
