"""Tensors straight from the object store: load without rebuilding files, save without temp files.

A tensor stored as a single raw chunk is returned as a view over a private (copy-on-write) map of
its object file: zero-copy, and the hash is still checked before the tensor is handed out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import InvalidSafetensors, UsageError
from ..ids import ObjectId
from ..ingest import Ingestor, default_workers
from ..objects import SafetensorsManifest, TensorEntry, Tree
from ..repo import Repository
from ..revparse import resolve_commit
from .commit import commit_entry, move_head
from .materialize import read_entry

if TYPE_CHECKING:
    import numpy as np
    import torch


def tensor_bytes(repo: Repository, t: TensorEntry, verify: bool = True) -> memoryview:
    if t.data is not None:
        return memoryview(bytearray(t.data))
    if len(t.chunks) == 1:
        return repo.store.map_data(t.chunks[0].id, verify=verify)
    out = bytearray(t.nbytes)
    view = memoryview(out)
    pos = 0
    for c in t.chunks:
        repo.store.read_into(c.id, view[pos : pos + c.size])
        pos += c.size
    return view


_NP = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "U16": "uint16",
    "U32": "uint32",
    "U64": "uint64",
    "BOOL": "bool",
    "C64": "complex64",
}


def as_numpy(t: TensorEntry, data: memoryview) -> np.ndarray[Any, Any] | None:
    """A float view for numeric comparison; None for dtypes numpy cannot represent."""
    import numpy as np

    if t.dtype == "BF16":
        u = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
        return u.view(np.float32).reshape(t.shape)
    name = _NP.get(t.dtype)
    if name is None:
        return None
    return np.frombuffer(data, dtype=np.dtype(name).newbyteorder("<")).reshape(t.shape)


def numeric_change(repo: Repository, a: TensorEntry, b: TensorEntry) -> tuple[float | None, float | None]:
    import numpy as np

    x, y = as_numpy(a, tensor_bytes(repo, a)), as_numpy(b, tensor_bytes(repo, b))
    if x is None or y is None or x.size == 0:
        return None, None
    wide = np.complex128 if np.iscomplexobj(x) else np.float64
    xf, yf = x.astype(wide).ravel(), y.astype(wide).ravel()
    d = yf - xf
    norm = float(np.linalg.norm(xf))
    rel = float(np.linalg.norm(d)) / norm if norm > 0 else (0.0 if not d.any() else float("inf"))
    return rel, float(np.abs(d).max())


# -- torch ---------------------------------------------------------------------------------------------


def _torch_dtypes() -> dict[str, Any]:
    import torch

    table = {
        "F64": torch.float64,
        "F32": torch.float32,
        "F16": torch.float16,
        "BF16": torch.bfloat16,
        "I64": torch.int64,
        "I32": torch.int32,
        "I16": torch.int16,
        "I8": torch.int8,
        "U8": torch.uint8,
        "BOOL": torch.bool,
        "C64": torch.complex64,
        "F8_E4M3": torch.float8_e4m3fn,
        "F8_E5M2": torch.float8_e5m2,
        "F8_E4M3FNUZ": torch.float8_e4m3fnuz,
        "F8_E5M2FNUZ": torch.float8_e5m2fnuz,
        "U16": torch.uint16,
        "U32": torch.uint32,
        "U64": torch.uint64,
    }
    if hasattr(torch, "float8_e8m0fnu"):
        table["F8_E8M0"] = torch.float8_e8m0fnu
    return table


def _to_torch(t: TensorEntry, data: memoryview, device: str) -> torch.Tensor:
    import torch

    dt = _torch_dtypes().get(t.dtype)
    if dt is None:
        raise UsageError(f"tensor {t.name!r}: dtype {t.dtype} has no torch equivalent")
    if t.nbytes == 0:
        out = torch.empty(t.shape, dtype=dt)
    else:
        out = torch.frombuffer(data, dtype=dt).reshape(t.shape)
    return out if device == "cpu" else out.to(device)


def weight_files(repo: Repository, tree: Tree, file: str | None) -> list[str]:
    """Which safetensors files make up "the model" of a tree (explicit file, index, or single file)."""
    by_path = tree.by_path()
    if file is not None:
        e = by_path.get(file)
        if e is None or e.kind != "safetensors":
            raise UsageError(f"{file}: no safetensors file at that path in this revision")
        return [file]
    index = by_path.get("model.safetensors.index.json")
    if index is not None:
        try:
            doc = json.loads(read_entry(repo, index))
            shards = sorted(set(doc["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidSafetensors("model.safetensors.index.json: not a valid index") from None
        missing = [s for s in shards if s not in by_path]
        if missing:
            raise InvalidSafetensors(f"model.safetensors.index.json names missing shard {missing[0]!r}")
        return [str(s) for s in shards]
    if "model.safetensors" in by_path:
        return ["model.safetensors"]
    candidates = [e.path for e in tree.entries if e.kind == "safetensors"]
    if len(candidates) == 1:
        return candidates
    if not candidates:
        raise UsageError("this revision has no safetensors files")
    raise UsageError(f"several safetensors files ({', '.join(candidates[:4])}…); pass file=")


def load_state_dict(
    repo: Repository,
    rev: str = "HEAD",
    file: str | None = None,
    device: str = "cpu",
    names: list[str] | None = None,
    verify: bool = True,
) -> dict[str, torch.Tensor]:
    cid = resolve_commit(repo, rev)
    tree = repo.tree(repo.commit_object(cid).tree)
    by_path = tree.by_path()
    wanted: list[TensorEntry] = []
    for path in weight_files(repo, tree, file):
        entry = by_path[path]
        assert entry.id is not None
        m = repo.manifest(entry.id)
        wanted.extend(m.tensors if names is None else [t for t in m.tensors if t.name in names])
    seen: set[str] = set()
    for t in wanted:
        if t.name in seen:
            raise InvalidSafetensors(f"tensor {t.name!r} appears in more than one weight file")
        seen.add(t.name)
    if names is not None:
        missing = [n for n in names if n not in seen]
        if missing:
            raise UsageError(f"no tensor named {missing[0]!r} in {rev}")
    return _load(repo, wanted, device, verify)


def _load(repo: Repository, wanted: list[TensorEntry], device: str, verify: bool) -> dict[str, torch.Tensor]:
    """Parallel at chunk level: single-chunk tensors are zero-copy maps; multi-chunk ones are read
    straight into one uninitialized tensor (no zero-filled staging buffer), each chunk verified."""
    import torch

    dtypes = _torch_dtypes()
    out: dict[str, torch.Tensor] = {}
    jobs: list[tuple[ObjectId, memoryview]] = []
    singles: list[TensorEntry] = []
    for t in wanted:
        if t.data is not None or t.nbytes == 0:
            out[t.name] = _to_torch(t, memoryview(bytearray(t.data or b"")), device)
        elif len(t.chunks) == 1:
            singles.append(t)
        else:
            if t.dtype not in dtypes:
                raise UsageError(f"tensor {t.name!r}: dtype {t.dtype} has no torch equivalent")
            flat = torch.empty(t.nbytes, dtype=torch.uint8)
            view = memoryview(flat.numpy().data)
            pos = 0
            for c in t.chunks:
                jobs.append((c.id, view[pos : pos + c.size]))
                pos += c.size
            out[t.name] = flat.view(dtypes[t.dtype]).reshape(t.shape)
    with ThreadPoolExecutor(default_workers()) as pool:
        maps = pool.map(lambda t: repo.store.map_data(t.chunks[0].id, verify=verify), singles)
        for _ in pool.map(lambda j: repo.store.read_into(j[0], j[1]), jobs):
            pass
        for t, data in zip(singles, maps, strict=True):
            out[t.name] = _to_torch(t, data, device)
    if device != "cpu":
        out = {k: v.to(device) for k, v in out.items()}
    return {t.name: out[t.name] for t in wanted}


def manifest_of(repo: Repository, rev: str, file: str) -> SafetensorsManifest:
    cid = resolve_commit(repo, rev)
    entry = repo.tree(repo.commit_object(cid).tree).by_path().get(file)
    if entry is None or entry.kind != "safetensors" or entry.id is None:
        raise UsageError(f"{file}: no safetensors file at that path in {rev}")
    return repo.manifest(entry.id)


def _torch_name(dtype: Any) -> str:
    for k, v in _torch_dtypes().items():
        if v == dtype:
            return k
    raise UsageError(f"dtype {dtype} cannot be stored in safetensors")


def save(
    repo: Repository,
    state_dict: Mapping[str, torch.Tensor],
    path: str = "model.safetensors",
    message: str = "",
    meta: Mapping[str, object] | None = None,
    metadata: dict[str, str] | None = None,
) -> ObjectId:
    """Commit a state dict as ``path`` on top of HEAD: hashed and stored from memory, no temp file."""
    from ..paths import check_tree_path

    check_tree_path(path)
    if not path.endswith(".safetensors"):
        raise UsageError(f"{path}: save() writes safetensors; the path must end in .safetensors")
    import torch

    items = []
    for name, t in state_dict.items():
        if not isinstance(t, torch.Tensor):
            raise UsageError(f"{name!r} is not a tensor")
        c = t.detach().to("cpu").contiguous()
        raw = c.reshape(-1).view(torch.uint8).numpy() if c.numel() else None
        items.append(
            (
                name,
                _torch_name(c.dtype),
                tuple(c.shape),
                memoryview(raw.data) if raw is not None else memoryview(b""),
            )
        )
    meta_header = {"format": "pt"} if metadata is None else metadata
    with repo.store.transaction() as txn, Ingestor(txn) as ing:
        entry = ing.ingest_buffers(path, items, meta_header)
        cid, parent = commit_entry(repo, ing, entry, message, meta)
    move_head(repo, cid, parent, f"save: {path}")
    return cid
