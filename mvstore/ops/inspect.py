"""``mv ls`` and ``mv cat``: look inside a revision without materializing it."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import RevisionNotFound
from ..objects import GGUFManifest, SafetensorsManifest, StoredObject, TensorEntry, TreeEntry
from ..repo import Repository
from ..revparse import resolve_commit, split_path
from .materialize import read_entry


@dataclass(frozen=True, slots=True)
class Listing:
    files: list[TreeEntry]
    tensors: list[TensorEntry]  # filled when the path names one safetensors or GGUF file


def tensor_entries(obj: StoredObject) -> list[TensorEntry] | None:
    """The tensor table of a weights manifest, GGUF included (dtype = the ggml type's name, shape =
    the dims as the file lists them, ne[0] first); None for anything else."""
    if isinstance(obj, SafetensorsManifest):
        return list(obj.tensors)
    if isinstance(obj, GGUFManifest):
        from ..formats.gguf import GGML_TYPES

        return [
            TensorEntry(t.name, GGML_TYPES[t.ggml_type][0], t.dims, t.offset, t.offset + t.nbytes, t.chunks, t.data)
            for t in obj.tensors
        ]
    return None


def ls(repo: Repository, spec: str) -> Listing:
    rev, path = split_path(spec)
    cid = resolve_commit(repo, rev)
    tree = repo.tree(repo.commit_object(cid).tree)
    if path is None:
        return Listing(list(tree.entries), [])
    entry = tree.by_path().get(path)
    if entry is not None:
        tensors = None
        if entry.kind in ("safetensors", "gguf") and entry.id is not None:
            tensors = tensor_entries(repo.read_object(entry.id))
        return Listing([entry], tensors or [])
    files = [e for e in tree.entries if e.path.startswith(path + "/")]
    if not files:
        raise RevisionNotFound(f"{path}: no such file or folder in {rev}")
    return Listing(files, [])


def cat(repo: Repository, spec: str) -> bytes:
    rev, path = split_path(spec)
    if path is None:
        raise RevisionNotFound(f"{spec}: expected REV:PATH")
    cid = resolve_commit(repo, rev)
    entry = repo.tree(repo.commit_object(cid).tree).by_path().get(path)
    if entry is None:
        raise RevisionNotFound(f"{path}: no such file in {rev}")
    return read_entry(repo, entry)
