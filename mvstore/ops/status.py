"""``mv status``: the work folder against HEAD, using the stat cache."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ids import ObjectId
from ..ingest import Ingestor
from ..objects import Tree, TreeEntry
from ..repo import Repository
from ..statcache import StatCache
from .snapshot import in_scope, snapshot


@dataclass
class StatusResult:
    branch: str | None
    head: ObjectId | None
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    hashed_files: int = 0

    @property
    def clean(self) -> bool:
        return not (self.added or self.modified or self.deleted)


def head_tree(repo: Repository) -> Tree:
    head = repo.refs.head()
    return repo.tree(repo.commit_object(head.id).tree) if head.id else Tree(())


def worktree_entries(
    repo: Repository, scope: list[str] | None = None, cache: StatCache | None = None
) -> tuple[dict[str, TreeEntry], int]:
    """Hash-only snapshot (no objects written); refreshes the stat cache like ``git status`` does."""
    own = cache is None
    cache = cache or StatCache(repo.stat_cache_path())
    with Ingestor(None) as ing:
        snap = snapshot(repo, ing, cache, scope, store=False)
    if scope is None:
        for gone in [p for p in cache.entries if p not in snap.entries]:
            cache.forget(gone)
    if own:
        cache.save()
    return snap.entries, snap.hashed_files


def status(repo: Repository, scope: list[str] | None = None) -> StatusResult:
    head = repo.refs.head()
    base = {e.path: e for e in head_tree(repo).entries if in_scope(e.path, scope)}
    cache = StatCache(repo.stat_cache_path())
    current, hashed = worktree_entries(repo, scope, cache)
    res = StatusResult(branch=head.branch, head=head.id, hashed_files=hashed)
    for path, entry in current.items():
        old = base.get(path)
        if old is None:
            res.added.append(path)
        elif not entry.same_content(old):
            res.modified.append(path)
    res.deleted = [p for p in base if p not in current]
    if res.clean and scope is None and head.id is not None:
        cache.mark_clean(head.id)
    cache.save()
    return res
