"""Where to cut: tensor sub-chunks at element boundaries, and content-defined chunks for blobs.

TENSOR_CHUNK_BYTES — a tensor larger than this is split into row-aligned pieces of at most this
size, so appending vocabulary rows or training a few rows re-stores only the touched pieces. 4 MiB
was chosen with ``bench/chunk_size.py`` (results in bench/RESULTS.md): on the MiniLM vocabulary-
growth series it stores within a few percent of the 1 MiB setting while keeping the object count
(and per-object open/rename cost on commit and checkout) 4x lower; 16 MiB and up re-store most of
the embedding matrix per added token block.

INLINE_TENSOR_BYTES — tensors at or below this size (LayerNorm weights, biases: 58 of MiniLM's 104
tensors) live inside the manifest instead of as one file each: a file per 1.5 KiB tensor costs an
inode, a rename and a sync, and for remote stores one request, for almost no dedup benefit.
"""

from __future__ import annotations

import math

from .safetensors import DTYPE_BITS

TENSOR_CHUNK_BYTES = 4 * 1024 * 1024
INLINE_TENSOR_BYTES = 4096
INLINE_FILE_BYTES = 4096
#: Opaque files above this size are split with FastCDC so that similar large blobs dedupe.
CDC_MIN_FILE_BYTES = 4 * 1024 * 1024
CDC_EXTENSIONS = (".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".h5", ".msgpack", ".npz", ".pkl")
CDC_EXT_MIN_FILE_BYTES = 256 * 1024
#: FastCDC average chunk size. 1 MiB keeps a multi-GB pickle at a few thousand objects;
#: min/max are FastCDC's customary avg/4 and avg*4.
CDC_AVG_BYTES = 1024 * 1024
CDC_MAX_BYTES = 4 * CDC_AVG_BYTES


def tensor_ranges(
    dtype: str, shape: tuple[int, ...], nbytes: int, target: int | None = None
) -> list[tuple[int, int]]:
    """(offset, length) pieces of a tensor's bytes, each ≤ ``target``, cut between rows if possible."""
    if target is None:
        target = TENSOR_CHUNK_BYTES  # read at call time, so the benchmark sweep can change it
    if nbytes <= target:
        return [(0, nbytes)]
    bits = DTYPE_BITS[dtype]
    elem_unit = math.lcm(bits, 8) // 8  # smallest whole-byte run of whole elements
    row = (
        (math.prod(shape[1:]) * bits) // 8 if len(shape) > 1 and (math.prod(shape[1:]) * bits) % 8 == 0 else 0
    )
    unit = row if 0 < row <= target else elem_unit
    step = max(unit, (target // unit) * unit)
    return [(off, min(step, nbytes - off)) for off in range(0, nbytes, step)]


def wants_cdc(name: str, size: int) -> bool:
    lower = name.lower()
    if size > CDC_MIN_FILE_BYTES:
        return True
    return size > CDC_EXT_MIN_FILE_BYTES and lower.endswith(CDC_EXTENSIONS)
