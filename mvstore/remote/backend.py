"""Remote backends: bytes by name, with the conditional writes that make refs safe.

The interface is deliberately small (read / write / create-only / compare-and-swap / list / delete)
so that each transport is easy to reason about and retry, caching and progress can wrap it.
fsspec's large, untyped surface stays inside :class:`FsspecBackend`; its exceptions are translated
into our error tree here and nowhere else.

Conditional writes, per backend:
* local folders (plain paths and ``file://``): our own code — temp file + fsync + ``os.link``
  (create-only: EEXIST means someone else won) and a lock file + ``os.replace`` for CAS. fsspec's
  local ``mode="create"`` is exists-then-write and let two of 8 racing processes win here.
* S3: ``If-None-Match: *`` for create-only, ``If-Match: <etag>`` for CAS (HTTP 412 on a lost race).
* GCS: ``ifGenerationMatch`` (0 for create-only, the generation read for CAS).
* anything else (``memory://``…): no conditional writes: refused unless the caller opts in to
  unsafe ref updates (single writer only).
"""

from __future__ import annotations

import builtins
import errno
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import LockHeld, MvError, ObjectNotFound

#: An opaque version token for compare-and-swap (content for local, ETag for S3, generation for GCS).
Token = Any


class RemoteError(MvError):
    """The remote could not be used: unreachable, missing bucket, bad credentials, not an mvstore remote."""


class UnsafeRemote(RemoteError):
    """The backend cannot do conditional writes, so concurrent pushers could lose commits."""


@dataclass(frozen=True, slots=True)
class Versioned:
    data: bytes
    token: Token


@dataclass(frozen=True, slots=True)
class Listed:
    """A listing entry with the metadata gc needs: size and last-modified time (unix seconds)."""

    name: str
    size: int
    mtime: float


class Backend(Protocol):
    url: str
    atomic: bool  # has create-only and compare-and-swap writes

    def read(self, name: str) -> bytes: ...

    def read_ranges(self, name: str, ranges: list[tuple[int, int]]) -> list[bytes]: ...

    def read_many(self, names: list[str]) -> dict[str, bytes]: ...

    def write_many(self, items: dict[str, bytes]) -> None: ...

    def exists_many(self, names: list[str]) -> set[str]: ...

    def read_versioned(self, name: str) -> Versioned | None: ...

    def create(self, name: str, data: bytes) -> bool: ...

    def replace(self, name: str, data: bytes, token: Token) -> bool: ...

    def delete(self, name: str, token: Token | None = None) -> bool: ...

    def list(self, prefix: str) -> list[str]: ...

    def list_with_mtime(self, prefix: str) -> builtins.list[Listed]:
        """Like :meth:`list`, with sizes and last-modified times (from the same listing calls)."""
        ...

    def stat(self, name: str) -> Listed | None:
        """Fresh size and last-modified time of one name (None if absent); never cached."""
        ...

    def touch(self, names: builtins.list[str]) -> None:
        """Refresh last-modified times without changing contents (a pusher reusing old objects
        makes them recent, so a concurrent gc's grace period protects them)."""
        ...


def check_name(name: str) -> str:
    """Names are built by us from ids and validated ref names; still, never let one escape the root."""
    parts = name.split("/")
    bad_char = any(ord(c) < 0x20 or c == "\x7f" for c in name)  # NUL would crash os calls
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in name or bad_char:
        raise RemoteError(f"invalid remote object name {name[:80]!r}")
    return name


class LocalBackend:
    """A folder on this machine (or an NFS mount): durable, atomic, and race-free."""

    atomic = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    def read(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"{self.url}/{name}: not found on the remote") from None

    def read_ranges(self, name: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        try:
            fd = os.open(self._path(name), os.O_RDONLY)
        except FileNotFoundError:
            raise ObjectNotFound(f"{self.url}/{name}: not found on the remote") from None
        try:
            return [os.pread(fd, end - start, start) for start, end in ranges]
        finally:
            os.close(fd)

    def read_many(self, names: list[str]) -> dict[str, bytes]:
        if len(names) < 4:
            return {n: self.read(n) for n in names}
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(4) as pool:  # file reads release the GIL; NFS likes parallel reads
            return dict(zip(names, pool.map(self.read, names), strict=True))

    def exists_many(self, names: list[str]) -> set[str]:
        return {n for n in names if self._path(n).exists()}

    def _stage(self, path: Path, data: bytes, sync: bool = True) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(6)}")
        with open(tmp, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        return tmp

    def write_many(self, items: dict[str, bytes]) -> None:
        """Batch durability, as the local object store does: write every temp file, one ``syncfs``
        barrier, then the renames and a second barrier — not an fsync per object."""
        from ..store.local import _syncfs, fsync_dir

        staged = []
        try:
            for name, data in items.items():
                path = self._path(name)
                staged.append((self._stage(path, data, sync=False), path))
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise
        if not staged:
            return
        fd = os.open(staged[0][1].parent, os.O_RDONLY)
        try:
            batched = _syncfs(fd)
        finally:
            os.close(fd)
        dirs = set()
        for tmp, path in staged:
            if not batched:
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
            dirs.add(path.parent)
        if batched:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                _syncfs(fd)
            finally:
                os.close(fd)
            return
        for d in dirs:
            fsync_dir(d)

    def read_versioned(self, name: str) -> Versioned | None:
        try:
            data = self._path(name).read_bytes()
        except FileNotFoundError:
            return None
        return Versioned(data, data)

    def create(self, name: str, data: bytes) -> bool:
        from ..store.local import fsync_dir

        path = self._path(name)
        tmp = self._stage(path, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        fsync_dir(path.parent)
        return True

    def replace(self, name: str, data: bytes, token: Token) -> bool:
        """CAS under a lock file: the check and the rename cannot interleave with another writer."""
        from ..store.local import fsync_dir

        path = self._path(name)
        lock = path.with_name(path.name + ".lock")
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if _wait_gone(lock, LOCK_WAIT_SECONDS):
                return False  # a live pusher held it and finished: we lost the race
            # Still there: a push died inside its update (found by the crash campaign). Say so, with
            # the way out, instead of "moved on the remote" forever; never remove it ourselves.
            raise LockHeld(
                f"{lock} exists{_lock_age(lock)}: another push is updating {name} on this remote; "
                "if none is running, delete that file"
            ) from None
        try:
            try:
                current = path.read_bytes()
            except FileNotFoundError:
                return False
            if current != token:
                return False
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(lock, path)
            fsync_dir(path.parent)
            return True
        finally:
            if fd >= 0:
                os.close(fd)
            try:
                os.unlink(lock)
            except FileNotFoundError:
                pass

    def delete(self, name: str, token: Token | None = None) -> bool:
        path = self._path(name)
        try:
            if token is not None and path.read_bytes() != token:
                return False
            os.unlink(path)
            return True
        except FileNotFoundError:
            return False

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix if prefix else self.root
        out: list[str] = []
        if not base.is_dir():
            return out
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                if f.startswith(".") or f.endswith(".lock"):
                    continue
                out.append(os.path.relpath(os.path.join(dirpath, f), self.root).replace(os.sep, "/"))
        return sorted(out)

    def list_with_mtime(self, prefix: str) -> builtins.list[Listed]:
        out = []
        for name in self.list(prefix):
            found = self.stat(name)
            if found is not None:
                out.append(found)
        return out

    def stat(self, name: str) -> Listed | None:
        try:
            st = os.stat(self._path(name))
        except FileNotFoundError:
            return None
        return Listed(name, st.st_size, st.st_mtime)

    def touch(self, names: builtins.list[str]) -> None:
        for name in names:
            try:
                os.utime(self._path(name))
            except FileNotFoundError:
                pass


#: How long a push waits for another push's ref lock to go (it is held for one fsync + rename).
LOCK_WAIT_SECONDS = 1.0


def _wait_gone(path: Path, seconds: float) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not path.exists():
            return True
        time.sleep(0.01)
    return not path.exists()


def _lock_age(path: Path) -> str:
    import time

    try:
        age = max(0.0, time.time() - path.stat().st_mtime)
    except OSError:
        return ""
    return f" (created {age:.0f} s ago)" if age < 120 else f" (created {age / 60:.0f} min ago)"


def _is_missing(e: BaseException) -> bool:
    return isinstance(e, FileNotFoundError) or getattr(e, "errno", None) == errno.ENOENT
