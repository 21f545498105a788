"""``mv ls`` and ``mv cat``: look inside a revision without materializing it."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import RevisionNotFound
from ..objects import TensorEntry, TreeEntry
from ..repo import Repository
from ..revparse import resolve_commit, split_path
from .materialize import read_entry


@dataclass(frozen=True, slots=True)
class Listing:
    files: list[TreeEntry]
    tensors: list[TensorEntry]  # filled when the path names one safetensors file


def ls(repo: Repository, spec: str) -> Listing:
    rev, path = split_path(spec)
    cid = resolve_commit(repo, rev)
    tree = repo.tree(repo.commit_object(cid).tree)
    if path is None:
        return Listing(list(tree.entries), [])
    entry = tree.by_path().get(path)
    if entry is not None:
        tensors = list(repo.manifest(entry.id).tensors) if entry.kind == "safetensors" and entry.id else []
        return Listing([entry], tensors)
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
