"""``mv log`` and ``mv show``."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
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
    """Commits reachable from ``start``, newest first (by time, then id), each once; history stops
    at a shallow clone's edge (parents deliberately not fetched)."""
    seen = {start}
    edge = repo.shallow_commits()
    first = repo.commit_object(start)
    heap = [(-first.time, bytes(start), start, first)]
    while heap:
        _t, _b, oid, c = heapq.heappop(heap)
        yield oid, c
        for p in c.parents:
            if oid in edge and not repo.store.has(p):
                continue
            if p not in seen:
                seen.add(p)
                pc = repo.commit_object(p)
                heapq.heappush(heap, (-pc.time, bytes(p), p, pc))


def topo_order(repo: Repository, starts: Iterable[ObjectId]) -> list[tuple[ObjectId, Commit]]:
    """Commits reachable from ``starts``, every child before its parents; among commits that are
    ready at once, newest first. Timestamps have one-second resolution and clocks skew, so ordering
    by time alone can put a parent before its child (``git log --topo-order``, Kahn's algorithm)."""
    commits: dict[ObjectId, Commit] = {}
    children: dict[ObjectId, int] = {}
    edge = repo.shallow_commits()
    stack = list(dict.fromkeys(starts))
    while stack:
        oid = stack.pop()
        if oid in commits:
            continue
        c = commits[oid] = repo.commit_object(oid)
        for p in c.parents:
            if oid in edge and not repo.store.has(p):
                continue  # beyond a shallow clone's edge
            children[p] = children.get(p, 0) + 1
            stack.append(p)
    heap = [(-c.time, bytes(o), o) for o, c in commits.items() if children.get(o, 0) == 0]
    heapq.heapify(heap)
    out: list[tuple[ObjectId, Commit]] = []
    while heap:
        _t, _b, oid = heapq.heappop(heap)
        c = commits[oid]
        out.append((oid, c))
        for p in dict.fromkeys(c.parents):
            if p not in commits:
                continue  # beyond a shallow clone's edge
            children[p] -= c.parents.count(p)
            if children[p] == 0:
                heapq.heappush(heap, (-commits[p].time, bytes(p), p))
    return out


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
