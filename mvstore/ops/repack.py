"""``mv repack``: store weights compressed, and as XOR deltas against the next checkpoint.

Exact per-tensor dedup does nothing for a full fine-tune: every tensor changes a little. But a
fine-tune changes few *bits*: ``new XOR old`` is mostly zero bytes in the sign/exponent planes, and
zstd over byte planes of that XOR shrinks it far more than the tensor itself (the ZipLLM
observation). Repack rewrites object files in place — ids never change, so nothing that points at
them changes either — choosing for each tensor chunk the smallest of:

* ``raw`` (when compression saves < 3 %),
* ``zstd-planes`` (a key frame),
* ``xor-delta`` against the same chunk of the same tensor in the *child* commit (reverse deltas:
  the newest checkpoint is stored whole and loads fastest; older ones point forward in time).

Chains are capped (``depth``) so any checkpoint loads with at most ``depth`` extra object reads.
Local stores stay raw by default (zero-copy loads); repack trades load speed for space when a
repository is mostly history.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .. import codec
from ..codec import ENVELOPE_SIZE, KIND_DATA
from ..encoding import ENCODING_XOR_DELTA, ZSTD_LEVEL, xor_delta
from ..formats.safetensors import DTYPE_BITS
from ..ids import ObjectId
from ..objects import Commit, SafetensorsManifest
from ..repo import Repository
from .history import topo_order
from .stats import reachable_commits

DEFAULT_DEPTH = 4
MIN_SAVING = 0.97


@dataclass(frozen=True, slots=True)
class RepackResult:
    objects: int
    rewritten: int
    deltas: int
    bytes_before: int
    bytes_after: int
    seconds: float

    @property
    def ratio(self) -> float:
        return self.bytes_before / self.bytes_after if self.bytes_after else 0.0


def _manifests(repo: Repository, commit: Commit) -> dict[str, SafetensorsManifest]:
    out = {}
    for e in repo.tree(commit.tree).entries:
        if e.kind == "safetensors" and e.id is not None:
            out[e.path] = repo.manifest(e.id)
    return out


def _plan(repo: Repository, depth: int, use_delta: bool) -> tuple[dict[ObjectId, int], dict[ObjectId, ObjectId]]:
    """Every reachable tensor chunk → plane width, and chosen delta bases (child chunk → parent chunk)."""
    order = topo_order(repo, reachable_commits(repo))  # children before parents, even within a second
    widths: dict[ObjectId, int] = {}
    bases: dict[ObjectId, ObjectId] = {}
    chain: dict[ObjectId, int] = {}
    for _oid, commit in order:
        mine = _manifests(repo, commit)
        for m in mine.values():
            for t in m.tensors:
                for ch in t.chunks:
                    if ch.id not in widths:
                        widths[ch.id] = max(1, DTYPE_BITS[t.dtype] // 8)
                        chain.setdefault(ch.id, 0)
        if not use_delta or not commit.parents or not repo.store.has(commit.parents[0]):
            continue
        parent = repo.commit_object(commit.parents[0])
        for path, pm in _manifests(repo, parent).items():
            cm = mine.get(path)
            if cm is None:
                continue
            newer = {t.name: t for t in cm.tensors}
            for t in pm.tensors:
                n = newer.get(t.name)
                if n is None or n.dtype != t.dtype or n.shape != t.shape or len(n.chunks) != len(t.chunks):
                    continue
                for old, new in zip(t.chunks, n.chunks, strict=True):
                    if old.id == new.id or old.size != new.size or old.id in bases or old.id in widths:
                        continue  # already decided (seen in a newer commit), or identical
                    if chain.get(new.id, 0) >= depth:
                        continue  # keep chains short: this one becomes a key frame
                    bases[old.id] = new.id
                    chain[old.id] = chain.get(new.id, 0) + 1
                    widths[old.id] = max(1, DTYPE_BITS[t.dtype] // 8)
    return widths, bases


def repack(repo: Repository, depth: int = DEFAULT_DEPTH, delta: bool = True, dry_run: bool = False) -> RepackResult:
    t0 = time.perf_counter()
    widths, bases = _plan(repo, depth, delta)
    depth_of: dict[ObjectId, int] = {}

    def chain_depth(oid: ObjectId) -> int:
        d = 0
        while oid in bases:
            oid = bases[oid]
            d += 1
        return d

    for oid in widths:
        depth_of[oid] = chain_depth(oid)

    def encode(oid: ObjectId) -> tuple[ObjectId, int, int, bytes | None, bool]:
        before = repo.store.stored_size(oid)
        raw = repo.store.read(oid, KIND_DATA)
        best = codec.encode_envelope(raw, KIND_DATA, widths[oid], compress=True)
        is_delta = False
        base = bases.get(oid)
        if base is not None:
            base_raw = repo.store.read(base, KIND_DATA)
            payload = xor_delta(raw, base_raw, widths[oid])
            params = codec.pack({"base": bytes(base), "w": widths[oid], "d": depth_of[oid]})
            candidate = codec.envelope_header(KIND_DATA, len(raw), ENCODING_XOR_DELTA, params) + payload
            if len(candidate) < len(best):
                best, is_delta = candidate, True
        if len(best) >= (len(raw) + ENVELOPE_SIZE) * MIN_SAVING:
            best = codec.envelope_header(KIND_DATA, len(raw)) + raw
        if len(best) == before and _current(repo, oid) == best:
            return oid, before, before, None, is_delta  # already stored this way: repack is idempotent
        return oid, before, len(best), best, is_delta

    # Bases first: a delta may only be written once its base's final form is on disk, so every
    # intermediate state of the store decodes (a crash mid-repack loses nothing).
    levels: dict[int, list[ObjectId]] = {}
    for oid in widths:
        levels.setdefault(depth_of[oid], []).append(oid)
    rewritten = deltas = before_total = after_total = 0
    with ThreadPoolExecutor(max(2, min(4, os.cpu_count() or 2))) as pool:
        for level in sorted(levels):
            for oid, before, after, envelope, is_delta in pool.map(encode, levels[level]):
                before_total += before
                after_total += after
                deltas += is_delta
                if envelope is not None and not dry_run:
                    repo.store.rewrite(oid, envelope)
                    rewritten += 1
    return RepackResult(len(widths), rewritten, deltas, before_total, after_total, time.perf_counter() - t0)


def _current(repo: Repository, oid: ObjectId) -> bytes:
    return repo.store.path(oid).read_bytes()


__all__ = ["DEFAULT_DEPTH", "ZSTD_LEVEL", "RepackResult", "repack"]
