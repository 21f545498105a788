"""``mv commit`` and ``Repo.save``: objects first (one durability barrier), the ref last by CAS."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InvalidPath, NothingToCommit, UsageError
from ..ids import ObjectId
from ..ingest import Ingestor
from ..objects import Commit, MetaValue, Tree, TreeEntry
from ..paths import file_folder_clash
from ..refs import HEADS
from ..repo import Repository
from ..statcache import StatCache
from .snapshot import merge_tree, snapshot

MAX_MESSAGE = 1 << 20


@dataclass(frozen=True, slots=True)
class CommitResult:
    id: ObjectId
    branch: str | None
    parent: ObjectId | None
    files: int
    hashed_files: int
    hashed_bytes: int
    new_objects: int
    new_bytes: int
    logical_bytes: int


def parse_meta(items: list[str]) -> dict[str, MetaValue]:
    """``K=V`` strings → typed values: numbers and booleans when V is exactly their JSON form."""
    out: dict[str, MetaValue] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--meta expects KEY=VALUE, got {item!r}")
        out[key] = coerce_meta(value)
    return out


def coerce_meta(value: str) -> MetaValue:
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    if isinstance(parsed, (int, float, bool)) and json.dumps(parsed) == value:
        return parsed  # type: ignore[no-any-return]
    return value


def _check_meta(meta: Mapping[str, object] | None) -> tuple[tuple[str, MetaValue], ...]:
    if not meta:
        return ()
    out = []
    for k, v in meta.items():
        if not isinstance(k, str) or not k:
            raise UsageError(f"metadata keys must be non-empty strings, got {k!r}")
        if not isinstance(v, (str, int, float, bool, type(None))):
            raise UsageError(f"metadata value for {k!r} must be a string, number or boolean")
        out.append((k, v))
    return tuple(sorted(out))


def write_commit(
    repo: Repository,
    ingestor: Ingestor,
    tree: Tree,
    parent: ObjectId | None,
    message: str,
    meta: Mapping[str, object] | None,
    allow_empty: bool,
) -> ObjectId:
    if len(message.encode()) > MAX_MESSAGE:
        raise UsageError("commit message is larger than 1 MiB")
    clash = file_folder_clash(e.path for e in tree.entries)  # every writer (commit, save, convert)
    if clash is not None:
        raise InvalidPath(f"{clash}: a parent folder is also a file in the tree")
    if parent is not None and not allow_empty:
        parent_commit = repo.commit_object(parent)
        if repo.tree(parent_commit.tree) == tree:
            raise NothingToCommit("nothing to commit: the folder matches HEAD")
    if parent is None and not tree.entries and not allow_empty:
        raise NothingToCommit("nothing to commit: the folder is empty")
    tree_id = ingestor.put_struct(tree)
    now = int(time.time())
    commit = Commit(
        tree=tree_id,
        parents=(parent,) if parent else (),
        author=repo.author(),
        time=now,
        tz_offset=local_tz_minutes(now),
        message=message,
        meta=_check_meta(meta),
    )
    return ingestor.put_struct(commit)


def local_tz_minutes(when: int) -> int:
    lt = time.localtime(when)
    return (lt.tm_gmtoff or 0) // 60


def move_head(repo: Repository, new: ObjectId, old: ObjectId | None, message: str) -> str | None:
    """Advance the current branch (or a detached HEAD) from ``old`` to ``new`` by compare-and-swap."""
    head = repo.refs.head()
    if head.branch is not None:
        repo.refs.update(HEADS + head.branch, new, expected=old, message=message)
    else:
        repo.refs.update("HEAD", new, expected=old, message=message)
    return head.branch


def commit(
    repo: Repository,
    message: str,
    scope: list[str] | None = None,
    meta: Mapping[str, object] | None = None,
    allow_empty: bool = False,
) -> CommitResult:
    head = repo.refs.head()
    parent = head.id
    parent_tree = repo.tree(repo.commit_object(parent).tree) if parent else Tree(())
    cache = StatCache(repo.stat_cache_path())
    with repo.store.transaction() as txn, Ingestor(txn) as ing:
        snap = snapshot(repo, ing, cache, scope, store=True)
        for s in scope or ():
            known = (*snap.entries, *(e.path for e in parent_tree.entries))
            if not any(p == s or p.startswith(s + "/") for p in known):
                raise UsageError(f"{s}: matches no file in the folder or in HEAD")
        tree = merge_tree(parent_tree, snap, scope)
        cid = write_commit(repo, ing, tree, parent, message, meta, allow_empty)
    # The transaction's exit made every object durable; only now may a ref point at them.
    branch = move_head(repo, cid, parent, f"commit: {message.splitlines()[0] if message else ''}")
    if scope is None and set(cache.entries) == {e.path for e in tree.entries}:
        cache.mark_clean(cid)
    cache.save()
    return CommitResult(
        id=cid,
        branch=branch,
        parent=parent,
        files=len(tree.entries),
        hashed_files=snap.hashed_files,
        hashed_bytes=snap.hashed_bytes,
        new_objects=txn.new_objects,
        new_bytes=txn.new_bytes,
        logical_bytes=tree.size,
    )


def commit_entry(
    repo: Repository, ingest: Ingestor, entry: TreeEntry, message: str, meta: Mapping[str, object] | None
) -> tuple[ObjectId, ObjectId | None]:
    """Commit one prepared entry on top of HEAD (used by ``save``), keeping every other file."""
    head = repo.refs.head()
    parent = head.id
    parent_tree = repo.tree(repo.commit_object(parent).tree) if parent else Tree(())
    entries = {e.path: e for e in parent_tree.entries}
    entries[entry.path] = entry
    tree = Tree(tuple(entries[p] for p in sorted(entries)))
    cid = write_commit(repo, ingest, tree, parent, message, meta, allow_empty=False)
    return cid, parent
