"""Version tags: semver-checked, optionally signed, bumped from the highest version, moved only with
``--force`` — and then recorded in the version's stage history, which syncs (the reflog does not)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import UsageError
from ..ops.refs_ops import RefInfo, create_tag, list_tags
from ..refs import TAGS
from ..repo import Repository
from .semver import LEVELS, Level, check_tag_name, highest, next_version, version_sort_key


@dataclass(frozen=True, slots=True)
class TagResult:
    info: RefInfo
    signed: bool
    moved_from: str | None  # the commit a forced version tag used to name
    bump_reasons: tuple[tuple[str, str], ...] = ()


def tag_version(
    repo: Repository,
    name: str,
    rev: str = "HEAD",
    message: str | None = None,
    force: bool = False,
    sign: bool = False,
    key: str | os.PathLike[str] | None = None,
) -> TagResult:
    """Create tag ``name`` (semver-checked when it looks like a version), signed with ``sign``."""
    signer = None
    if sign or key is not None:
        from .signing import default_key_path, signer_for

        signer = signer_for(key if key is not None else default_key_path(repo.config))
    old = repo.refs.read(TAGS + name) if force else None
    old_commit = repo.peel(old) if old is not None else None
    info = create_tag(repo, name, rev, message, force, signer)
    if old_commit is not None and check_tag_name(name) is not None and old_commit != info.commit:
        from .stages import record_retarget

        record_retarget(repo, name, old_commit, info.commit)
    return TagResult(
        info, signer is not None, old_commit.hex() if old_commit and old_commit != info.commit else None
    )


def bump_tag(
    repo: Repository,
    level: str,
    rev: str = "HEAD",
    message: str | None = None,
    sign: bool = False,
    key: str | os.PathLike[str] | None = None,
    dtype_major: bool = False,
) -> TagResult:
    """Tag ``rev`` with the version after the highest existing one; ``auto`` asks :func:`suggest`."""
    names = [t.name for t in list_tags(repo)]
    reasons: tuple[tuple[str, str], ...] = ()
    if level == "auto":
        top = highest(names)
        if top is None:
            raise UsageError(
                "--bump auto needs an earlier version to compare with; tag the first one by name"
            )
        from .changes import compare

        s = compare(repo, str(top), rev, dtype_major).suggestion
        if s.bump == "none":
            raise UsageError(f"nothing changed since {top}; no version to bump")
        level = s.bump
        reasons = tuple(s.reasons)
    if level not in LEVELS:
        raise UsageError(f"--bump takes major, minor, patch or auto, not {level!r}")
    lv: Level = level  # type: ignore[assignment]
    version = next_version(names, lv)  # keeps the highest version's prefix ("v" or none)
    res = tag_version(repo, str(version), rev, message, False, sign, key)
    return TagResult(res.info, res.signed, None, reasons)


def sorted_tags(repo: Repository, by: str = "name") -> list[RefInfo]:
    tags = list_tags(repo)
    if by == "version":
        return sorted(tags, key=lambda t: version_sort_key(t.name))
    if by != "name":
        raise UsageError(f"--sort takes name or version, not {by!r}")
    return tags
