"""Semantic versions (semver.org 2.0.0) for tag names: parse, order by precedence, bump.

A tag name "looks like a version" when it is a digit, or ``v`` and a digit, at the start; such a
name must then be a valid version, so ``v1.2`` or ``v1.02.0`` is refused instead of becoming a
tag that sorts wrongly forever. Other names (``best``, ``baseline``) stay ordinary tags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .errors import InvalidVersion

Level = Literal["major", "minor", "patch"]
LEVELS: tuple[Level, ...] = ("major", "minor", "patch")

_NUM = r"0|[1-9]\d*"
_PRE_ID = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
_RE = re.compile(
    rf"(?P<v>v?)(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
_LOOKS = re.compile(r"v?\d")


@dataclass(frozen=True, slots=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()
    prefix: str = "v"

    def __str__(self) -> str:
        out = f"{self.prefix}{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            out += "-" + ".".join(self.prerelease)
        if self.build:
            out += "+" + ".".join(self.build)
        return out

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def key(self) -> tuple[object, ...]:
        """Sort key for semver precedence (build metadata is ignored, as the spec says)."""
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def bump(self, level: Level) -> Version:
        """The next version at ``level``; a prerelease bumps to its own release first (as npm does)."""
        pre = bool(self.prerelease)
        if level == "major":
            if pre and self.minor == 0 and self.patch == 0:
                return Version(self.major, 0, 0, prefix=self.prefix)
            return Version(self.major + 1, 0, 0, prefix=self.prefix)
        if level == "minor":
            if pre and self.patch == 0:
                return Version(self.major, self.minor, 0, prefix=self.prefix)
            return Version(self.major, self.minor + 1, 0, prefix=self.prefix)
        if pre:
            return Version(self.major, self.minor, self.patch, prefix=self.prefix)
        return Version(self.major, self.minor, self.patch + 1, prefix=self.prefix)


def looks_like_version(name: str) -> bool:
    return _LOOKS.match(name) is not None


def parse_version(name: str) -> Version:
    m = _RE.fullmatch(name)
    if m is None:
        raise InvalidVersion(
            f"invalid semantic version {name[:80]!r}: expected MAJOR.MINOR.PATCH with optional "
            "-prerelease and +build (e.g. v1.2.0, v2.0.0-rc.1), no leading zeros"
        )
    pre = tuple(m["pre"].split(".")) if m["pre"] else ()
    build = tuple(m["build"].split(".")) if m["build"] else ()
    return Version(int(m["major"]), int(m["minor"]), int(m["patch"]), pre, build, m["v"])


def check_tag_name(name: str) -> Version | None:
    """The version a tag name denotes, None for a non-version name; InvalidVersion if malformed."""
    return parse_version(name) if looks_like_version(name) else None


def version_sort_key(name: str) -> tuple[object, ...]:
    """Versions by precedence (prereleases first), then every other name alphabetically."""
    try:
        v = check_tag_name(name)
    except InvalidVersion:
        v = None
    return (0, v.key(), name) if v is not None else (1, (), name)


def highest(names: list[str], include_prereleases: bool = True) -> Version | None:
    versions = []
    for n in names:
        try:
            v = check_tag_name(n)
        except InvalidVersion:
            continue
        if v is not None and (include_prereleases or not v.is_prerelease):
            versions.append(v)
    return max(versions, key=lambda v: v.key()) if versions else None


def next_version(names: list[str], level: Level) -> Version:
    """The version after the highest existing one (``v0.0.0`` when there is none)."""
    top = highest(names)
    if top is None:
        return Version(0, 0, 0).bump(level)
    return top.bump(level)
