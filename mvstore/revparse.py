"""Revision syntax: full id, unique prefix (≥ 4 hex), tag, branch, ``HEAD``, ``REV~N``, ``REV^N``,
and ``REV:path``. All user-facing names are resolved here and nowhere else."""

from __future__ import annotations

import re

from .codec import KIND_STRUCT
from .errors import AmbiguousRevision, CorruptObject, InvalidRefName, RevisionNotFound
from .ids import HEX_LEN, ObjectId, is_hex_prefix
from .objects import Commit, Tag
from .refs import HEADS, TAGS
from .repo import Repository

_SUFFIX = re.compile(r"(~\d*|\^\d*)$")
MAX_REV_LEN = 1024


def split_path(spec: str) -> tuple[str, str | None]:
    """``REV:path`` → (REV, path); a bare ``REV`` → (REV, None)."""
    if ":" in spec:
        rev, path = spec.split(":", 1)
        return rev or "HEAD", path.strip("/") or None
    return spec, None


def resolve_object(repo: Repository, rev: str) -> ObjectId:
    """The object a revision names, without peeling tags (``rev-parse`` of a tag gives the tag)."""
    if len(rev) > MAX_REV_LEN or not rev:
        raise RevisionNotFound(f"unknown revision: {rev[:80]!r}")
    m = _SUFFIX.search(rev)
    if m:
        base = resolve_commit(repo, rev[: m.start()])
        op = m.group(1)
        n = int(op[1:]) if len(op) > 1 else 1
        if op[0] == "~":
            oid = base
            for _ in range(n):
                parents = repo.commit_object(oid).parents
                if not parents:
                    raise RevisionNotFound(f"{rev}: history is not that long")
                oid = parents[0]
            return oid
        if n == 0:
            return base
        parents = repo.commit_object(base).parents
        if len(parents) < n:
            raise RevisionNotFound(f"{rev}: commit {base.hex()[:12]} has no parent {n}")
        return parents[n - 1]
    if rev == "HEAD" or rev == "@":
        head = repo.refs.head()
        if head.id is None:
            raise RevisionNotFound(f"HEAD: branch {head.branch!r} has no commits yet")
        return head.id
    if len(rev) == HEX_LEN and is_hex_prefix(rev):
        return ObjectId.from_hex(rev)
    for full in (rev, TAGS + rev, HEADS + rev) if rev.startswith("refs/") else (TAGS + rev, HEADS + rev):
        if not (full.startswith(TAGS) or full.startswith(HEADS)):
            continue
        try:
            found = repo.refs.read(full)
        except InvalidRefName:
            continue
        if found is not None:
            return found
    if is_hex_prefix(rev):
        return _resolve_prefix(repo, rev)
    raise RevisionNotFound(f"unknown revision: {rev[:80]!r}")


def _resolve_prefix(repo: Repository, prefix: str) -> ObjectId:
    """A short id, among commits and tags only (chunks share the id space but are never meant)."""
    candidates = []
    for oid in repo.store.ids_with_prefix(prefix):
        try:
            if repo.store.read_kind(oid) != KIND_STRUCT:
                continue
            if isinstance(repo.read_object(oid), (Commit, Tag)):
                candidates.append(oid)
        except CorruptObject:
            continue
    if not candidates:
        raise RevisionNotFound(f"unknown revision: {prefix!r}")
    if len(candidates) > 1:
        listed = ", ".join(c.hex()[:16] for c in candidates[:10])
        raise AmbiguousRevision(f"short id {prefix!r} is ambiguous: {listed}")
    return candidates[0]


def resolve_commit(repo: Repository, rev: str) -> ObjectId:
    """A revision peeled to a commit id."""
    return repo.peel(resolve_object(repo, rev))
