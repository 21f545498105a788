"""Rebuild files byte for byte from tree entries.

Each file is written to a temp file in its destination folder and renamed into place, so a reader
(or a crash) never sees a half-written file. Chunks are read, verified against their ids and
written with ``pwrite`` at their offsets by a thread pool, into per-thread reusable buffers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CorruptObject
from ..ids import ObjectId
from ..ingest import _buffer, safetensors_prefix
from ..objects import TreeEntry
from ..repo import Repository

if TYPE_CHECKING:
    from concurrent.futures import Executor


def entry_pieces(repo: Repository, entry: TreeEntry) -> Iterator[tuple[int, bytes | ObjectId, int]]:
    """(offset, inline bytes or chunk id, length) runs that make up a file, in order."""
    if entry.kind == "inline":
        yield 0, entry.data or b"", entry.size
        return
    assert entry.id is not None
    if entry.kind == "blob":
        yield 0, entry.id, entry.size
    elif entry.kind == "chunked":
        blob = repo.chunked(entry.id)
        pos = 0
        for c in blob.chunks:
            yield pos, c.id, c.size
            pos += c.size
    elif entry.kind == "gguf":
        yield from _gguf_pieces(repo, entry.id)
    else:
        m = repo.manifest(entry.id)
        prefix = safetensors_prefix(m.header)
        yield 0, prefix, len(prefix)
        base = len(prefix)
        for t in m.tensors:
            if t.data is not None:
                yield base + t.begin, t.data, t.nbytes
                continue
            pos = base + t.begin
            for c in t.chunks:
                yield pos, c.id, c.size
                pos += c.size


def _gguf_pieces(repo: Repository, oid: ObjectId) -> Iterator[tuple[int, bytes | ObjectId, int]]:
    from ..objects import GGUFManifest

    g = repo.read_object(oid)
    if not isinstance(g, GGUFManifest):
        raise CorruptObject(f"object {oid.hex()} is not a gguf manifest")
    yield 0, g.header, len(g.header)
    base = len(g.header)  # the header is stored up to the data section
    for t in g.tensors:
        pos = base + t.offset
        if t.data is not None:
            yield pos, t.data, t.nbytes
        else:
            for c in t.chunks:
                yield pos, c.id, c.size
                pos += c.size
        if t.pad:
            yield base + t.offset + t.nbytes, t.pad, len(t.pad)


def write_entry(repo: Repository, entry: TreeEntry, dest: Path, pool: Executor) -> None:
    """Write ``entry`` to ``dest`` atomically (temp file + rename), verifying every chunk."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.mvtmp-{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755 if entry.executable else 0o644)
    try:

        def one(piece: tuple[int, bytes | ObjectId, int]) -> None:
            offset, what, length = piece
            if isinstance(what, ObjectId):
                buf = _buffer(length)
                repo.store.read_into(what, buf)
                data: bytes | memoryview = buf
            else:
                data = what
            if offset + len(data) > entry.size:
                raise CorruptObject(f"{entry.path}: pieces run past the file size")
            pos = 0
            while pos < len(data):
                pos += os.pwrite(fd, data[pos:], offset + pos)

        for _ in pool.map(one, entry_pieces(repo, entry)):
            pass
        os.close(fd)
        fd = -1
        os.replace(tmp, dest)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_entry(repo: Repository, entry: TreeEntry) -> bytes:
    """The whole file in memory (for ``cat`` and small files)."""
    out = bytearray(entry.size)
    for offset, what, length in entry_pieces(repo, entry):
        if isinstance(what, ObjectId):
            out[offset : offset + length] = repo.store.read(what)
        else:
            out[offset : offset + length] = what
    return bytes(out)
