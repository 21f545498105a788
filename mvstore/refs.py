"""Refs: names that point at objects, moved last and only by compare-and-swap.

``HEAD`` holds ``ref: refs/heads/<branch>`` or a bare id (detached). Branches live in
``refs/heads/``, tags in ``refs/tags/``; each ref file holds one hex id and a newline. An update
takes ``<ref>.lock`` with ``O_EXCL``, checks the current value against what the caller expected,
writes and fsyncs the lock, then renames it over the ref: readers never see a half-written ref,
and two writers can never both win. Every move is appended to a reflog under ``logs/``.
"""

from __future__ import annotations

import builtins
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidRefName, LockHeld, RefConflict, RefExists, RevisionNotFound
from .ids import ObjectId
from .store.local import fsync_dir

HEADS = "refs/heads/"
TAGS = "refs/tags/"
REMOTES = "refs/remotes/"
#: ``refs/stages/<version>``: the newest lifecycle event of a version (a chain of stage objects).
STAGES = "refs/stages/"
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
MAX_REF_NAME = 255


class _Any:
    """Sentinel: update without checking the old value."""


ANY = _Any()


def check_ref_name(name: str, what: str = "ref") -> str:
    """Git's check-ref-format rules, roughly: no ``..``, no control or glob chars, no ``.lock``."""
    bad = (
        not name
        or len(name) > MAX_REF_NAME
        or _BAD_CHARS.search(name) is not None
        or ".." in name
        or "@{" in name
        or name == "@"
        or name.startswith("/")
        or name.endswith("/")
        or name.endswith(".")
        or "//" in name
        or any(part.startswith(".") or part.endswith(".lock") for part in name.split("/"))
        or name in ("HEAD",)
        or name.startswith("-")
    )
    if bad:
        raise InvalidRefName(f"invalid {what} name: {name[:80]!r}")
    return name


@dataclass(frozen=True, slots=True)
class Head:
    branch: str | None  # short branch name, or None when detached
    id: ObjectId | None  # None on an unborn branch


class RefStore:
    def __init__(self, mvdir: Path) -> None:
        self.mvdir = mvdir

    def _path(self, full: str) -> Path:
        if full != "HEAD":
            if not full.startswith((HEADS, TAGS, REMOTES, STAGES)):
                raise InvalidRefName(f"invalid ref name: {full[:80]!r}")
            check_ref_name(full[len("refs/") :])
        return self.mvdir / full

    # -- reading ------------------------------------------------------------------------------------

    def read(self, full: str) -> ObjectId | None:
        path = self._path(full)
        try:
            text = path.read_text("ascii").strip()
        except FileNotFoundError:
            return None
        except (UnicodeDecodeError, IsADirectoryError):
            raise RefConflict(f"ref {full} is corrupt") from None
        if text.startswith("ref: "):
            return self.read(text[5:])
        try:
            return ObjectId.from_hex(text)
        except ValueError:
            raise RefConflict(f"ref {full} is corrupt: {text[:80]!r}") from None

    def head(self) -> Head:
        try:
            text = (self.mvdir / "HEAD").read_text("ascii").strip()
        except FileNotFoundError:
            raise RevisionNotFound("HEAD is missing; the repository is damaged") from None
        if text.startswith("ref: "):
            target = text[5:]
            if not target.startswith(HEADS):
                raise RefConflict(f"HEAD points outside refs/heads: {target[:80]!r}")
            return Head(branch=check_ref_name(target[len(HEADS) :], "branch"), id=self.read(target))
        try:
            return Head(branch=None, id=ObjectId.from_hex(text))
        except ValueError:
            raise RefConflict(f"HEAD is corrupt: {text[:80]!r}") from None

    def list(self, prefix: str) -> builtins.dict[str, ObjectId]:
        """Short name → id for every ref under ``prefix`` (``refs/heads/`` or ``refs/tags/``)."""
        base = self.mvdir / prefix
        out: dict[str, ObjectId] = {}
        if not base.is_dir():
            return out
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                if f.endswith(".lock"):
                    continue
                short = os.path.relpath(os.path.join(dirpath, f), base).replace(os.sep, "/")
                try:
                    oid = self.read(prefix + check_ref_name(short))
                except (InvalidRefName, RefConflict):
                    continue
                if oid is not None:
                    out[short] = oid
        return dict(sorted(out.items()))

    # -- writing ------------------------------------------------------------------------------------

    def update(
        self, full: str, new: ObjectId | None, expected: ObjectId | None | _Any = ANY, message: str = ""
    ) -> None:
        """Compare-and-swap ``full`` from ``expected`` to ``new`` (None deletes the ref)."""
        path = self._path(full)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.with_name(path.name + ".lock")
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise LockHeld(
                f"{lock} exists{_age(lock)}: another mv process is updating {full}; "
                "if none is running, delete that file"
            ) from None
        try:
            old = self.read(full) if full != "HEAD" else self._read_head_raw()
            if not isinstance(expected, _Any) and old != expected:
                if expected is None:
                    raise RefExists(f"{full} already exists")
                raise RefConflict(
                    f"{full} moved to {old.hex()[:12] if old else 'nothing'} while we worked; not updated"
                )
            if new is None:
                os.close(fd)
                fd = -1
                os.unlink(lock)
                if old is not None:
                    os.unlink(path)
            else:
                os.write(fd, (new.hex() + "\n").encode())
                os.fsync(fd)
                os.close(fd)
                fd = -1
                os.replace(lock, path)
            fsync_dir(path.parent)
            self._log(full, old, new, message)
        finally:
            if fd >= 0:
                os.close(fd)
            if lock.exists():
                try:
                    os.unlink(lock)
                except FileNotFoundError:
                    pass

    def _read_head_raw(self) -> ObjectId | None:
        h = self.head()
        return h.id if h.branch is None else None

    def set_head(self, branch: str | None, detached: ObjectId | None = None) -> None:
        """Point HEAD at a branch (symbolic) or at an id (detached), atomically."""
        text = f"ref: {HEADS}{check_ref_name(branch, 'branch')}\n" if branch else f"{detached.hex()}\n"  # type: ignore[union-attr]
        write_atomic(self.mvdir / "HEAD", text.encode())

    def _log(self, full: str, old: ObjectId | None, new: ObjectId | None, message: str) -> None:
        log = self.mvdir / "logs" / full
        log.parent.mkdir(parents=True, exist_ok=True)
        zero = "0" * 64
        line = (
            f"{old.hex() if old else zero} {new.hex() if new else zero} {int(time.time())} {message}".replace(
                "\n", " "
            )
        )
        with open(log, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def reflog(self, full: str) -> builtins.list[tuple[str, str, int, str]]:
        try:
            lines = (self.mvdir / "logs" / full).read_text("utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[2].isdigit():
                out.append((parts[0], parts[1], int(parts[2]), parts[3] if len(parts) > 3 else ""))
        return out


def _age(path: Path) -> str:
    """' (created 3 min ago)': helps tell a live writer's lock from one a dead process left."""
    try:
        seconds = max(0.0, time.time() - path.stat().st_mtime)
    except OSError:
        return ""
    if seconds < 120:
        return f" (created {seconds:.0f} s ago)"
    if seconds < 7200:
        return f" (created {seconds / 60:.0f} min ago)"
    return f" (created {seconds / 3600:.1f} h ago)"


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same directory → fsync → rename → fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
