"""Lifecycle stages of versions: ``checkpoint → candidate → release → deprecated → archived``.

A stage change is a :class:`~mvstore.objects.StageEvent` object (version, stage, the commit the
version named, who, when, why, previous event); ``refs/stages/<version>`` names the newest one.
So stage history is append-only, content-addressed and syncs like refs + objects; tags are never
mutated to record it. A version with no events is at ``checkpoint``.

Moving forward is free; moving back (``release`` → ``candidate``) needs ``force``. Promoting to
``release`` runs :mod:`mvstore.release.validate` on the version's tree first and refuses on errors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import RevisionNotFound, UsageError
from ..ids import ObjectId
from ..ingest import Ingestor
from ..objects import STAGE_NAMES, StageEvent
from ..refs import STAGES, TAGS
from ..repo import Repository
from .errors import InvalidStage
from .semver import parse_version, version_sort_key

DEFAULT_STAGE = "checkpoint"
MAX_HISTORY = 100_000


def check_stage(stage: str) -> str:
    if stage not in STAGE_NAMES:
        raise InvalidStage(f"unknown stage {stage[:40]!r}: expected one of {', '.join(STAGE_NAMES)}")
    return stage


@dataclass(frozen=True, slots=True)
class VersionStage:
    version: str
    stage: str
    commit: ObjectId | None  # what the tag names now (None if the tag was deleted)
    event: ObjectId | None  # newest event (None: never staged, implicitly a checkpoint)
    who: str | None
    time: int | None
    why: str


def _event(repo: Repository, oid: ObjectId) -> StageEvent:
    obj = repo.read_object(oid)
    if not isinstance(obj, StageEvent):
        raise UsageError(f"object {oid.hex()} is not a stage event")
    return obj


def history(repo: Repository, version: str) -> Iterator[tuple[ObjectId, StageEvent]]:
    """Events of ``version``, newest first."""
    oid = repo.refs.read(STAGES + version)
    n = 0
    while oid is not None and n < MAX_HISTORY:
        ev = _event(repo, oid)
        if ev.version != version:
            raise UsageError(f"stage event {oid.hex()[:12]} belongs to {ev.version!r}, not {version!r}")
        yield oid, ev
        oid = ev.previous
        n += 1


def is_later_event(repo: Repository, old: ObjectId, new: ObjectId) -> bool:
    """True if ``new``'s chain contains ``old``: a fast-forward of a stage ref (for sync)."""
    oid: ObjectId | None = new
    for _ in range(MAX_HISTORY):
        if oid is None:
            return False
        if oid == old:
            return True
        oid = _event(repo, oid).previous
    return False


def current(repo: Repository, version: str) -> VersionStage:
    tag = repo.refs.read(TAGS + version)
    commit = repo.peel(tag) if tag is not None else None
    head = repo.refs.read(STAGES + version)
    if head is None:
        return VersionStage(version, DEFAULT_STAGE, commit, None, None, None, "")
    ev = _event(repo, head)
    return VersionStage(version, ev.stage, commit, head, ev.who, ev.time, ev.why)


def list_stages(repo: Repository) -> list[VersionStage]:
    """The current stage of every version tag (and of staged versions whose tag was deleted)."""
    names = set()
    for name in repo.refs.list(TAGS):
        try:
            parse_version(name)
        except ValueError:
            continue
        names.add(name)
    names.update(repo.refs.list(STAGES))
    return [current(repo, n) for n in sorted(names, key=version_sort_key)]


def record(
    repo: Repository, version: str, stage: str, target: ObjectId, why: str, expected: ObjectId | None
) -> ObjectId:
    """Append one event and move ``refs/stages/<version>`` to it by compare-and-swap."""
    from ..ops.commit import local_tz_minutes

    now = int(time.time())
    ev = StageEvent(version, stage, target, repo.author(), now, local_tz_minutes(now), why, expected)
    with repo.store.transaction() as txn, Ingestor(txn) as ing:
        oid = ing.put_struct(ev)
    repo.refs.update(STAGES + version, oid, expected=expected, message=f"stage: {version} {stage}")
    return oid


@dataclass(frozen=True, slots=True)
class StageResult:
    version: str
    old_stage: str
    stage: str
    commit: ObjectId
    event: ObjectId
    warnings: int  # validation warnings when promoting to release


def set_stage(
    repo: Repository,
    version: str,
    stage: str,
    why: str = "",
    force: bool = False,
    validate: bool = True,
) -> StageResult:
    """Move ``version`` to ``stage``; checks run before anything is written."""
    parse_version(version)
    check_stage(stage)
    tag = repo.refs.read(TAGS + version)
    if tag is None:
        raise RevisionNotFound(f"no tag named {version!r} (create it with 'mv tag {version} [REV]')")
    commit = repo.peel(tag)
    now = current(repo, version)
    if now.stage == stage:
        raise UsageError(f"{version} is already at stage {stage}")
    if STAGE_NAMES.index(stage) < STAGE_NAMES.index(now.stage) and not force:
        raise UsageError(f"moving {version} back from {now.stage} to {stage} needs --force")
    warnings = 0
    if stage == "release" and validate:
        from .validate import validate_rev

        report = validate_rev(repo, commit.hex())
        report.raise_for_errors(f"{version} ({commit.hex()[:12]})")
        warnings = len(report.warnings)
    oid = record(repo, version, stage, commit, why, now.event)
    return StageResult(version, now.stage, stage, commit, oid, warnings)


def record_retarget(repo: Repository, version: str, old: ObjectId, new: ObjectId) -> ObjectId | None:
    """A version tag moved with --force: keep the move in the version's (synced) stage history."""
    if old == new:
        return None
    now = current(repo, version)
    why = f"tag moved from {old.hex()[:12]} to {new.hex()[:12]} (--force)"
    return record(repo, version, now.stage, new, why, now.event)


def commits_at_stage(repo: Repository, stage: str) -> dict[ObjectId, list[str]]:
    """Commit → versions currently at ``stage`` (for ``mv log --stage``)."""
    check_stage(stage)
    out: dict[ObjectId, list[str]] = {}
    for vs in list_stages(repo):
        if vs.stage == stage and vs.commit is not None:
            out.setdefault(vs.commit, []).append(vs.version)
    return out
