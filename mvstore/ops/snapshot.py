"""Read the work folder into tree entries, re-hashing only what the stat cache cannot vouch for."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidPath
from ..ignore import Ignore, walk_files
from ..ingest import Ingestor
from ..objects import Tree, TreeEntry
from ..paths import check_tree_path
from ..repo import Repository
from ..statcache import FileStat, StatCache, now_ns


@dataclass
class Snapshot:
    entries: dict[str, TreeEntry] = field(default_factory=dict)
    hashed_files: int = 0
    hashed_bytes: int = 0


def normalize_pathspecs(
    repo: Repository, paths: list[str] | None, cwd: Path | None = None
) -> list[str] | None:
    """User paths (relative to cwd) → tree paths relative to the repository root ('' = everything)."""
    if not paths:
        return None
    base = Path(cwd or os.getcwd()).resolve()
    out = []
    for p in paths:
        full = (base / p).resolve() if not os.path.isabs(p) else Path(p).resolve()
        try:
            rel = full.relative_to(repo.root).as_posix()
        except ValueError:
            raise InvalidPath(f"{p}: outside the repository at {repo.root}") from None
        if rel == ".":
            return None
        check_tree_path(rel)
        out.append(rel)
    return out


def in_scope(path: str, scope: list[str] | None) -> bool:
    return scope is None or any(path == s or path.startswith(s + "/") for s in scope)


def snapshot(
    repo: Repository, ingestor: Ingestor, cache: StatCache, scope: list[str] | None = None, store: bool = True
) -> Snapshot:
    """Entries for every (in-scope) file. With ``store``, every entry's objects exist afterwards."""
    snap = Snapshot()
    ignore = Ignore(repo.root)
    for rel, st in walk_files(repo.root, ignore):
        if not in_scope(rel, scope):
            continue
        check_tree_path(rel)
        fst = FileStat.of(st)
        entry = cache.lookup(rel, fst)
        if entry is not None and store and entry.id is not None and not repo.store.freshen(entry.id):
            # Recorded by status (hash only): the objects still have to be written. (freshen, not
            # has: a reused object must look recent to a concurrent gc, see ops/gc.py.)
            entry = None
        if entry is None:
            started = now_ns()
            entry, fst = ingestor.ingest_file(repo.root / rel, rel)
            cache.record(entry, fst, started)
            snap.hashed_files += 1
            snap.hashed_bytes += fst.size
        snap.entries[rel] = entry
    return snap


def merge_tree(parent: Tree, snap: Snapshot, scope: list[str] | None) -> Tree:
    """The parent's entries outside ``scope`` plus the snapshot's entries inside it."""
    entries = {e.path: e for e in parent.entries if not in_scope(e.path, scope)}
    entries.update(snap.entries)
    return Tree(tuple(entries[p] for p in sorted(entries)))
