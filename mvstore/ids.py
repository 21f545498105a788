"""Object ids: blake3-256 of an object's raw bytes.

Inside the program an id is an :class:`ObjectId` (32 raw bytes); hex appears only at the edges (refs
on disk, file names, the UI). A tensor chunk's id is the hash of its raw bytes, so the same weights
get the same id in every repository whatever encoding stores them.
"""

from __future__ import annotations

import re

import blake3

from .errors import InvalidObject

ID_BYTES = 32
HEX_LEN = 2 * ID_BYTES
MIN_PREFIX = 4
_HEX_RE = re.compile(r"[0-9a-f]+")
# Below this size a single-threaded hash is faster than spinning up blake3's thread pool.
_PARALLEL_HASH_MIN = 8 * 1024 * 1024


class ObjectId(bytes):
    """A 32-byte blake3 digest. Subclasses ``bytes`` so it is cheap, hashable and packs as bin."""

    __slots__ = ()

    def __new__(cls, raw: bytes) -> ObjectId:
        if len(raw) != ID_BYTES:
            raise InvalidObject(f"object id must be {ID_BYTES} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    @classmethod
    def from_hex(cls, text: str) -> ObjectId:
        if len(text) != HEX_LEN or not _HEX_RE.fullmatch(text):
            raise InvalidObject(f"not a full object id: {text[:80]!r}")
        return cls(bytes.fromhex(text))

    @property
    def hex_id(self) -> str:
        return self.hex()

    def short(self, n: int = 12) -> str:
        return self.hex()[:n]

    def __repr__(self) -> str:
        return f"ObjectId({self.hex()[:16]}…)"

    def __str__(self) -> str:
        return self.hex()


def hash_bytes(data: bytes | bytearray | memoryview) -> ObjectId:
    """The id of ``data``; large inputs use blake3's own threads (it releases the GIL)."""
    if len(data) >= _PARALLEL_HASH_MIN:
        digest = blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest()
    else:
        digest = blake3.blake3(data).digest()
    return ObjectId(digest)


def hash_single_thread(data: bytes | bytearray | memoryview) -> ObjectId:
    """For callers that already run one hash per worker thread."""
    return ObjectId(blake3.blake3(data).digest())


def is_hex_prefix(text: str) -> bool:
    return MIN_PREFIX <= len(text) <= HEX_LEN and bool(_HEX_RE.fullmatch(text))
