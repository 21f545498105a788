"""The local object database: ``.mv/objects/ab/cdef…`` files, each an envelope + payload.

Writes are transactional in the way git's batch-fsync mode is: new objects go to temp files, one
``syncfs`` makes them all durable, and only then are they renamed into place — so an object file
that exists under its final name always has its full contents, even after a crash, and a
half-written object is never visible. Refs move after :meth:`Transaction.commit` returns.
"""

from __future__ import annotations

import errno
import mmap
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from ..codec import (
    ENVELOPE_SIZE,
    KIND_DATA,
    KIND_STRUCT,
    decode_payload,
    delta_base,
    envelope_header,
    parse_envelope,
)
from ..encoding import MAX_DELTA_DEPTH
from ..errors import CorruptObject, ObjectNotFound
from ..ids import HEX_LEN, ObjectId, hash_bytes, hash_single_thread

_libc: Any = None
_HEX_NAME = re.compile(r"[0-9a-f]{64}")


def _syncfs(fd: int) -> bool:
    """Flush the whole filesystem holding ``fd`` with one call; False where unavailable."""
    global _libc
    if not hasattr(os, "sched_getaffinity"):  # not Linux
        return False
    import ctypes  # lazily: ctypes costs start-up time that read-only commands don't need

    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)  # the process's own libc (find_library forks ldconfig)
    fn = getattr(_libc, "syncfs", None)
    if fn is None:
        return False
    if fn(fd) != 0:
        err = ctypes.get_errno()  # noqa: F823
        raise OSError(err, os.strerror(err))
    return True


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalObjectStore:
    """Objects in a fan-out directory; every read re-checks the hash."""

    def __init__(self, root: Path, tmp_dir: Path) -> None:
        self.root = root
        self.tmp_dir = tmp_dir
        self._hops = threading.local()

    # -- paths and listing ------------------------------------------------------------------------

    def path(self, oid: ObjectId) -> Path:
        h = oid.hex()
        return self.root / h[:2] / h[2:]

    def has(self, oid: ObjectId) -> bool:
        return os.path.exists(self.path(oid))

    def iter_ids(self) -> Iterator[ObjectId]:
        if not self.root.is_dir():
            return
        for fan in sorted(os.listdir(self.root)):
            if len(fan) != 2:
                continue
            for name in sorted(os.listdir(self.root / fan)):
                h = fan + name
                if len(h) == HEX_LEN and all(c in "0123456789abcdef" for c in h):
                    yield ObjectId.from_hex(h)

    def ids_with_prefix(self, prefix: str) -> list[ObjectId]:
        fan = self.root / prefix[:2]
        try:
            names = os.listdir(fan)
        except FileNotFoundError:
            return []
        rest = prefix[2:]
        return [
            ObjectId.from_hex(prefix[:2] + n)
            for n in sorted(names)
            if n.startswith(rest) and len(n) == HEX_LEN - 2
        ]

    def freshen(self, oid: ObjectId) -> bool:
        """True if the object exists, after refreshing its mtime (see :meth:`Transaction.put`).

        Code that decides to *reuse* an existing object (instead of writing it) calls this rather
        than :meth:`has`, so that a concurrent ``mv gc`` sees the object as recent and keeps it
        together with everything it references (docs/format.md, "Garbage collection").
        """
        try:
            os.utime(self.path(oid))
            return True
        except FileNotFoundError:
            return False

    def scan(self) -> Iterator[tuple[ObjectId, int, float]]:
        """(id, stored size, mtime) of every object file, one ``stat`` each (for gc and verify)."""
        if not self.root.is_dir():
            return
        for fan in sorted(os.listdir(self.root)):
            if len(fan) != 2:
                continue
            try:
                entries = sorted(os.scandir(self.root / fan), key=lambda d: d.name)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for de in entries:
                if len(de.name) != HEX_LEN - 2 or not _HEX_NAME.fullmatch(fan + de.name):
                    continue
                try:
                    st = de.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while we listed (a concurrent gc)
                yield ObjectId(bytes.fromhex(fan + de.name)), st.st_size, st.st_mtime

    def stored_size(self, oid: ObjectId) -> int:
        try:
            return os.stat(self.path(oid)).st_size
        except FileNotFoundError:
            raise ObjectNotFound(f"object {oid.hex()} is missing from the store") from None

    # -- reading ----------------------------------------------------------------------------------

    def _open(self, oid: ObjectId) -> int:
        try:
            return os.open(self.path(oid), os.O_RDONLY)
        except FileNotFoundError:
            raise ObjectNotFound(f"object {oid.hex()} is missing from the store") from None

    def read_kind(self, oid: ObjectId) -> int:
        fd = self._open(oid)
        try:
            head = os.pread(fd, 4096, 0)
        finally:
            os.close(fd)
        return parse_envelope(head, oid.hex()).kind

    def read(self, oid: ObjectId, kind: int | None = None, _max_depth: int | None = None) -> bytes:
        fd = self._open(oid)
        try:
            buf = bytearray(os.fstat(fd).st_size)
            view = memoryview(buf)
            got = 0
            while got < len(buf):  # one read into a buffer of the final size: no concatenation copies
                n = os.readv(fd, [view[got:]])
                if n <= 0:
                    break
                got += n
            data = view[:got]
        finally:
            os.close(fd)
        what = oid.hex()
        env = parse_envelope(bytes(data[: ENVELOPE_SIZE + 65536]), what)
        if kind is not None and env.kind != kind:
            raise CorruptObject(
                f"object {what}: expected a {'data' if kind == KIND_DATA else 'structured'} object"
            )
        found = delta_base(env, what)
        if found is not None and _max_depth is not None and _max_depth <= 0:
            raise CorruptObject(f"object {what}: delta chain too deep (a cycle?)")
        raw = bytes(decode_payload(env, memoryview(data)[env.payload_offset :], what, self._read_base))
        if hash_bytes(raw) != oid:
            raise CorruptObject(f"object {what}: contents do not match its id")
        return raw

    def _read_base(self, oid: ObjectId, claimed_depth: int) -> bytes:
        # The hop budget, not the depth an object claims, bounds the walk: a repack in progress
        # may briefly leave claims stale, but never a chain longer than MAX_DELTA_DEPTH.
        budget = getattr(self._hops, "left", MAX_DELTA_DEPTH)
        self._hops.left = budget - 1
        try:
            return self.read(oid, KIND_DATA, budget - 1)
        finally:
            self._hops.left = budget

    def delta_base(self, oid: ObjectId) -> ObjectId | None:
        """The base a delta-encoded object needs (gc and verify must keep and check it), else None."""
        fd = self._open(oid)
        try:
            head = os.pread(fd, ENVELOPE_SIZE + 4096, 0)
        finally:
            os.close(fd)
        found = delta_base(parse_envelope(head, oid.hex()), oid.hex())
        return found[0] if found else None

    def rewrite(self, oid: ObjectId, envelope: bytes) -> None:
        """Replace an object's file with another encoding of the same raw bytes (``mv repack``).

        The caller has verified that ``envelope`` decodes to the object's bytes; the swap is a
        rename, so readers see either the old or the new file, both valid.
        """
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp_dir / f"repack-{os.urandom(6).hex()}-{oid.hex()}"
        with open(tmp, "xb") as f:
            f.write(envelope)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path(oid))

    def read_into(self, oid: ObjectId, out: memoryview) -> None:
        """Read a raw data object into a caller-owned buffer (no per-read allocation), verified."""
        what = oid.hex()
        fd = self._open(oid)
        try:
            head = os.pread(fd, ENVELOPE_SIZE + 4096, 0)
            env = parse_envelope(head, what)
            if env.encoding != 0 or env.params:
                out[:] = self.read(oid, KIND_DATA)
                return
            if env.kind != KIND_DATA:
                raise CorruptObject(f"object {what}: expected a data object")
            if env.raw_size != len(out) or os.fstat(fd).st_size != ENVELOPE_SIZE + env.raw_size:
                raise CorruptObject(f"object {what}: size does not match (truncated or wrong object)")
            pos = 0
            while pos < len(out):
                n = os.preadv(fd, [out[pos:]], ENVELOPE_SIZE + pos)
                if n <= 0:
                    raise CorruptObject(f"object {what}: truncated")
                pos += n
        finally:
            os.close(fd)
        if hash_single_thread(out) != oid:
            raise CorruptObject(f"object {what}: contents do not match its id")

    def map_data(self, oid: ObjectId, verify: bool = True) -> memoryview:
        """A private copy-on-write map of a raw data object's payload: zero-copy tensor loads."""
        what = oid.hex()
        fd = self._open(oid)
        try:
            size = os.fstat(fd).st_size
            env = parse_envelope(os.pread(fd, ENVELOPE_SIZE + 4096, 0), what)
            if env.encoding != 0 or env.params or env.kind != KIND_DATA:
                return memoryview(bytearray(self.read(oid, KIND_DATA)))
            if size != ENVELOPE_SIZE + env.raw_size:
                raise CorruptObject(f"object {what}: size does not match (truncated)")
            if env.raw_size == 0:
                view = memoryview(bytearray())
            else:
                mm = mmap.mmap(fd, size, access=mmap.ACCESS_COPY)
                view = memoryview(mm)[ENVELOPE_SIZE:]
        finally:
            os.close(fd)
        if verify and hash_bytes(view) != oid:
            raise CorruptObject(f"object {what}: contents do not match its id")
        return view

    # -- writing ----------------------------------------------------------------------------------

    def transaction(self, parents_first: bool = False) -> Transaction:
        """``parents_first``: objects are staged before the objects they reference (a fetch walks
        top-down); they are then made visible in reverse, so that an object present in the store
        always has its whole closure present, even after a crash mid-commit."""
        return Transaction(self, parents_first)


class Transaction:
    """Stage objects, then make them durable and visible in one step (see module docstring)."""

    def __init__(self, store: LocalObjectStore, parents_first: bool = False) -> None:
        self.store = store
        self.parents_first = parents_first
        self._tag = os.urandom(6).hex()
        self._staged: dict[ObjectId, Path] = {}
        self._seen: set[ObjectId] = set()
        self._lock = threading.Lock()
        self.new_objects = 0
        self.new_bytes = 0
        self.existing_objects = 0

    def __enter__(self) -> Transaction:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()

    def put(self, oid: ObjectId, data: bytes | memoryview, kind: int) -> bool:
        """Stage ``data`` under ``oid`` (the caller hashed it). Thread-safe; False if already stored."""
        with self._lock:
            if oid in self._seen:
                return False
            self._seen.add(oid)
        final = self.store.path(oid)
        try:
            # Re-putting an existing object refreshes its mtime, so a concurrent gc's grace period
            # protects an object that a commit in progress is about to reference.
            os.utime(final)
            with self._lock:
                self.existing_objects += 1
            return False
        except FileNotFoundError:
            pass
        self.store.tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.store.tmp_dir / f"{self._tag}-{oid.hex()}"
        with self._lock:
            self._staged[oid] = tmp
        try:
            with open(tmp, "xb") as f:
                f.write(envelope_header(kind, len(data)))
                f.write(data)
        except OSError as e:  # ENOSPC, EFBIG, EIO…: name the file, the transaction removes it
            raise OSError(e.errno, e.strerror, str(tmp)) from None
        with self._lock:
            self.new_objects += 1
            self.new_bytes += ENVELOPE_SIZE + len(data)
        return True

    def staged(self, oid: ObjectId) -> bool:
        with self._lock:
            return oid in self._seen

    def put_struct(self, oid: ObjectId, raw: bytes) -> bool:
        return self.put(oid, raw, KIND_STRUCT)

    def commit(self) -> None:
        """One durability barrier for every staged object, then rename them into place."""
        if not self._staged:
            return
        staged = list(self._staged.items())
        if self.parents_first:
            staged.reverse()  # children become visible before the objects that point at them
        tmp_dir = self.store.tmp_dir
        fd = os.open(tmp_dir, os.O_RDONLY)
        try:
            if not _syncfs(fd):
                for _, tmp in staged:
                    with open(tmp, "rb+") as f:
                        os.fsync(f.fileno())
        finally:
            os.close(fd)
        dirs: set[Path] = set()
        for oid, tmp in staged:
            final = self.store.path(oid)
            if final.parent not in dirs:
                final.parent.mkdir(parents=True, exist_ok=True)
                dirs.add(final.parent)
            os.replace(tmp, final)
        fd = os.open(self.store.root, os.O_RDONLY)
        try:
            if not _syncfs(fd):
                for d in dirs | {self.store.root}:
                    fsync_dir(d)
        finally:
            os.close(fd)
        self._staged.clear()

    def abort(self) -> None:
        for tmp in self._staged.values():
            try:
                os.unlink(tmp)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    pass
        self._staged.clear()
