"""Payload encodings of stored objects: raw, zstd, and zstd over byte planes.

Ids are always the hash of the raw bytes, so an object can be stored under any encoding. Byte planes
split each element's bytes into separate runs (all first bytes, then all second bytes, …) before
zstd, so the sign/exponent bytes of floats — which vary little between neighbours — compress
together (the ZipNN observation). Planes go through a zstd tuned for them (see
``_plane_compressor``); other payloads through zstd level 1, which beat level 3 on both ratio and
speed for weights on this machine. Decoding is bounded by the raw size in the envelope: no decompression bombs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import CorruptObject

if TYPE_CHECKING:
    import numpy as np

ENCODING_RAW = 0
ENCODING_ZSTD = 1
ENCODING_ZSTD_PLANES = 2
ENCODING_XOR_DELTA = 3
#: Readers follow delta chains at most this deep (``mv repack`` writes much shorter ones).
MAX_DELTA_DEPTH = 16
ZSTD_LEVEL = 1
MAX_RAW_SIZE = 1 << 30  # no object is larger: chunks ≤ 4 MiB, headers ≤ 100 MB

_local: Any = None


def _zstd() -> Any:
    import zstandard

    return zstandard


def _plane_compressor() -> Any:
    """zstd tuned for byte planes of weights: the fast strategy with a small window and hash.

    Measured on MiniLM fp32 planes (bench/RESULTS.md, "Where the time goes"): 2.4x faster than
    level 1 on the sign/exponent plane *and* a better ratio there (2.96x vs 2.72x), since those
    bytes are near-random at long range but highly repetitive locally.
    """
    z = _zstd()
    params = z.ZstdCompressionParameters(
        window_log=17, chain_log=6, hash_log=8, search_log=1, min_match=7, target_length=0,
        strategy=z.STRATEGY_FAST,
    )
    return z.ZstdCompressor(compression_params=params)


def _merged(planes: bytes, width: int) -> np.ndarray[Any, Any]:
    """Inverse of the plane split, one column at a time (3x faster than a transposed copy)."""
    import numpy as np

    src = np.frombuffer(planes, dtype=np.uint8).reshape(width, -1)
    out = np.empty((src.shape[1], width), dtype=np.uint8)
    for i in range(width):
        out[:, i] = src[i]
    return out


def merge_planes(planes: bytes, width: int) -> bytes:
    return _merged(planes, width).tobytes()


def compress(raw: bytes | memoryview, width: int = 1) -> tuple[int, dict[str, Any], bytes]:
    """(encoding, params, payload) — planes when ``width`` > 1 and the length allows it."""
    if width > 1 and len(raw) % width == 0 and len(raw) >= 4 * width:
        import numpy as np

        planes = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width).T.copy()
        return ENCODING_ZSTD_PLANES, {"w": width}, _plane_compressor().compress(planes.data)
    return ENCODING_ZSTD, {}, _zstd().ZstdCompressor(level=ZSTD_LEVEL).compress(raw)


def _bounded_decompress(zstandard: Any, payload: bytes | memoryview, raw_size: int, what: str) -> bytes:
    """zstd with the output bounded by the envelope's raw size.

    ``max_output_size`` only applies to frames that do not declare their content size; a frame
    that declares one gets a buffer of *that* size, so a forged header claiming 2^50 bytes made
    ``decompress`` allocate without bound (MemoryError or worse; found by fuzz/run.py envelope).
    """
    try:  # zstandard reads a memoryview in place: no copy of the compressed payload
        declared = zstandard.frame_content_size(payload)
        if declared not in (-1, raw_size):
            raise CorruptObject(f"object {what}: zstd frame claims {declared} bytes, header says {raw_size}")
        out: bytes = zstandard.ZstdDecompressor().decompress(payload, max_output_size=raw_size)
    except zstandard.ZstdError as e:
        raise CorruptObject(f"object {what}: zstd payload does not decode ({e})") from None
    if len(out) != raw_size:
        raise CorruptObject(f"object {what}: decodes to {len(out)} bytes, header says {raw_size}")
    return out


def xor_delta(raw: bytes | memoryview, base: bytes | memoryview, width: int) -> bytes:
    """zstd over the byte planes of ``raw XOR base``: a fine-tune flips few high bits."""
    import numpy as np

    x = np.bitwise_xor(np.frombuffer(raw, dtype=np.uint8), np.frombuffer(base, dtype=np.uint8))
    if width > 1 and len(x) % width == 0:
        x = x.reshape(-1, width).T.copy()
    out: bytes = _plane_compressor().compress(x.data)
    return out


def undo_xor_delta(params: dict[str, Any], payload: bytes | memoryview, raw_size: int, base: bytes, what: str) -> bytes:
    import numpy as np

    w = params.get("w")
    if type(w) is not int or not 1 <= w <= 16 or len(base) != raw_size:
        raise CorruptObject(f"object {what}: bad delta parameters or base size")
    x = _bounded_decompress(_zstd(), payload, raw_size, what)
    arr = _merged(x, w).reshape(-1) if w > 1 and raw_size % w == 0 else np.frombuffer(x, dtype=np.uint8)
    out: bytes = np.bitwise_xor(arr, np.frombuffer(base, dtype=np.uint8)).tobytes()
    return out


def decompress(
    encoding: int, params: dict[str, Any], payload: bytes | memoryview, raw_size: int, what: str
) -> bytes:
    if raw_size > MAX_RAW_SIZE:
        raise CorruptObject(f"object {what}: claims {raw_size} raw bytes, more than any object can hold")
    raw = _bounded_decompress(_zstd(), payload, raw_size, what)
    if encoding == ENCODING_ZSTD:
        if params:
            raise CorruptObject(f"object {what}: unexpected zstd parameters")
        return bytes(raw)
    if encoding == ENCODING_ZSTD_PLANES:
        w = params.get("w")
        if set(params) != {"w"} or type(w) is not int or not 1 < w <= 16 or raw_size % w:
            raise CorruptObject(f"object {what}: bad byte-plane parameters")
        return merge_planes(raw, w)
    raise CorruptObject(f"object {what}: encoding {encoding} is not supported by this version")
