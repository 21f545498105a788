"""The stat cache: (path, size, mtime_ns, ctime_ns, inode) → tree entry, so an unchanged multi-GB
folder is checked without re-hashing.

Racy entries are handled as git does: an entry is trusted only if the file's mtime is older than
the moment we started reading it by more than the filesystem's timestamp granularity (we allow a
100 ms, ten ticks of Linux's coarse timestamp clock). A file rewritten within that window with the same size could
keep the same mtime, so such entries are re-hashed next time — and then recorded as trusted.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import codec
from .cli.fast import RACY_NS
from .errors import CorruptObject
from .ids import ObjectId
from .objects import ENTRY_KINDS, TreeEntry
from .refs import write_atomic


@dataclass(frozen=True, slots=True)
class FileStat:
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    executable: bool

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, bool(st.st_mode & stat.S_IXUSR))


CACHE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Cached:
    stat: FileStat
    recorded_ns: int
    entry: TreeEntry


class StatCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, Cached] = {}
        self.dirty = False
        self.clean_commit: bytes | None = None  # these entries are exactly HEAD's tree at this commit
        self._load()

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        try:
            doc = codec.unpack(raw, "stat cache")
            if not isinstance(doc, dict) or doc.get("v") != CACHE_VERSION:
                return
            clean = doc.get("clean")
            self.clean_commit = clean if isinstance(clean, bytes) else None
            for path, row in doc["entries"].items():
                size, mtime, ctime, ino, x, recorded, kind, oid, data = row
                if kind not in ENTRY_KINDS:
                    continue
                st = FileStat(size, mtime, ctime, ino, x)
                entry = TreeEntry(path, kind, size, x, ObjectId(oid) if oid else None, data)
                self.entries[path] = Cached(st, recorded, entry)
        except (CorruptObject, KeyError, TypeError, ValueError):
            self.entries = {}  # a damaged cache only costs a re-hash

    def lookup(self, rel: str, st: FileStat) -> TreeEntry | None:
        c = self.entries.get(rel)
        if c is None or c.stat != st:
            return None
        if st.mtime_ns >= c.recorded_ns - RACY_NS:
            return None
        return c.entry

    def record(self, entry: TreeEntry, st: FileStat, started_ns: int) -> None:
        self.entries[entry.path] = Cached(st, started_ns, entry)
        self.dirty = True
        self.clean_commit = None

    def forget(self, rel: str) -> None:
        if self.entries.pop(rel, None) is not None:
            self.dirty = True
            self.clean_commit = None

    def mark_clean(self, commit: bytes) -> None:
        """Record that the cached entries are exactly the tree of ``commit`` (enables the fast status)."""
        if self.clean_commit != commit:
            self.clean_commit = bytes(commit)
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        rows: dict[str, Any] = {}
        for path, c in self.entries.items():
            e = c.entry
            rows[path] = [
                c.stat.size,
                c.stat.mtime_ns,
                c.stat.ctime_ns,
                c.stat.ino,
                c.stat.executable,
                c.recorded_ns,
                e.kind,
                bytes(e.id) if e.id else None,
                e.data,
            ]
        try:
            write_atomic(
                self.path, codec.pack({"v": CACHE_VERSION, "clean": self.clean_commit, "entries": rows})
            )
        except OSError:
            pass  # the cache is an optimisation; failing to save it must not fail the command
        self.dirty = False


def now_ns() -> int:
    return time.time_ns()


def stat_file(path: Path) -> FileStat:
    return FileStat.of(os.stat(path))
