"""Pickled weights (``pytorch_model.bin``, ``.pt``) → safetensors, without ever running their code.

Commit and checkout never unpickle anything: a pickle is an opaque (content-chunked) blob. Only an
explicit ``mv convert`` / ``mv commit --convert-pickles`` loads one, and only with
``torch.load(weights_only=True)`` — whose restricted unpickler was bypassed twice
(CVE-2025-32434, fixed in torch 2.6; CVE-2026-24747, fixed in 2.10). On an older torch we refuse,
with no fallback. Anything but a flat ``{str: Tensor}`` dict is refused too: optimizer states,
nested checkpoints and custom classes are not weights, and guessing would hide what was dropped.
"""

from __future__ import annotations

import os
import pickle
import re
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RevisionNotFound, UsageError
from ..ids import ObjectId
from ..objects import Tree
from ..paths import check_tree_path
from ..repo import Repository
from .errors import UnsafePickle

if TYPE_CHECKING:
    import torch

    from ..ops.commit import CommitResult

MIN_TORCH = (2, 10)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
Items = list[tuple[str, str, tuple[int, ...], memoryview]]


def check_torch_version(version: str) -> None:
    """Refuse a torch whose ``weights_only`` loader is known to be bypassable."""
    m = re.match(r"(\d+)\.(\d+)", version)
    if m is None or (int(m[1]), int(m[2])) < MIN_TORCH:
        raise UnsafePickle(
            f"torch {version} is too old to load pickles safely (weights_only was bypassed: "
            "CVE-2025-32434, CVE-2026-24747); install torch >= 2.10 to convert"
        )


def safetensors_name(path: str) -> str:
    """HF's names: ``pytorch_model.bin`` → ``model.safetensors``; ``x.pt`` → ``x.safetensors``."""
    folder, base = os.path.split(path)
    stem, _ext = os.path.splitext(base)
    if stem.startswith("pytorch_model"):
        stem = "model" + stem[len("pytorch_model") :]
    return os.path.join(folder, stem + ".safetensors").replace(os.sep, "/")


def _why(e: BaseException) -> str:
    text = str(e)
    m = re.search(r"Unsupported global: GLOBAL [\w.]+", text) or re.search(r"Unsupported operand \d+", text)
    if m:
        return m.group(0)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(e).__name__)
    return first[:200]


def load_state_dict(path: str | os.PathLike[str], where: str) -> dict[str, torch.Tensor]:
    """A flat dict of tensors from a pickle, loaded with ``weights_only=True`` only."""
    import torch

    check_torch_version(torch.__version__)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafePickle(
            f"{where}: refusing to load: it holds objects other than tensors ({_why(e)})"
        ) from None
    except (
        RuntimeError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        ImportError,
        OSError,
    ) as e:
        raise UnsafePickle(f"{where}: not a loadable torch checkpoint ({_why(e)})") from None
    if not isinstance(obj, Mapping):
        raise UnsafePickle(f"{where}: holds a {type(obj).__name__}, not a dict of tensors; not converted")
    out: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        if not isinstance(k, str):
            raise UnsafePickle(
                f"{where}: key {k!r} is not a string; only flat dicts of tensors are converted"
            )
        if not isinstance(v, torch.Tensor):
            raise UnsafePickle(
                f"{where}: {k[:80]!r} holds a {type(v).__name__}, not a tensor; "
                "only flat dicts of tensors are converted"
            )
        if v.layout != torch.strided or v.is_quantized:
            raise UnsafePickle(
                f"{where}: {k[:80]!r} is a {v.layout} / quantized tensor; safetensors stores dense ones"
            )
        out[k] = v
    if not out:
        raise UnsafePickle(f"{where}: holds no tensors")
    return out


def state_dict_items(sd: Mapping[str, torch.Tensor], where: str) -> Items:
    """(name, safetensors dtype, shape, raw bytes) per tensor; shared storage is copied apart."""
    import torch

    from ..ops.tensors import _torch_name

    items: Items = []
    for name, t in sd.items():
        c = t.detach().to("cpu").contiguous()
        try:
            dtype = _torch_name(c.dtype)
        except UsageError:
            raise UnsafePickle(
                f"{where}: {name[:80]!r} has dtype {c.dtype}, which safetensors cannot store"
            ) from None
        raw = c.reshape(-1).view(torch.uint8).numpy() if c.numel() else None
        items.append(
            (name, dtype, tuple(c.shape), memoryview(raw.data) if raw is not None else memoryview(b""))
        )
    return items


def write_safetensors(dest: Path, items: Items, metadata: dict[str, str] | None = None) -> int:
    """Write a safetensors file atomically (temp file, fsync, rename); returns its size."""
    import struct

    from ..formats.safetensors import build_header

    header = build_header(((n, d, s) for n, d, s, _b in items), metadata or {"format": "pt"})
    data = {n: b for n, _d, _s, b in items}
    tmp = dest.with_name(f".{dest.name}.mvtmp-{secrets.token_hex(4)}")
    try:
        with open(tmp, "xb") as f:
            f.write(struct.pack("<Q", len(header.header_bytes)) + header.header_bytes)
            for info in header.tensors:
                f.write(data[info.name])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return header.file_size


def looks_like_pickle(path: Path) -> bool:
    """torch's zip format or a raw pickle (protocol 2+): the files ``torch.load`` reads."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


@dataclass(frozen=True, slots=True)
class ConvertResult:
    commit: ObjectId
    source: str
    dest: str
    tensors: int
    bytes: int


def convert_rev(
    repo: Repository,
    rev: str,
    path: str,
    out: str | None = None,
    message: str | None = None,
    keep: bool = False,
    force: bool = False,
) -> ConvertResult:
    """Convert ``rev:path`` and commit the safetensors file on HEAD (replacing the pickle).

    The work folder follows (the new file written, the pickle removed) unless it has uncommitted
    changes there; nothing is committed if the pickle is refused.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ..ingest import Ingestor, default_workers
    from ..ops.checkout import update_worktree
    from ..ops.commit import move_head, write_commit
    from ..ops.materialize import write_entry
    from ..revparse import resolve_commit

    cid = resolve_commit(repo, rev)
    entry = repo.tree(repo.commit_object(cid).tree).by_path().get(path)
    if entry is None:
        raise RevisionNotFound(f"{path}: no such file in {rev}")
    if entry.kind in ("safetensors", "gguf"):
        raise UsageError(f"{path} is already a {entry.kind} file")
    dest = check_tree_path(out or safetensors_name(path))
    if not dest.endswith(".safetensors") or dest == path:
        raise UsageError(f"{dest}: the converted file's name must end in .safetensors")
    head = repo.refs.head()
    if head.id is None:
        raise RevisionNotFound("HEAD has no commits to convert on top of")
    head_entries = repo.tree(repo.commit_object(head.id).tree).by_path()
    if dest in head_entries and not force:
        raise UsageError(f"{dest} already exists in HEAD; pass --force to replace it, or -o NAME")
    repo.store.tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = repo.store.tmp_dir / f"convert-{secrets.token_hex(6)}"
    try:
        with ThreadPoolExecutor(default_workers()) as pool:
            write_entry(repo, entry, tmp, pool)
        sd = load_state_dict(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    items = state_dict_items(sd, path)
    msg = message if message is not None else f"Convert {path} to {dest}"
    with repo.store.transaction() as txn, Ingestor(txn) as ing:
        new_entry = ing.ingest_buffers(dest, items, {"format": "pt"})
        entries = dict(head_entries)
        if not keep:
            entries.pop(path, None)
        entries[dest] = new_entry
        tree = Tree(tuple(entries[p] for p in sorted(entries)))
        new = write_commit(repo, ing, tree, head.id, msg, None, allow_empty=False)
    update_worktree(repo, new)  # refuses (before writing) if the folder has changes in the way
    move_head(repo, new, head.id, f"convert: {path} -> {dest}")
    return ConvertResult(new, path, dest, len(items), new_entry.size)


@dataclass(frozen=True, slots=True)
class Converted:
    source: str
    dest: str
    tensors: int


def commit_converting_pickles(
    repo: Repository,
    message: str,
    scope: list[str] | None,
    meta: Mapping[str, object] | None,
    allow_empty: bool,
) -> tuple[CommitResult, list[Converted]]:
    """``mv commit --convert-pickles``: weight pickles become safetensors files, then commit.

    Each pickle is loaded (refused unless it is a flat dict of tensors) and its ``.safetensors``
    written atomically beside it; only when all are written are the pickles moved aside into
    ``.mv/tmp``. If anything fails — a refused pickle, the commit itself — the new files are
    removed and the pickles moved back: the folder is as it was.
    """
    from ..ignore import Ignore, walk_files
    from ..ops.commit import commit
    from ..ops.snapshot import in_scope
    from .validate import _is_weight_pickle

    root = repo.root
    found = [
        rel
        for rel, _st in walk_files(root, Ignore(root))
        if in_scope(rel, scope)
        and rel.lower().endswith(PICKLE_SUFFIXES)
        and _is_weight_pickle(rel)
        and looks_like_pickle(root / rel)
    ]
    for rel in found:
        dest = safetensors_name(rel)
        if (root / dest).exists():
            raise UsageError(f"{rel}: {dest} already exists; remove one of them before converting")
    backup = repo.store.tmp_dir / f"pickles-{secrets.token_hex(6)}"
    written: list[str] = []
    moved: list[str] = []
    done: list[Converted] = []
    try:
        for rel in found:
            dest = safetensors_name(rel)
            items = state_dict_items(load_state_dict(root / rel, rel), rel)
            write_safetensors(root / dest, items)
            written.append(dest)
            done.append(Converted(rel, dest, len(items)))
        for rel in found:
            (backup / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(root / rel, backup / rel)
            moved.append(rel)
        full_scope = None if scope is None else scope + written
        res = commit(repo, message, full_scope, meta, allow_empty)
    except BaseException:
        for rel in moved:
            os.replace(backup / rel, root / rel)
        for dest in written:
            (root / dest).unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)
    return res, done
