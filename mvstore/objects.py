"""Immutable value objects: what a repository is made of.

An object's id is the blake3 hash of its canonical encoding (see :mod:`mvstore.codec`), so these
classes are frozen: a changed object is a new object with a new id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

from .ids import ObjectId

MetaValue = Union[str, int, float, bool, None]

#: How a file is stored in a tree.
#: ``inline``: bytes in the tree entry itself (tiny files);
#: ``blob``: one data object holding the whole file (its id is the file's blake3);
#: ``chunked``: a :class:`ChunkedBlob` listing content-defined chunks (large opaque files);
#: ``safetensors``: a :class:`SafetensorsManifest` (per-tensor chunks, byte-exact header);
#: ``gguf``: a :class:`GGUFManifest` (llama.cpp files, split per tensor the same way).
EntryKind = Literal["inline", "blob", "chunked", "safetensors", "gguf"]
ENTRY_KINDS: tuple[str, ...] = ("inline", "blob", "chunked", "safetensors", "gguf")
#: Lifecycle stages of a released version, in order (see :class:`StageEvent`).
STAGE_NAMES: tuple[str, ...] = ("checkpoint", "candidate", "release", "deprecated", "archived")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A run of bytes stored as one data object."""

    id: ObjectId
    size: int


@dataclass(frozen=True, slots=True)
class TreeEntry:
    path: str
    kind: EntryKind
    size: int
    executable: bool = False
    id: ObjectId | None = None  # None only for inline entries
    data: bytes | None = None  # only for inline entries

    def same_content(self, other: TreeEntry | None) -> bool:
        """Equal bytes on disk (mode included); entries are deterministic functions of content."""
        return other is not None and self.content_key() == other.content_key()

    def content_key(self) -> tuple[object, ...]:
        return (self.kind, self.size, self.executable, self.id, self.data)


@dataclass(frozen=True, slots=True)
class Tree:
    """A flat, path-sorted list of files (model folders are shallow; a flat list diffs in one pass)."""

    entries: tuple[TreeEntry, ...]

    def by_path(self) -> dict[str, TreeEntry]:
        return {e.path: e for e in self.entries}

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)


@dataclass(frozen=True, slots=True)
class ChunkedBlob:
    size: int
    chunks: tuple[Chunk, ...]


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """One tensor of a safetensors file: either ``chunks`` (data objects) or ``data`` (inlined)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # offset in the data section, as in the header
    end: int
    chunks: tuple[Chunk, ...] = ()
    data: bytes | None = None

    @property
    def nbytes(self) -> int:
        return self.end - self.begin

    def content_key(self) -> tuple[object, ...]:
        return (self.dtype, self.shape, self.chunks, self.data)


@dataclass(frozen=True, slots=True)
class SafetensorsManifest:
    """Everything needed to rebuild a ``.safetensors`` file byte for byte.

    ``header`` is the JSON header exactly as written (padding included); the file is the 8-byte
    little-endian header length, the header, then every tensor's bytes in data-offset order.
    ``tensors`` is the same table, decoded, so a reader can fetch one tensor without parsing JSON.
    """

    size: int
    header: bytes
    tensors: tuple[TensorEntry, ...]
    metadata: tuple[tuple[str, str], ...] = ()

    def tensor(self, name: str) -> TensorEntry | None:
        for t in self.tensors:
            if t.name == name:
                return t
        return None


@dataclass(frozen=True, slots=True)
class Commit:
    tree: ObjectId
    parents: tuple[ObjectId, ...]
    author: str
    time: int  # seconds since the epoch
    tz_offset: int  # minutes east of UTC
    message: str
    meta: tuple[tuple[str, MetaValue], ...] = field(default=())

    def meta_dict(self) -> dict[str, MetaValue]:
        return dict(self.meta)


@dataclass(frozen=True, slots=True)
class TagSignature:
    """An Ed25519 signature over the tag's canonical encoding without this field (docs/format.md)."""

    key: bytes  # the 32-byte raw public key, so a verifier can name the signer
    sig: bytes  # 64 bytes
    alg: str = "ed25519"


@dataclass(frozen=True, slots=True)
class Tag:
    """An annotated tag: a named, signed-able pointer with its own id."""

    target: ObjectId
    target_type: str
    name: str
    tagger: str
    time: int
    tz_offset: int
    message: str
    signature: TagSignature | None = None

    def unsigned(self) -> Tag:
        return Tag(self.target, self.target_type, self.name, self.tagger, self.time, self.tz_offset, self.message)


@dataclass(frozen=True, slots=True)
class GGUFTensor:
    """One tensor of a GGUF file: ``chunks`` or inlined ``data``, then the padding that follows it."""

    name: str
    ggml_type: int
    dims: tuple[int, ...]  # ne[0] first, as in the file
    offset: int  # from the start of the data section
    nbytes: int
    chunks: tuple[Chunk, ...] = ()
    data: bytes | None = None
    pad: bytes = b""

    def content_key(self) -> tuple[object, ...]:
        return (self.ggml_type, self.dims, self.chunks, self.data)


@dataclass(frozen=True, slots=True)
class GGUFManifest:
    """Everything needed to rebuild a ``.gguf`` file byte for byte.

    ``header`` is every byte before the data section (fixed header, key/values, tensor infos,
    padding), verbatim; the file is ``header`` then each tensor's bytes and padding in offset order.
    """

    size: int
    header: bytes
    tensors: tuple[GGUFTensor, ...]

    def tensor(self, name: str) -> GGUFTensor | None:
        for t in self.tensors:
            if t.name == name:
                return t
        return None


@dataclass(frozen=True, slots=True)
class StageEvent:
    """One lifecycle change of a released version; events chain through ``previous``.

    ``refs/stages/<version>`` names the newest event, so a stage's history is append-only and
    syncs like any other ref + objects, and tags are never mutated to record it.
    """

    version: str
    stage: str
    target: ObjectId  # the commit the version named when the event was recorded
    who: str
    time: int
    tz_offset: int
    why: str
    previous: ObjectId | None = None


StoredObject = Union[Commit, Tree, ChunkedBlob, SafetensorsManifest, Tag, GGUFManifest, StageEvent]
