"""Turn files (and in-memory state dicts) into tree entries, staging their objects.

Reads use ``pread`` into a per-thread buffer rather than ``mmap``: a file truncated under an mmap
kills the process with SIGBUS, while a short read becomes a clean :class:`FileChanged`. Chunks are
hashed and written by a small thread pool (blake3 and file writes release the GIL).
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import codec
from .codec import KIND_DATA, KIND_STRUCT
from .errors import FileChanged, InvalidSafetensors, MvError
from .formats import chunking
from .formats.safetensors import Header, TensorInfo, parse_header, read_header_length
from .ids import ObjectId, hash_bytes, hash_single_thread
from .objects import Chunk, ChunkedBlob, SafetensorsManifest, StoredObject, TensorEntry, TreeEntry
from .statcache import FileStat
from .store.base import ObjectWriter

if TYPE_CHECKING:
    from concurrent.futures import Executor

_local = threading.local()


def _buffer(size: int) -> memoryview:
    """A per-thread reusable buffer: a fresh allocation per read costs page faults (~1 GB/s)."""
    buf: bytearray | None = getattr(_local, "buf", None)
    if buf is None or len(buf) < size:
        buf = bytearray(max(size, chunking.TENSOR_CHUNK_BYTES))
        _local.buf = buf
    return memoryview(buf)[:size]


def default_workers() -> int:
    return max(2, min(4, os.cpu_count() or 2))


def _pread_exact(fd: int, out: memoryview, offset: int, where: str) -> None:
    pos = 0
    while pos < len(out):
        n = os.preadv(fd, [out[pos:]], offset + pos)
        if n <= 0:
            raise FileChanged(f"{where}: file shrank while it was being read")
        pos += n


class Ingestor:
    """Hashes files into entries; with a writer it also stages every object they need."""

    def __init__(
        self, writer: ObjectWriter | None, pool: Executor | None = None, strict: bool | None = None
    ) -> None:
        self.writer = writer
        # Committing a broken .safetensors file is an error; merely looking at one (status, diff,
        # checkout's safety check) hashes it as an opaque blob so it shows up as "modified".
        self.strict = writer is not None if strict is None else strict
        self._own_pool = pool is None
        self._pool = pool

    @property
    def pool(self) -> Executor:
        """Created on first use: a status that re-hashes nothing never starts threads."""
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(default_workers())
        return self._pool

    def close(self) -> None:
        if self._own_pool and self._pool is not None:
            self._pool.shutdown()

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _put(self, oid: ObjectId, data: bytes | memoryview, kind: int) -> None:
        if self.writer is not None:
            self.writer.put(oid, data, kind)

    def put_struct(self, obj: StoredObject) -> ObjectId:
        raw = codec.encode_object(obj)
        oid = hash_bytes(raw)
        self._put(oid, raw, KIND_STRUCT)
        return oid

    # -- files ------------------------------------------------------------------------------------

    def ingest_file(self, path: Path, rel: str) -> tuple[TreeEntry, FileStat]:
        """Entry for one file, checking that it did not change while it was read."""
        fd = os.open(path, os.O_RDONLY)
        try:
            before = FileStat.of(os.fstat(fd))
            entry = self._structured(fd, before, rel)
            if entry is not None:
                pass
            elif before.size <= chunking.INLINE_FILE_BYTES:
                data = os.pread(fd, before.size + 1, 0)
                if len(data) != before.size:
                    raise FileChanged(f"{rel}: file changed while it was being read")
                entry = TreeEntry(rel, "inline", before.size, before.executable, None, data)
            elif chunking.wants_cdc(rel, before.size):
                entry = self._cdc(fd, before, rel)
            else:
                buf = _buffer(before.size)
                _pread_exact(fd, buf, 0, rel)
                oid = hash_bytes(buf)
                self._put(oid, buf, KIND_DATA)
                entry = TreeEntry(rel, "blob", before.size, before.executable, oid)
            after = FileStat.of(os.fstat(fd))
        finally:
            os.close(fd)
        if after != before:
            raise FileChanged(
                f"{rel}: file changed while it was being committed; commit again when it is written"
            )
        return entry, before

    def _structured(self, fd: int, st: FileStat, rel: str) -> TreeEntry | None:
        """Tensor files split per tensor; None for other files, or (when not strict) broken ones."""
        lower = rel.lower()
        try:
            if lower.endswith(".safetensors"):
                return self._safetensors(fd, st, rel)
            if lower.endswith(".gguf"):
                return self._gguf(fd, st, rel)
        except MvError as e:
            # Committing a broken tensor file is an error; merely looking at one (status, diff,
            # checkout's safety check) hashes it as an opaque blob, so it shows up as "modified".
            if self.strict or isinstance(e, FileChanged):
                raise
        return None

    def _cdc(self, fd: int, st: FileStat, rel: str) -> TreeEntry:
        from pyfastcdc import FastCDC  # only large opaque files need it

        cdc = FastCDC(chunking.CDC_AVG_BYTES, max_size=chunking.CDC_MAX_BYTES)
        chunks: list[Chunk] = []
        total = 0
        with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
            for c in cdc.cut_stream(f):
                data = c.data
                oid = hash_bytes(data)
                self._put(oid, data, KIND_DATA)
                chunks.append(Chunk(oid, len(data)))
                total += len(data)
        if total != st.size:
            raise FileChanged(f"{rel}: file changed while it was being read")
        oid = self.put_struct(ChunkedBlob(total, tuple(chunks)))
        return TreeEntry(rel, "chunked", total, st.executable, oid)

    def _safetensors(self, fd: int, st: FileStat, rel: str) -> TreeEntry:
        prefix = os.pread(fd, 8, 0)
        n = read_header_length(prefix, st.size, rel)
        header_bytes = os.pread(fd, n, 8)
        if len(header_bytes) != n:
            raise FileChanged(f"{rel}: file changed while it was being read")
        header = parse_header(header_bytes, st.size, rel)
        base = header.data_start

        def read(info: TensorInfo, off: int, length: int) -> memoryview:
            out = _buffer(length)
            _pread_exact(fd, out, base + info.begin + off, rel)
            return out

        manifest = self._manifest(header, read, st.size)
        oid = self.put_struct(manifest)
        return TreeEntry(rel, "safetensors", st.size, st.executable, oid)

    def _gguf(self, fd: int, st: FileStat, rel: str) -> TreeEntry:
        """Split a GGUF file like safetensors: verbatim header, row-aligned tensor chunks, padding."""
        from .formats.gguf import parse_header as parse_gguf
        from .formats.gguf import tensor_ranges as gguf_ranges
        from .objects import GGUFManifest, GGUFTensor

        def read_at(off: int, n: int) -> bytes:
            return os.pread(fd, n, off)

        header = parse_gguf(read_at, st.size, rel)
        head = os.pread(fd, header.header_size, 0)
        if len(head) != header.header_size:
            raise FileChanged(f"{rel}: file changed while it was being read")
        base = header.data_start
        jobs = []
        for i, info in enumerate(header.tensors):
            if info.nbytes > chunking.INLINE_TENSOR_BYTES:
                for j, (off, length) in enumerate(gguf_ranges(info, chunking.TENSOR_CHUNK_BYTES)):
                    jobs.append((i, j, base + info.offset + off, length))

        def work(job: tuple[int, int, int, int]) -> tuple[int, Chunk]:
            i, _j, off, length = job
            buf = _buffer(length)
            _pread_exact(fd, buf, off, rel)
            oid = hash_single_thread(buf)
            self._put(oid, buf, KIND_DATA)
            return i, Chunk(oid, length)

        per_tensor: dict[int, list[Chunk]] = {}
        for i, c in self.pool.map(work, jobs):
            per_tensor.setdefault(i, []).append(c)
        tensors = []
        for i, info in enumerate(header.tensors):
            inline = i not in per_tensor
            start = base + (info.offset if inline else info.end)
            want = (info.nbytes if inline else 0) + header.pad_after(i)
            raw = os.pread(fd, want, start)  # an inline tensor and its padding, or just the padding
            if len(raw) != want:
                raise FileChanged(f"{rel}: file changed while it was being read")
            data, pad = (raw[: info.nbytes], raw[info.nbytes :]) if inline else (None, raw)
            chunks = tuple(per_tensor.get(i, ()))
            tensors.append(
                GGUFTensor(info.name, info.ggml_type, info.dims, info.offset, info.nbytes, chunks, data, pad)
            )
        oid = self.put_struct(GGUFManifest(st.size, head, tuple(tensors)))
        return TreeEntry(rel, "gguf", st.size, st.executable, oid)

    def _manifest(
        self,
        header: Header,
        read: Callable[[TensorInfo, int, int], memoryview],
        size: int,
    ) -> SafetensorsManifest:
        """Split every tensor: inline the tiny ones, hash and stage the chunks of the rest in parallel."""
        jobs: list[tuple[int, int, TensorInfo, int, int]] = []
        inline: dict[int, bytes] = {}
        for i, info in enumerate(header.tensors):
            if info.nbytes <= chunking.INLINE_TENSOR_BYTES:
                inline[i] = bytes(read(info, 0, info.nbytes))
                continue
            for j, (off, length) in enumerate(chunking.tensor_ranges(info.dtype, info.shape, info.nbytes)):
                jobs.append((i, j, info, off, length))

        def work(job: tuple[int, int, TensorInfo, int, int]) -> tuple[int, int, Chunk]:
            i, j, info, off, length = job
            buf = read(info, off, length)
            oid = hash_single_thread(buf)
            self._put(oid, buf, KIND_DATA)
            return i, j, Chunk(oid, length)

        per_tensor: dict[int, list[Chunk]] = {}
        for i, _j, c in self.pool.map(work, jobs):
            per_tensor.setdefault(i, []).append(c)
        tensors = []
        for i, info in enumerate(header.tensors):
            if i in inline:
                tensors.append(
                    TensorEntry(info.name, info.dtype, info.shape, info.begin, info.end, (), inline[i])
                )
            else:
                tensors.append(
                    TensorEntry(info.name, info.dtype, info.shape, info.begin, info.end, tuple(per_tensor[i]))
                )
        return SafetensorsManifest(
            size=size, header=header.header_bytes, tensors=tuple(tensors), metadata=header.metadata
        )

    # -- in-memory tensors -------------------------------------------------------------------------

    def ingest_buffers(
        self,
        rel: str,
        tensors: Sequence[tuple[str, str, tuple[int, ...], memoryview]],
        metadata: dict[str, str] | None,
    ) -> TreeEntry:
        """A safetensors entry built from in-memory buffers, with no temporary file."""
        from .formats.safetensors import build_header

        by_name = {name: buf for name, _d, _s, buf in tensors}
        if len(by_name) != len(tensors):
            raise InvalidSafetensors(f"{rel}: duplicate tensor names")
        header = build_header(((n, d, s) for n, d, s, _b in tensors), metadata)
        for info in header.tensors:
            if len(by_name[info.name]) != info.nbytes:
                raise InvalidSafetensors(
                    f"{rel}: tensor {info.name!r} has {len(by_name[info.name])} bytes, expected {info.nbytes}"
                )

        def read(info: TensorInfo, off: int, length: int) -> memoryview:
            return by_name[info.name][off : off + length]

        manifest = self._manifest(header, read, header.file_size)
        oid = self.put_struct(manifest)
        return TreeEntry(rel, "safetensors", header.file_size, False, oid)


def safetensors_prefix(header_bytes: bytes) -> bytes:
    return struct.pack("<Q", len(header_bytes)) + header_bytes


def iter_chunks_of(entries: Iterable[TensorEntry]) -> Iterable[Chunk]:
    for t in entries:
        yield from t.chunks
