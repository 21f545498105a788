"""Load: a repository of ≥ 10,000 commits and ≥ 100,000 objects (``MV_CAMPAIGN=long``; CI builds
2,000 commits / 20,000 objects). Built fast with the plumbing (objects written straight through a
store transaction, not thousands of CLI calls), then the real CLI is timed: ``log``, ``status``,
``push`` of one new commit, ``gc`` and ``verify``, at two sizes, to show how each grows.

Each commit: a safetensors manifest (4 tensors, one re-chunked per commit), 6 small blobs, a
config inlined in the tree: 10 objects per commit, like a long training run of a small model.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest
from campaign import LONG, figures, mv, rng

from mvstore import codec
from mvstore.codec import KIND_DATA, KIND_STRUCT
from mvstore.ids import ObjectId, hash_bytes
from mvstore.objects import Chunk, Commit, SafetensorsManifest, TensorEntry, Tree, TreeEntry
from mvstore.repo import Repository

pytestmark = pytest.mark.campaign
TENSOR_BYTES = 8192  # > 4 KiB: chunked, not inlined
BLOBS = 6


def _header() -> tuple[bytes, list[tuple[str, int, int]]]:
    tensors = []
    doc = {}
    for i in range(4):
        begin = i * TENSOR_BYTES
        doc[f"layer.{i}.weight"] = {
            "dtype": "F32",
            "shape": [TENSOR_BYTES // 4],
            "data_offsets": [begin, begin + TENSOR_BYTES],
        }
        tensors.append((f"layer.{i}.weight", begin, begin + TENSOR_BYTES))
    raw = json.dumps(doc, separators=(",", ":")).encode()
    raw += b" " * (-(8 + len(raw)) % 8)
    return raw, tensors


def _put(txn: object, raw: bytes, kind: int) -> ObjectId:
    oid = hash_bytes(raw)
    txn.put(oid, raw, kind)  # type: ignore[attr-defined]
    return oid


def build(work: Path, start: int, count: int, parent: ObjectId | None) -> ObjectId:
    """Append ``count`` commits after ``parent``; returns the new tip (main is moved to it)."""
    repo = Repository.find(work)
    header, layout = _header()
    file_size = 8 + len(header) + 4 * TENSOR_BYTES
    r = rng("load", start)
    chunks = [_chunk(r) for _ in range(4)]
    with repo.store.transaction() as txn:
        chunk_ids = [_put(txn, c, KIND_DATA) for c in chunks]
    tip = parent
    for batch in range(start, start + count, 500):
        with repo.store.transaction() as txn:
            for n in range(batch, min(batch + 500, start + count)):
                k = n % 4
                chunk_ids[k] = _put(txn, _chunk(r), KIND_DATA)
                manifest = SafetensorsManifest(
                    size=file_size,
                    header=header,
                    tensors=tuple(
                        TensorEntry(
                            name,
                            "F32",
                            (TENSOR_BYTES // 4,),
                            b,
                            e,
                            (Chunk(chunk_ids[i], TENSOR_BYTES),),
                            None,
                        )
                        for i, (name, b, e) in enumerate(layout)
                    ),
                )
                mid = _put(txn, codec.encode_object(manifest), KIND_STRUCT)
                entries = [TreeEntry("config.json", "inline", 16, False, None, b"%16d" % n)]
                entries.append(TreeEntry("model.safetensors", "safetensors", file_size, False, mid, None))
                for b in range(BLOBS):
                    blob = r.randbytes(512)
                    entries.append(
                        TreeEntry(f"shard-{b}.bin", "blob", 512, False, _put(txn, blob, KIND_DATA), None)
                    )
                tree = _put(
                    txn, codec.encode_object(Tree(tuple(sorted(entries, key=lambda e: e.path)))), KIND_STRUCT
                )
                commit = Commit(
                    tree,
                    (tip,) if tip else (),
                    "Load <l@example.com>",
                    1_600_000_000 + n,
                    0,
                    f"step {n}",
                    (("step", n),),
                )
                tip = _put(txn, codec.encode_object(commit), KIND_STRUCT)
    assert tip is not None
    repo.refs.update("refs/heads/main", tip, message=f"load: {count} commits")
    if start % 1000 == 0:
        repo.refs.update(f"refs/tags/v0.{start // 1000}.0", tip, message="load")
    return tip


def _chunk(r: object) -> bytes:
    return r.randbytes(TENSOR_BYTES)  # type: ignore[attr-defined,no-any-return]


def _time(*args: str, cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    cp = mv(*args, cwd=cwd, timeout=1800)
    return time.perf_counter() - t0, cp.stdout


def _measure(work: Path, remote: Path, label: str, fig: object) -> dict[str, float]:
    out: dict[str, float] = {}
    out["log -n 20"], _ = _time("log", "-n", "20", cwd=work)
    out["log (all)"], text = _time("log", "--json", cwd=work)
    mv("checkout", "main", "--force", cwd=work)
    mv("status", cwd=work)  # warms the stat cache, as any status after a checkout would
    out["status"], _ = _time("status", cwd=work)
    out["verify"], _ = _time("verify", cwd=work)
    out["gc"], gc_text = _time("gc", "--json", cwd=work)
    assert json.loads(gc_text)["removed_objects"] == 0
    out["push (all new objects)"], _ = _time("push", "origin", "main", cwd=work)
    (work / "config.json").write_text(f"new {label}")
    mv("commit", "-m", "one more", cwd=work)
    out["push (one new commit)"], push = _time("push", "origin", "main", "--json", cwd=work)
    assert json.loads(push)["objects"] <= 3  # commit + tree (+ nothing else): never a full scan upload
    out["verify --remote"], _ = _time("verify", "--remote", "origin", cwd=work)
    out["gc --remote"], _ = _time("gc", "--remote", "origin", cwd=work)
    return out


def test_load_and_scaling(tmp_path: Path) -> None:
    small, large = (1000, 10_000) if LONG else (500, 2000)
    work = tmp_path / "w"
    work.mkdir()
    mv("init", cwd=work)
    mv("remote", "add", "origin", str(tmp_path / "remote"), cwd=work)
    figures_by_size: dict[int, dict[str, float]] = {}
    with figures(f"load: {large} commits") as fig:
        t0 = time.perf_counter()
        tip = build(work, 0, small, None)
        fig.notes["build_seconds_small"] = round(time.perf_counter() - t0, 1)
        figures_by_size[small] = _measure(work, tmp_path / "remote", "small", fig)
        tip = Repository.find(work).refs.read("refs/heads/main")
        t0 = time.perf_counter()
        build(work, small + 1, large - small - 1, tip)
        fig.notes["build_seconds_large"] = round(time.perf_counter() - t0, 1)
        figures_by_size[large] = _measure(work, tmp_path / "remote", "large", fig)
        objects = sum(1 for _ in Repository.find(work).store.scan())
        fig.trials = 1
        fig.notes["objects"] = objects
        fig.notes["commits"] = large + 2
        fig.notes["seconds"] = {
            str(k): {op: round(v, 2) for op, v in ops.items()} for k, ops in figures_by_size.items()
        }
        fig.notes["growth"] = {
            op: round(figures_by_size[large][op] / max(figures_by_size[small][op], 1e-3), 2)
            for op in figures_by_size[small]
        }
        print(json.dumps(fig.notes, indent=1))
        assert objects >= (100_000 if LONG else 20_000)
        big = figures_by_size[large]
        # Bounds with a wide margin for a loaded 2-core CI machine: what must not grow with history.
        assert big["log -n 20"] < 5
        assert big["status"] < 5
        assert big["push (one new commit)"] < 30


def test_header_is_valid() -> None:
    from mvstore.formats.safetensors import parse_header

    header, _ = _header()
    parse_header(header, 8 + len(header) + 4 * TENSOR_BYTES, "load")
    assert struct.pack("<Q", len(header))
