"""``mv log`` and ``mv show``."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from ..ids import ObjectId
from ..objects import Commit
from ..repo import Repository
from ..revparse import resolve_commit


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: ObjectId
    commit: Commit
    refs: tuple[str, ...]


def walk(repo: Repository, start: ObjectId) -> Iterator[tuple[ObjectId, Commit]]:
    """Commits reachable from ``start``, newest first (by time, then id), each once."""
    seen = {start}
    first = repo.commit_object(start)
    heap = [(-first.time, bytes(start), start, first)]
    while heap:
        _t, _b, oid, c = heapq.heappop(heap)
        yield oid, c
        for p in c.parents:
            if p not in seen:
                seen.add(p)
                pc = repo.commit_object(p)
                heapq.heappush(heap, (-pc.time, bytes(p), p, pc))


def ref_names(repo: Repository) -> dict[ObjectId, list[str]]:
    """Commit id → names (branches, then tags) pointing at it, for decorating the log."""
    out: dict[ObjectId, list[str]] = {}
    head = repo.refs.head()
    from ..refs import HEADS, TAGS

    for name, oid in repo.refs.list(HEADS).items():
        out.setdefault(oid, []).append(name)
    for name, oid in repo.refs.list(TAGS).items():
        try:
            out.setdefault(repo.peel(oid), []).append(f"tag: {name}")
        except Exception:  # a dangling tag must not break log
            continue
    if head.branch is None and head.id is not None:
        out.setdefault(head.id, []).insert(0, "HEAD")
    return out


def log(
    repo: Repository, rev: str = "HEAD", limit: int | None = None, stage: str | None = None
) -> list[LogEntry]:
    """History from ``rev``; with ``stage``, only commits of versions currently at that stage."""
    start = resolve_commit(repo, rev)
    names = ref_names(repo)
    staged = None
    if stage is not None:
        from ..release.stages import commits_at_stage

        staged = commits_at_stage(repo, stage)
    out: list[LogEntry] = []
    for oid, c in walk(repo, start):
        if limit is not None and len(out) >= limit:
            break
        if staged is not None:
            if oid not in staged:
                continue
            out.append(
                LogEntry(oid, c, tuple(names.get(oid, ())) + tuple(f"{stage}: {v}" for v in staged[oid]))
            )
            continue
        out.append(LogEntry(oid, c, tuple(names.get(oid, ()))))
    return out
