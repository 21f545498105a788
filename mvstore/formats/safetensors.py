"""Parse, validate and build safetensors headers — our own parser, with caps.

The reference library accepts duplicate keys and will spend seconds and gigabytes on a hostile
header, so nothing from a header is used before it has been checked here: sizes, offsets, dtypes,
contiguity and the end of the file. Tensor names are data, never paths.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import InvalidSafetensors

#: Bits per element. Sub-byte types (F4, F6) only ever occupy whole bytes in total.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}

MAX_HEADER_BYTES = 100_000_000  # the reference implementation's own limit
MAX_TENSORS = 262_144  # far above any real checkpoint file; bounds parse time and memory
MAX_RANK = 64
MAX_NAME_BYTES = 4096
MAX_METADATA_ENTRIES = 65_536


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True, slots=True)
class Header:
    """A validated header. ``data_start`` is where the data section begins in the file."""

    header_bytes: bytes
    tensors: tuple[TensorInfo, ...]  # sorted by data offset (header order breaks ties)
    metadata: tuple[tuple[str, str], ...]

    @property
    def data_start(self) -> int:
        return 8 + len(self.header_bytes)

    @property
    def data_size(self) -> int:
        return self.tensors[-1].end if self.tensors else 0

    @property
    def file_size(self) -> int:
        return self.data_start + self.data_size


def element_bytes(dtype: str, shape: Iterable[int]) -> int:
    """Byte size of a tensor, or InvalidSafetensors when the element bits don't fill whole bytes."""
    bits = DTYPE_BITS[dtype] * math.prod(shape)
    if bits % 8:
        raise InvalidSafetensors(f"{dtype} tensor of shape {list(shape)} does not fill whole bytes")
    return bits // 8


def read_header_length(prefix: bytes, file_size: int, where: str) -> int:
    if file_size < 8 or len(prefix) < 8:
        raise InvalidSafetensors(f"{where}: too short to be a safetensors file ({file_size} bytes)")
    n: int = struct.unpack("<Q", prefix[:8])[0]
    if n == 0 or n > MAX_HEADER_BYTES:
        raise InvalidSafetensors(f"{where}: header length {n} is out of range")
    if 8 + n > file_size:
        raise InvalidSafetensors(f"{where}: header length {n} runs past the end of the file")
    return n


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidSafetensors(f"duplicate key {key[:100]!r} in header")
        out[key] = value
    return out


def parse_header(header_bytes: bytes, file_size: int | None, where: str) -> Header:
    """Validate a header (without its 8-byte length prefix) against the file size, if known."""
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise InvalidSafetensors(f"{where}: header is larger than {MAX_HEADER_BYTES} bytes")
    if header_bytes.count(b'"dtype"') > MAX_TENSORS:  # cheap guard before building a huge dict
        raise InvalidSafetensors(f"{where}: more than {MAX_TENSORS} tensors")
    try:
        text = header_bytes.decode("utf-8")
        if not text.lstrip().startswith("{"):
            raise InvalidSafetensors(f"{where}: header is not a JSON object")
        doc = json.loads(text, object_pairs_hook=_no_duplicates)
    except InvalidSafetensors as e:
        raise InvalidSafetensors(f"{where}: {e}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise InvalidSafetensors(f"{where}: header is not valid JSON ({type(e).__name__})") from None
    if not isinstance(doc, dict):
        raise InvalidSafetensors(f"{where}: header is not a JSON object")
    metadata: tuple[tuple[str, str], ...] = ()
    infos: list[TensorInfo] = []
    for name, spec in doc.items():
        if name == "__metadata__":
            metadata = _parse_metadata(spec, where)
            continue
        infos.append(_parse_tensor(name, spec, where))
    # Zero-size tensors may share an offset; keep header order among equals (stable sort).
    infos.sort(key=lambda t: (t.begin, t.end))
    pos = 0
    for t in infos:
        if t.begin < pos:
            raise InvalidSafetensors(f"{where}: tensor {t.name[:100]!r} overlaps the previous one")
        if t.begin > pos:
            raise InvalidSafetensors(f"{where}: gap of {t.begin - pos} bytes before tensor {t.name[:100]!r}")
        pos = t.end
    header = Header(header_bytes=header_bytes, tensors=tuple(infos), metadata=metadata)
    if file_size is not None and header.file_size != file_size:
        if header.file_size > file_size:
            raise InvalidSafetensors(f"{where}: tensor data runs past the end of the file")
        raise InvalidSafetensors(
            f"{where}: {file_size - header.file_size} trailing bytes after the last tensor"
        )
    return header


def _parse_metadata(spec: object, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(spec, dict) or len(spec) > MAX_METADATA_ENTRIES:
        raise InvalidSafetensors(f"{where}: __metadata__ must be a map of strings")
    for k, v in spec.items():
        if not isinstance(v, str):
            raise InvalidSafetensors(f"{where}: __metadata__ value for {k[:100]!r} is not a string")
    return tuple(spec.items())


def _parse_tensor(name: str, spec: object, where: str) -> TensorInfo:
    label = f"{where}: tensor {name[:100]!r}"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidSafetensors(f"{label}: name is longer than {MAX_NAME_BYTES} bytes")
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        raise InvalidSafetensors(f"{label}: needs exactly dtype, shape and data_offsets")
    dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise InvalidSafetensors(f"{label}: unknown dtype {str(dtype)[:40]!r}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_RANK
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise InvalidSafetensors(f"{label}: shape must be a list of non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets):
        raise InvalidSafetensors(f"{label}: data_offsets must be two integers")
    begin, end = offsets
    if begin < 0 or end < begin:
        raise InvalidSafetensors(f"{label}: data_offsets [{begin}, {end}] are out of order")
    try:
        need = element_bytes(dtype, shape)
    except InvalidSafetensors as e:
        raise InvalidSafetensors(f"{label}: {e}") from None
    if need != end - begin:
        raise InvalidSafetensors(f"{label}: shape {shape} of {dtype} needs {need} bytes, offsets give {end - begin}")
    return TensorInfo(name=name, dtype=dtype, shape=tuple(shape), begin=begin, end=end)


def build_header(
    tensors: Iterable[tuple[str, str, tuple[int, ...]]], metadata: dict[str, str] | None = None
) -> Header:
    """Lay out tensors the way the reference writer does: by alignment (widest dtype first), then name.

    The header is padded with spaces to a multiple of 8 so every tensor starts 8-byte aligned.
    """
    items = sorted(tensors, key=lambda t: (-DTYPE_BITS[t[1]], t[0]))
    doc: dict[str, object] = {}
    if metadata:
        doc["__metadata__"] = dict(metadata)
    pos = 0
    for name, dtype, shape in items:
        n = element_bytes(dtype, shape)
        doc[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [pos, pos + n]}
        pos += n
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-(8 + len(raw)) % 8)
    return parse_header(raw, None, "built header")
