"""Tags and branches."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import RefExists, RevisionNotFound, UsageError
from ..ids import ObjectId
from ..ingest import Ingestor
from ..objects import Tag
from ..refs import ANY, HEADS, TAGS, check_ref_name
from ..repo import Repository
from ..revparse import resolve_commit
from .commit import local_tz_minutes


@dataclass(frozen=True, slots=True)
class RefInfo:
    name: str
    id: ObjectId  # what the ref file holds (a tag object for annotated tags)
    commit: ObjectId  # the commit it peels to
    annotated: bool
    message: str = ""


def create_tag(
    repo: Repository,
    name: str,
    rev: str = "HEAD",
    message: str | None = None,
    force: bool = False,
    signer: Callable[[Tag], Tag] | None = None,
) -> RefInfo:
    """A lightweight tag, or an annotated tag object when a message is given (or it is signed).

    A name that looks like a version (``v1``…, ``1``…) must be a valid semantic version.
    """
    from ..release.semver import check_tag_name

    check_ref_name(name, "tag")
    check_tag_name(name)
    target = resolve_commit(repo, rev)
    old = repo.refs.read(TAGS + name)
    if old is not None and not force:
        raise RefExists(f"tag {name!r} already exists (at {old.hex()[:12]}); use --force to move it")
    ref_id = target
    if signer is not None and message is None:
        message = name
    if message is not None:
        now = int(time.time())
        tag = Tag(target, "commit", name, repo.author(), now, local_tz_minutes(now), message)
        if signer is not None:
            tag = signer(tag)
        with repo.store.transaction() as txn, Ingestor(txn) as ing:
            ref_id = ing.put_struct(tag)
    why = f"tag: {name}" if old is None else f"tag --force: {name} moved from {old.hex()}"
    repo.refs.update(TAGS + name, ref_id, expected=old if force else None, message=why)
    return RefInfo(name, ref_id, target, message is not None, message or "")


def list_tags(repo: Repository) -> list[RefInfo]:
    out = []
    for name, oid in repo.refs.list(TAGS).items():
        obj = repo.read_object(oid)
        if isinstance(obj, Tag):
            out.append(RefInfo(name, oid, repo.peel(oid), True, obj.message))
        else:
            out.append(RefInfo(name, oid, oid, False))
    return out


def delete_tag(repo: Repository, name: str) -> ObjectId:
    check_ref_name(name, "tag")
    old = repo.refs.read(TAGS + name)
    if old is None:
        raise RevisionNotFound(f"no tag named {name!r}")
    repo.refs.update(TAGS + name, None, expected=old, message=f"tag -d: {name}")
    return old


def create_branch(repo: Repository, name: str, rev: str = "HEAD") -> RefInfo:
    check_ref_name(name, "branch")
    target = resolve_commit(repo, rev)
    repo.refs.update(HEADS + name, target, expected=None, message=f"branch: created from {rev}")
    return RefInfo(name, target, target, False)


def list_branches(repo: Repository) -> list[RefInfo]:
    return [RefInfo(n, oid, oid, False) for n, oid in repo.refs.list(HEADS).items()]


def delete_branch(repo: Repository, name: str) -> ObjectId:
    check_ref_name(name, "branch")
    if repo.refs.head().branch == name:
        raise UsageError(f"cannot delete the current branch {name!r}")
    old = repo.refs.read(HEADS + name)
    if old is None:
        raise RevisionNotFound(f"no branch named {name!r}")
    repo.refs.update(HEADS + name, None, expected=old, message="branch -d")
    return old


__all__ = [
    "ANY",
    "RefInfo",
    "create_branch",
    "create_tag",
    "delete_branch",
    "delete_tag",
    "list_branches",
    "list_tags",
]
