"""``mv stats``: logical bytes (every reachable commit's files, counted in full) vs stored bytes."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..ids import ObjectId
from ..refs import HEADS, TAGS
from ..repo import Repository
from .history import walk


@dataclass(frozen=True, slots=True)
class StatsResult:
    commits: int
    objects: int
    stored_bytes: int
    logical_bytes: int
    head_bytes: int

    @property
    def dedup_ratio(self) -> float:
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else 0.0


def reachable_commits(repo: Repository) -> dict[ObjectId, int]:
    """Every commit reachable from a ref or HEAD → its tree size."""
    starts: set[ObjectId] = set()
    for prefix in (HEADS, TAGS):
        for oid in repo.refs.list(prefix).values():
            starts.add(repo.peel(oid))
    head = repo.refs.head()
    if head.id is not None:
        starts.add(head.id)
    sizes: dict[ObjectId, int] = {}
    for s in starts:
        if s in sizes:
            continue
        for oid, c in walk(repo, s):
            if oid in sizes:
                continue
            sizes[oid] = repo.tree(c.tree).size
    return sizes


def stats(repo: Repository) -> StatsResult:
    sizes = reachable_commits(repo)
    objects = stored = 0
    root = repo.store.root
    if root.is_dir():
        for fan in os.scandir(root):
            if not fan.is_dir() or len(fan.name) != 2:
                continue
            for obj in os.scandir(fan.path):
                objects += 1
                stored += obj.stat().st_size
    head = repo.refs.head()
    head_bytes = sizes.get(head.id, 0) if head.id else 0
    return StatsResult(len(sizes), objects, stored, sum(sizes.values()), head_bytes)
