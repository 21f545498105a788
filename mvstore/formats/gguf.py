"""Parse and validate GGUF headers (llama.cpp) — our own parser, with caps.

A GGUF file is: a fixed header (magic ``GGUF``, version, tensor count, key/value count), the
key/value metadata, the tensor infos (name, dims, ggml type, offset), padding to the alignment,
then the tensor data, each tensor starting at an aligned offset. We split it like safetensors: the
bytes up to the data section are stored verbatim (so every KV, its order and the padding survive),
each tensor's bytes become row-aligned chunks, and the padding after each tensor is kept as-is —
so re-quantizations that share tensors dedupe, and the file rebuilds byte for byte.

Nothing read from a header is trusted before it is bounded: every count and length is checked
against the bytes that remain in the file before anything is allocated or looped over, so a
hostile header costs at most one pass over its own bytes. The rules follow what llama.cpp itself
accepts (``gguf.cpp``): versions 2 and 3, little-endian, no duplicate keys or tensor names, at most
4 dimensions, a power-of-two ``general.alignment`` (default 32), aligned and non-overlapping
tensor offsets laid out without holes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import MvError

MAGIC = b"GGUF"
VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_ALIGNMENT = 1 << 20
MAX_HEADER_BYTES = 1 << 30  # KVs + tensor infos; real models (a 256k-token vocabulary) are ~10 MB
MAX_TENSORS = 1 << 20
MAX_KVS = 1 << 20
MAX_DIMS = 4  # GGML_MAX_DIMS: llama.cpp rejects more
MAX_NAME_BYTES = 4096
MAX_KEY_BYTES = 65_536
_FIXED = struct.Struct("<4sIQQ")

#: ggml type id → (name, elements per block, bytes per block), as in ggml's type traits.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}

# KV value types: id → fixed size (None: string / array).
_SCALAR = {
    0: ("<B", 1),
    1: ("<b", 1),
    2: ("<H", 2),
    3: ("<h", 2),
    4: ("<I", 4),
    5: ("<i", 4),
    6: ("<f", 4),
    7: ("<?", 1),
    10: ("<Q", 8),
    11: ("<q", 8),
    12: ("<d", 8),
}
_STRING, _ARRAY, _UINT32 = 8, 9, 4

KVValue = int | float | bool | str


class InvalidGGUF(MvError, ValueError):
    """A ``.gguf`` file whose header or layout is not sound."""


@dataclass(frozen=True, slots=True)
class GGUFTensorInfo:
    name: str
    ggml_type: int
    dims: tuple[int, ...]  # as in the file: ne[0] (the fastest-varying dimension) first
    offset: int  # from the start of the data section
    nbytes: int

    @property
    def type_name(self) -> str:
        return GGML_TYPES[self.ggml_type][0]

    @property
    def end(self) -> int:
        return self.offset + self.nbytes

    @property
    def row_bytes(self) -> int:
        """Bytes of one row (``dims[0]`` elements): the natural cut for sub-chunks."""
        _name, block, size = GGML_TYPES[self.ggml_type]
        return (self.dims[0] // block) * size if self.dims else size


@dataclass(frozen=True, slots=True)
class GGUFHeader:
    """A validated header. ``header_size`` bytes (everything before the data section) are kept."""

    version: int
    alignment: int
    kv_count: int
    tensors: tuple[GGUFTensorInfo, ...]  # sorted by offset (ties, zero-size tensors: info order)
    data_start: int
    header_size: int  # min(data_start, file size): a tensor-less file may omit the last padding
    file_size: int
    metadata: tuple[tuple[str, KVValue], ...]  # scalar KVs (and short strings), for display

    def pad_after(self, i: int) -> int:
        """Length of the padding that follows tensor ``i`` (to the next tensor or end of file)."""
        nxt = self.tensors[i + 1].offset if i + 1 < len(self.tensors) else self.file_size - self.data_start
        return nxt - self.tensors[i].end


def ggml_nbytes(ggml_type: int, dims: tuple[int, ...], where: str) -> int:
    if ggml_type not in GGML_TYPES:
        raise InvalidGGUF(f"{where}: unknown ggml type {ggml_type}")
    _name, block, size = GGML_TYPES[ggml_type]
    if dims and dims[0] % block:
        raise InvalidGGUF(f"{where}: first dimension {dims[0]} is not a multiple of the block size {block}")
    n = math.prod(dims)
    return (n // block) * size


class _Cursor:
    """Sequential reads through ``read_at`` in windows, never past ``limit`` bytes."""

    WINDOW = 1 << 20

    def __init__(self, read_at: Callable[[int, int], bytes], limit: int, where: str) -> None:
        self.read_at, self.limit, self.where = read_at, limit, where
        self.pos = 0
        self._buf = b""
        self._buf_start = 0

    def remaining(self) -> int:
        return self.limit - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.remaining():
            raise InvalidGGUF(f"{self.where}: {what} runs past the end of the header")
        off = self.pos - self._buf_start
        if off + n > len(self._buf):
            want = min(max(n, self.WINDOW), self.limit - self.pos)
            self._buf = self.read_at(self.pos, want)
            self._buf_start = self.pos
            off = 0
            if len(self._buf) < n:
                raise InvalidGGUF(f"{self.where}: {what} runs past the end of the file")
        self.pos += n
        return self._buf[off : off + n]

    def u32(self, what: str) -> int:
        v: int = struct.unpack("<I", self.take(4, what))[0]
        return v

    def u64(self, what: str) -> int:
        v: int = struct.unpack("<Q", self.take(8, what))[0]
        return v

    def string(self, what: str, cap: int) -> bytes:
        n = self.u64(f"{what} length")
        if n > cap or n > self.remaining():
            raise InvalidGGUF(f"{self.where}: {what} length {n} is out of range")
        return self.take(n, what)


def _text(raw: bytes, where: str, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidGGUF(f"{where}: {what} is not valid UTF-8") from None


def _value(cur: _Cursor, vtype: int, key: str, in_array: bool = False) -> KVValue | None:
    """Read (and bound) one value; returns it for scalars and short strings, None otherwise."""
    where = cur.where
    if vtype in _SCALAR:
        fmt, size = _SCALAR[vtype]
        v: KVValue = struct.unpack(fmt, cur.take(size, f"value of {key!r}"))[0]
        if vtype == 7 and not in_array:
            return bool(v)
        return v
    if vtype == _STRING:
        raw = cur.string(f"string value of {key!r}", cur.remaining())
        return _text(raw, where, f"value of {key[:100]!r}") if len(raw) <= 256 and not in_array else None
    if vtype == _ARRAY:
        if in_array:
            raise InvalidGGUF(f"{where}: key {key[:100]!r}: nested arrays are not supported")
        etype = cur.u32(f"array type of {key!r}")
        count = cur.u64(f"array length of {key!r}")
        if etype in _SCALAR:
            size = _SCALAR[etype][1]
            if count * size > cur.remaining():
                raise InvalidGGUF(
                    f"{where}: array {key[:100]!r} of {count} items runs past the end of the file"
                )
            cur.take(count * size, f"array {key!r}")
            return None
        if etype == _STRING:
            if count * 8 > cur.remaining():
                raise InvalidGGUF(
                    f"{where}: array {key[:100]!r} of {count} strings runs past the end of the file"
                )
            for _ in range(count):
                cur.string(f"string in array {key!r}", cur.remaining())
            return None
        if etype == _ARRAY:
            raise InvalidGGUF(f"{where}: key {key[:100]!r}: nested arrays are not supported")
        raise InvalidGGUF(f"{where}: key {key[:100]!r}: unknown array element type {etype}")
    raise InvalidGGUF(f"{where}: key {key[:100]!r}: unknown value type {vtype}")


def parse_header(
    read_at: Callable[[int, int], bytes], file_size: int, where: str, available: int | None = None
) -> GGUFHeader:
    """Validate a GGUF header; ``read_at(offset, n)`` reads the file (or the stored header bytes).

    ``available`` bounds how far the header may be read (the stored header's length when decoding
    a manifest); ``file_size`` is what tensor offsets are checked against.
    """
    limit = min(file_size, MAX_HEADER_BYTES if available is None else available)
    if file_size < _FIXED.size:
        raise InvalidGGUF(f"{where}: too short to be a GGUF file ({file_size} bytes)")
    cur = _Cursor(read_at, limit, where)
    magic, version, n_tensors, n_kv = _FIXED.unpack(cur.take(_FIXED.size, "fixed header"))
    if magic != MAGIC:
        raise InvalidGGUF(f"{where}: not a GGUF file (magic {magic!r})")
    if version not in VERSIONS:
        swapped = struct.unpack("<I", struct.pack(">I", version))[0]
        if swapped in VERSIONS:
            raise InvalidGGUF(f"{where}: big-endian GGUF files are not supported")
        raise InvalidGGUF(f"{where}: unsupported GGUF version {version} (2 and 3 are)")
    # Each KV takes at least 13 bytes and each tensor info at least 24: bound counts by the file.
    if n_kv > MAX_KVS or n_kv * 13 > cur.remaining():
        raise InvalidGGUF(f"{where}: key/value count {n_kv} is out of range")
    if n_tensors > MAX_TENSORS or n_tensors * 24 > cur.remaining():
        raise InvalidGGUF(f"{where}: tensor count {n_tensors} is out of range")
    alignment = DEFAULT_ALIGNMENT
    keys: set[str] = set()
    metadata: list[tuple[str, KVValue]] = []
    for _ in range(n_kv):
        key = _text(cur.string("key", MAX_KEY_BYTES), where, "a key")
        if not key:
            raise InvalidGGUF(f"{where}: empty key")
        if key in keys:
            raise InvalidGGUF(f"{where}: duplicate key {key[:100]!r}")
        keys.add(key)
        vtype = cur.u32(f"type of {key!r}")
        value = _value(cur, vtype, key)
        if key == "general.alignment":
            if vtype != _UINT32 or not isinstance(value, int):
                raise InvalidGGUF(f"{where}: general.alignment must be a uint32")
            if value == 0 or value & (value - 1) or value > MAX_ALIGNMENT:
                raise InvalidGGUF(
                    f"{where}: general.alignment {value} is not a power of two ≤ {MAX_ALIGNMENT}"
                )
            alignment = value
        if value is not None:
            metadata.append((key, value))
    infos: list[GGUFTensorInfo] = []
    names: set[str] = set()
    for _ in range(n_tensors):
        name = _text(cur.string("tensor name", MAX_NAME_BYTES), where, "a tensor name")
        label = f"tensor {name[:100]!r}"
        if name in names:
            raise InvalidGGUF(f"{where}: duplicate {label}")
        names.add(name)
        n_dims = cur.u32(f"{label} rank")
        if n_dims > MAX_DIMS:
            raise InvalidGGUF(f"{where}: {label} has {n_dims} dimensions (at most {MAX_DIMS})")
        dims = tuple(cur.u64(f"{label} dimension") for _ in range(n_dims))
        if any(d >= 1 << 62 for d in dims) or math.prod(dims) >= 1 << 62:
            raise InvalidGGUF(f"{where}: {label} shape {list(dims)} is too large")
        ggml_type = cur.u32(f"{label} type")
        offset = cur.u64(f"{label} offset")
        nbytes = ggml_nbytes(ggml_type, dims, f"{where}: {label}")
        if offset % alignment:
            raise InvalidGGUF(
                f"{where}: {label} offset {offset} is not a multiple of the alignment {alignment}"
            )
        infos.append(GGUFTensorInfo(name, ggml_type, dims, offset, nbytes))
    data_start = -(-cur.pos // alignment) * alignment
    infos.sort(key=lambda t: (t.offset, t.end))
    pos = 0
    for t in infos:
        if t.offset < pos:
            raise InvalidGGUF(f"{where}: tensor {t.name[:100]!r} overlaps the previous one")
        if t.offset - pos >= alignment:
            raise InvalidGGUF(f"{where}: gap of {t.offset - pos} bytes before tensor {t.name[:100]!r}")
        pos = t.end
    if infos:
        if data_start + pos > file_size:
            raise InvalidGGUF(f"{where}: tensor data runs past the end of the file")
        tail = file_size - data_start - pos
        if tail >= alignment:
            raise InvalidGGUF(f"{where}: {tail} trailing bytes after the last tensor")
        header_size = data_start
    else:
        if file_size > data_start:
            raise InvalidGGUF(f"{where}: {file_size - data_start} trailing bytes after the header")
        header_size = file_size
    if available is not None and available != header_size:
        raise InvalidGGUF(f"{where}: stored header is {available} bytes, the layout needs {header_size}")
    return GGUFHeader(
        version=version,
        alignment=alignment,
        kv_count=n_kv,
        tensors=tuple(infos),
        data_start=data_start,
        header_size=header_size,
        file_size=file_size,
        metadata=tuple(metadata),
    )


def parse_header_bytes(header: bytes, file_size: int, where: str) -> GGUFHeader:
    """Validate stored header bytes (a manifest's) against the size of the file they belong to."""

    def read_at(off: int, n: int) -> bytes:
        return header[off : off + n]

    return parse_header(read_at, file_size, where, available=len(header))


def tensor_ranges(info: GGUFTensorInfo, target: int) -> list[tuple[int, int]]:
    """(offset, length) pieces of a tensor's bytes, each ≤ ``target``, cut between rows (or blocks)."""
    n = info.nbytes
    if n <= target:
        return [(0, n)]
    block_bytes = GGML_TYPES[info.ggml_type][2]
    row = info.row_bytes
    unit = row if 0 < row <= target else block_bytes
    step = max(unit, (target // unit) * unit)
    return [(off, min(step, n - off)) for off in range(0, n, step)]
