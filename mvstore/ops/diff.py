"""``mv diff``: files added/removed/changed, and inside safetensors and GGUF files, tensors.

Tensor equality comes from chunk ids (no data read). ``stats`` reads the changed tensors and adds
numerical change: relative L2 norm of the difference and the largest absolute difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import codec
from ..codec import KIND_STRUCT
from ..ids import ObjectId
from ..ingest import Ingestor
from ..objects import TensorEntry, Tree, TreeEntry
from ..repo import Repository
from ..revparse import resolve_commit
from .inspect import tensor_entries
from .status import worktree_entries


@dataclass
class TensorChange:
    name: str
    status: str  # added | removed | changed | retyped
    dtype: str
    shape: tuple[int, ...]
    old_dtype: str | None = None
    old_shape: tuple[int, ...] | None = None
    changed_bytes: int = 0  # bytes in chunks that differ (what a new commit re-stores)
    nbytes: int = 0
    rel_change: float | None = None  # ||b - a|| / ||a||
    max_abs_diff: float | None = None


@dataclass
class FileChange:
    path: str
    status: str  # added | removed | modified
    old_size: int | None
    new_size: int | None
    tensors: list[TensorChange] = field(default_factory=list)


@dataclass
class DiffResult:
    old: ObjectId | None
    new: ObjectId | None  # None: the work folder
    files: list[FileChange]

    @property
    def tensors_changed(self) -> int:
        return sum(len(f.tensors) for f in self.files)


def _tree_of(repo: Repository, rev: str) -> tuple[ObjectId, Tree]:
    cid = resolve_commit(repo, rev)
    return cid, repo.tree(repo.commit_object(cid).tree)


def diff(repo: Repository, a: str | None = None, b: str | None = None, stats: bool = False) -> DiffResult:
    """``diff()``: HEAD vs work folder; ``diff(A)``: A vs work folder; ``diff(A, B)``: A vs B."""
    old_id, old_tree = _tree_of(repo, a or "HEAD")
    if b is None:
        new_entries, _ = worktree_entries(repo)
        new_id = None
    else:
        new_id, new_tree = _tree_of(repo, b)
        new_entries = new_tree.by_path()
    old_entries = old_tree.by_path()
    files: list[FileChange] = []
    for path in sorted(set(old_entries) | set(new_entries)):
        o, n = old_entries.get(path), new_entries.get(path)
        if o is not None and n is not None and o.same_content(n):
            continue
        status = "added" if o is None else "removed" if n is None else "modified"
        fc = FileChange(path, status, o.size if o else None, n.size if n else None)
        fc.tensors = _tensor_changes(repo, o, n, stats and b is not None)
        files.append(fc)
    return DiffResult(old_id, new_id, files)


class _StructCapture:
    """A writer that keeps only structured objects, in memory: manifests of uncommitted files."""

    def __init__(self) -> None:
        self.objects: dict[ObjectId, bytes] = {}

    def put(self, oid: ObjectId, data: bytes | memoryview, kind: int) -> bool:
        if kind == KIND_STRUCT:
            self.objects[oid] = bytes(data)
        return True


def _tensors(repo: Repository, e: TreeEntry | None) -> list[TensorEntry] | None:
    """The tensor table of a safetensors or GGUF entry (committed, or only in the work folder)."""
    if e is None or e.kind not in ("safetensors", "gguf") or e.id is None:
        return None
    if repo.store.has(e.id):
        return tensor_entries(repo.read_object(e.id))
    # A work-folder file that was never committed: rebuild its manifest in memory.
    capture = _StructCapture()
    with Ingestor(capture, strict=False) as ing:
        entry, _ = ing.ingest_file(repo.root / e.path, e.path)
    raw = capture.objects.get(entry.id) if entry.id else None
    return tensor_entries(codec.decode_object(raw, entry.path)) if raw is not None else None


def _tensor_changes(
    repo: Repository, o: TreeEntry | None, n: TreeEntry | None, stats: bool
) -> list[TensorChange]:
    mo, mn = _tensors(repo, o), _tensors(repo, n)
    if mo is None and mn is None:
        return []
    to = {t.name: t for t in mo} if mo else {}
    tn = {t.name: t for t in mn} if mn else {}
    out = []
    for name in sorted(set(to) | set(tn)):
        a, b = to.get(name), tn.get(name)
        if a is not None and b is not None and a.content_key() == b.content_key():
            continue
        if a is None:
            assert b is not None
            out.append(TensorChange(name, "added", b.dtype, b.shape, nbytes=b.nbytes, changed_bytes=b.nbytes))
            continue
        if b is None:
            out.append(TensorChange(name, "removed", a.dtype, a.shape, nbytes=a.nbytes))
            continue
        same_layout = a.dtype == b.dtype and a.shape == b.shape
        tc = TensorChange(
            name,
            "changed" if same_layout else "retyped",
            b.dtype,
            b.shape,
            None if same_layout else a.dtype,
            None if same_layout else a.shape,
            changed_bytes=_changed_bytes(a, b),
            nbytes=b.nbytes,
        )
        if stats and same_layout:
            from .tensors import numeric_change

            tc.rel_change, tc.max_abs_diff = numeric_change(repo, a, b)
        out.append(tc)
    return out


def _changed_bytes(a: TensorEntry, b: TensorEntry) -> int:
    if b.data is not None:
        return b.nbytes
    old = {c.id for c in a.chunks}
    return sum(c.size for c in b.chunks if c.id not in old)
