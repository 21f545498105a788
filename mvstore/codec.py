"""The one place that turns objects into bytes and back.

Two layers:

* **Canonical msgpack** for structured objects: maps with sorted string keys, shortest integer
  forms, ``bin`` for bytes. Decoding re-encodes and compares, so every object has exactly one valid
  encoding and therefore exactly one id.
* **The stored-object envelope**: a 16-byte header in front of every object file (local or remote)
  naming the encoding of the payload. Ids are always the hash of the *raw* bytes, so an object can
  be re-encoded (compressed, delta'd) without changing its id or anything that points at it.

See docs/format.md for the byte-level specification.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from .errors import CorruptObject, InvalidObject, InvalidSafetensors
from .formats.gguf import InvalidGGUF, parse_header_bytes
from .formats.safetensors import parse_header
from .ids import ID_BYTES, ObjectId, hash_bytes
from .objects import (
    ENTRY_KINDS,
    STAGE_NAMES,
    Chunk,
    ChunkedBlob,
    Commit,
    GGUFManifest,
    GGUFTensor,
    SafetensorsManifest,
    StageEvent,
    StoredObject,
    Tag,
    TagSignature,
    TensorEntry,
    Tree,
    TreeEntry,
)
from .paths import check_tree_path, file_folder_clash

FORMAT_VERSION = 1
#: A tag that carries a ``signature`` is ``v: 2``, so a reader that predates signatures fails with
#: "unsupported format version" instead of silently ignoring one (docs/format.md, "Signed tags").
SIGNED_TAG_VERSION = 2

# --- envelope -------------------------------------------------------------------------------------

MAGIC = b"MVO1"
ENVELOPE = struct.Struct("<4sBBHQ")  # magic, encoding, kind, params length, raw length
ENVELOPE_SIZE = ENVELOPE.size  # 16: keeps raw payloads 16-byte aligned for zero-copy loads

ENCODING_RAW = 0
ENCODING_XOR_DELTA = 3
#: Encodings a reader must know: the local store writes ``raw``, pushes write ``zstd`` /
#: ``zstd-planes``, ``mv repack`` writes ``zstd-planes`` / ``xor-delta`` (docs/format.md, "Encodings").
ENCODING_NAMES = {0: "raw", 1: "zstd", 2: "zstd-planes", 3: "xor-delta"}

KIND_DATA = 1  # raw bytes: tensor chunks, file blobs
KIND_STRUCT = 2  # canonical msgpack: commits, trees, manifests, tags
KIND_NAMES = {KIND_DATA: "data", KIND_STRUCT: "struct"}


@dataclass(frozen=True, slots=True)
class Envelope:
    encoding: int
    kind: int
    params: bytes
    raw_size: int

    @property
    def payload_offset(self) -> int:
        return ENVELOPE_SIZE + len(self.params)


def envelope_header(kind: int, raw_size: int, encoding: int = ENCODING_RAW, params: bytes = b"") -> bytes:
    return ENVELOPE.pack(MAGIC, encoding, kind, len(params), raw_size) + params


def parse_envelope(head: bytes, what: str) -> Envelope:
    """Check the fixed header of a stored object. ``head`` must hold at least the params."""
    if len(head) < ENVELOPE_SIZE:
        raise CorruptObject(f"object {what}: truncated (no header)")
    magic, encoding, kind, plen, raw_size = ENVELOPE.unpack_from(head)
    if magic != MAGIC:
        raise CorruptObject(f"object {what}: bad magic {magic!r}")
    if encoding not in ENCODING_NAMES:
        raise CorruptObject(f"object {what}: unknown encoding {encoding}")
    if kind not in KIND_NAMES:
        raise CorruptObject(f"object {what}: unknown kind {kind}")
    if len(head) < ENVELOPE_SIZE + plen:
        raise CorruptObject(f"object {what}: truncated header parameters")
    return Envelope(encoding, kind, bytes(head[ENVELOPE_SIZE : ENVELOPE_SIZE + plen]), raw_size)


def delta_base(env: Envelope, what: str) -> tuple[ObjectId, int] | None:
    """(base id, chain depth) of an ``xor-delta`` object; None for every other encoding."""
    if env.encoding != ENCODING_XOR_DELTA:
        return None
    from .encoding import MAX_DELTA_DEPTH

    params = unpack(env.params, what) if env.params else {}
    if not isinstance(params, dict) or set(params) != {"base", "w", "d"}:
        raise CorruptObject(f"object {what}: bad delta parameters")
    base, depth = params["base"], params["d"]
    if not isinstance(base, bytes) or len(base) != ID_BYTES or type(depth) is not int or not 1 <= depth <= MAX_DELTA_DEPTH:
        raise CorruptObject(f"object {what}: bad delta base or depth")
    return ObjectId(base), depth


def decode_payload(
    env: Envelope, payload: bytes | memoryview, what: str, base_reader: Callable[[ObjectId, int], bytes] | None = None
) -> bytes | memoryview:
    """Turn an encoded payload back into raw bytes (a no-op view for ``raw``).

    ``base_reader(id, max_depth)`` returns the verified raw bytes of a delta's base object.
    """
    if env.encoding == ENCODING_RAW:
        if len(payload) != env.raw_size:
            raise CorruptObject(f"object {what}: payload is {len(payload)} bytes, header says {env.raw_size}")
        return payload
    from .encoding import decompress, undo_xor_delta

    if env.encoding == ENCODING_XOR_DELTA:
        found = delta_base(env, what)
        assert found is not None
        if base_reader is None:
            raise CorruptObject(f"object {what}: a delta, but no base can be read here")
        base_id, depth = found
        return undo_xor_delta(unpack(env.params, what), payload, env.raw_size, base_reader(base_id, depth - 1), what)
    params = unpack(env.params, what) if env.params else {}
    if not isinstance(params, dict):
        raise CorruptObject(f"object {what}: encoding parameters must be a map")
    return decompress(env.encoding, params, payload, env.raw_size, what)


def encode_envelope(raw: bytes | memoryview, kind: int, width: int = 1, compress: bool = False) -> bytes:
    """A complete stored-object file: header (+ params) + payload, compressed when it pays."""
    if compress and len(raw) >= 64:
        from .encoding import compress as do_compress

        encoding, params, payload = do_compress(raw, width)
        if len(payload) < len(raw) * 0.97:  # keep raw when compression saves < 3%
            return envelope_header(kind, len(raw), encoding, pack(params) if params else b"") + payload
    return envelope_header(kind, len(raw)) + bytes(raw)


def decode_envelope(data: bytes | memoryview, what: str, kind: int | None = None) -> bytes:
    """Raw bytes of a complete stored-object file (the caller verifies the hash)."""
    env = parse_envelope(bytes(data[: ENVELOPE_SIZE + 65536]), what)
    if kind is not None and env.kind != kind:
        raise CorruptObject(f"object {what}: wrong kind {env.kind}, expected {kind}")
    return bytes(decode_payload(env, memoryview(data)[env.payload_offset :], what))


# --- canonical msgpack ----------------------------------------------------------------------------


def _canon(value: Any) -> Any:
    if isinstance(value, Mapping):
        keys = list(value)
        if not all(isinstance(k, str) for k in keys):
            raise InvalidObject("map keys must be strings")
        return {k: _canon(value[k]) for k in sorted(keys)}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidObject("non-finite floats are not allowed in objects")
    if isinstance(value, ObjectId):
        return bytes(value)
    return value


def pack(value: Any) -> bytes:
    """Canonical msgpack bytes of a plain value (maps, lists, str, bytes, int, float, bool, None)."""
    out: bytes = msgpack.packb(_canon(value), use_bin_type=True, strict_types=False)
    return out


def unpack(data: bytes | memoryview, what: str) -> Any:
    """Decode canonical msgpack; any other encoding of the same value is rejected."""
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as e:
        raise CorruptObject(f"object {what}: not valid msgpack ({type(e).__name__})") from None
    try:
        again = pack(value)
    except InvalidObject as e:
        raise InvalidObject(f"object {what}: {e}") from None
    if again != bytes(data):
        raise InvalidObject(f"object {what}: not canonically encoded")
    return value


# --- typed objects <-> canonical maps ---------------------------------------------------------------


def encode_object(obj: StoredObject) -> bytes:
    """The raw (pre-envelope) bytes of a structured object; its id is their hash."""
    return pack(_to_map(obj))


def object_id(obj: StoredObject) -> ObjectId:
    return hash_bytes(encode_object(obj))


def _chunks(chunks: tuple[Chunk, ...]) -> list[list[Any]]:
    return [[bytes(c.id), c.size] for c in chunks]


def _to_map(obj: StoredObject) -> dict[str, Any]:
    head = {"v": FORMAT_VERSION}
    if isinstance(obj, Commit):
        return head | {
            "type": "commit",
            "tree": obj.tree,
            "parents": list(obj.parents),
            "author": obj.author,
            "time": obj.time,
            "tz": obj.tz_offset,
            "message": obj.message,
            "meta": dict(obj.meta),
        }
    if isinstance(obj, Tree):
        entries = []
        for e in obj.entries:
            m: dict[str, Any] = {"path": e.path, "kind": e.kind, "size": e.size}
            if e.executable:
                m["x"] = True
            if e.kind == "inline":
                m["data"] = e.data
            else:
                m["id"] = e.id
            entries.append(m)
        return head | {"type": "tree", "entries": entries}
    if isinstance(obj, ChunkedBlob):
        return head | {"type": "chunked", "size": obj.size, "chunks": _chunks(obj.chunks)}
    if isinstance(obj, SafetensorsManifest):
        tensors = []
        for t in obj.tensors:
            m = {"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "offsets": [t.begin, t.end]}
            if t.data is not None:
                m["data"] = t.data
            else:
                m["chunks"] = _chunks(t.chunks)
            tensors.append(m)
        return head | {"type": "safetensors", "size": obj.size, "header": obj.header, "tensors": tensors}
    if isinstance(obj, Tag):
        m = _tag_map(obj)
        if obj.signature is not None:
            s = obj.signature
            m["signature"] = {"alg": s.alg, "key": s.key, "sig": s.sig}
        return m
    if isinstance(obj, GGUFManifest):
        gtensors = []
        for g in obj.tensors:
            gm: dict[str, Any] = {
                "name": g.name,
                "type": g.ggml_type,
                "dims": list(g.dims),
                "offset": g.offset,
                "pad": g.pad,
            }
            if g.data is not None:
                gm["data"] = g.data
            else:
                gm["chunks"] = _chunks(g.chunks)
            gtensors.append(gm)
        return head | {"type": "gguf", "size": obj.size, "header": obj.header, "tensors": gtensors}
    if isinstance(obj, StageEvent):
        return head | {
            "type": "stage",
            "version": obj.version,
            "stage": obj.stage,
            "target": obj.target,
            "who": obj.who,
            "time": obj.time,
            "tz": obj.tz_offset,
            "why": obj.why,
            "previous": obj.previous,
        }
    raise TypeError(f"not a stored object: {type(obj).__name__}")


def _tag_map(obj: Tag) -> dict[str, Any]:
    return {
        "v": FORMAT_VERSION if obj.signature is None else SIGNED_TAG_VERSION,
        "type": "tag",
        "target": obj.target,
        "target_type": obj.target_type,
        "name": obj.name,
        "tagger": obj.tagger,
        "time": obj.time,
        "tz": obj.tz_offset,
        "message": obj.message,
    }


def tag_signing_bytes(tag: Tag) -> bytes:
    """What an Ed25519 tag signature signs: the signed tag's canonical map without ``signature``.

    That map has ``v: 2`` and names the target commit by id, which names the tree, which names
    every object below it: the signature binds the whole snapshot by hash.
    """
    m = _tag_map(tag)
    m["v"] = SIGNED_TAG_VERSION
    return pack(m)


def decode_object(raw: bytes | memoryview, what: str) -> StoredObject:
    """Decode and validate a structured object. Every field is type-checked before use."""
    m = unpack(raw, what)
    try:
        return _from_map(m, what)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, InvalidObject):
            raise
        raise InvalidObject(f"object {what}: malformed ({type(e).__name__}: {e})") from None


def object_type(raw: bytes | memoryview, what: str) -> str:
    m = unpack(raw, what)
    if not isinstance(m, dict) or not isinstance(m.get("type"), str):
        raise InvalidObject(f"object {what}: no type")
    return str(m["type"])


class _Fields:
    """Typed access to a decoded map that rejects missing, extra and mistyped fields."""

    def __init__(self, m: Any, allowed: set[str], what: str) -> None:
        if not isinstance(m, dict):
            raise InvalidObject(f"object {what}: expected a map")
        extra = set(m) - allowed
        if extra:
            raise InvalidObject(f"object {what}: unknown fields {sorted(extra)}")
        self.m, self.what = m, what

    def get(self, key: str, typ: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.m:
            if default is ...:
                raise InvalidObject(f"object {self.what}: missing field {key!r}")
            return default
        v = self.m[key]
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            raise InvalidObject(f"object {self.what}: field {key!r} has the wrong type")
        return v

    def nonneg(self, key: str) -> int:
        v = self.get(key, int)
        if v < 0:
            raise InvalidObject(f"object {self.what}: field {key!r} is negative")
        return int(v)

    def oid(self, key: str) -> ObjectId:
        return _oid(self.get(key, bytes), self.what)


def _oid(v: Any, what: str) -> ObjectId:
    if not isinstance(v, bytes) or len(v) != ID_BYTES:
        raise InvalidObject(f"object {what}: bad object id")
    return ObjectId(v)


def _read_chunks(v: Any, what: str) -> tuple[Chunk, ...]:
    if not isinstance(v, list):
        raise InvalidObject(f"object {what}: chunks must be a list")
    out = []
    for c in v:
        if not (isinstance(c, list) and len(c) == 2 and type(c[1]) is int and c[1] >= 0):
            raise InvalidObject(f"object {what}: bad chunk")
        out.append(Chunk(_oid(c[0], what), c[1]))
    return tuple(out)


def _from_map(m: Any, what: str) -> StoredObject:
    if not isinstance(m, dict):
        raise InvalidObject(f"object {what}: expected a map")
    if m.get("v") != FORMAT_VERSION and not (m.get("v") == SIGNED_TAG_VERSION and m.get("type") == "tag"):
        raise InvalidObject(f"object {what}: unsupported format version {m.get('v')!r}")
    kind = m.get("type")
    if kind == "commit":
        f = _Fields(m, {"v", "type", "tree", "parents", "author", "time", "tz", "message", "meta"}, what)
        parents = tuple(_oid(p, what) for p in f.get("parents", list))
        meta = f.get("meta", dict)
        for k, val in meta.items():
            if not isinstance(val, (str, int, float, bool, type(None))):
                raise InvalidObject(f"object {what}: meta value for {k!r} must be a scalar")
        return Commit(
            tree=f.oid("tree"),
            parents=parents,
            author=f.get("author", str),
            time=f.get("time", int),
            tz_offset=f.get("tz", int),
            message=f.get("message", str),
            meta=tuple(sorted(meta.items())),
        )
    if kind == "tree":
        f = _Fields(m, {"v", "type", "entries"}, what)
        entries = []
        prev = None
        for em in f.get("entries", list):
            ef = _Fields(em, {"path", "kind", "size", "x", "id", "data"}, what)
            path = check_tree_path(ef.get("path", str))
            if prev is not None and path <= prev:
                raise InvalidObject(f"object {what}: tree entries not sorted or duplicated at {path!r}")
            prev = path
            k = ef.get("kind", str)
            if k not in ENTRY_KINDS:
                raise InvalidObject(f"object {what}: unknown entry kind {k!r}")
            size = ef.nonneg("size")
            if k == "inline":
                data = ef.get("data", bytes)
                if len(data) != size or "id" in em:
                    raise InvalidObject(f"object {what}: bad inline entry {path!r}")
                entries.append(TreeEntry(path, k, size, ef.get("x", bool, False), None, data))
            else:
                if "data" in em:
                    raise InvalidObject(f"object {what}: entry {path!r} has both id and data")
                entries.append(TreeEntry(path, k, size, ef.get("x", bool, False), ef.oid("id"), None))  # type: ignore[arg-type]
        clash = file_folder_clash(e.path for e in entries)
        if clash is not None:
            raise InvalidObject(f"object {what}: {clash!r} is both a file and a folder")
        return Tree(tuple(entries))
    if kind == "chunked":
        f = _Fields(m, {"v", "type", "size", "chunks"}, what)
        chunks = _read_chunks(f.get("chunks", list), what)
        size = f.nonneg("size")
        if sum(c.size for c in chunks) != size:
            raise InvalidObject(f"object {what}: chunk sizes do not add up to the blob size")
        return ChunkedBlob(size, chunks)
    if kind == "safetensors":
        return _manifest_from_map(m, what)
    if kind == "tag":
        signed = m.get("v") == SIGNED_TAG_VERSION
        f = _Fields(
            m,
            {"v", "type", "target", "target_type", "name", "tagger", "time", "tz", "message"}
            | ({"signature"} if signed else set()),
            what,
        )
        signature = None
        if signed:
            sf = _Fields(f.get("signature", dict), {"alg", "key", "sig"}, what)
            alg, key, sig = sf.get("alg", str), sf.get("key", bytes), sf.get("sig", bytes)
            if alg != "ed25519" or len(key) != 32 or len(sig) != 64:
                raise InvalidObject(f"object {what}: malformed tag signature")
            signature = TagSignature(key=key, sig=sig, alg=alg)
        return Tag(
            target=f.oid("target"),
            target_type=f.get("target_type", str),
            name=f.get("name", str),
            tagger=f.get("tagger", str),
            time=f.get("time", int),
            tz_offset=f.get("tz", int),
            message=f.get("message", str),
            signature=signature,
        )
    if kind == "gguf":
        return _gguf_from_map(m, what)
    if kind == "stage":
        f = _Fields(
            m, {"v", "type", "version", "stage", "target", "who", "time", "tz", "why", "previous"}, what
        )
        stage = f.get("stage", str)
        if stage not in STAGE_NAMES:
            raise InvalidObject(f"object {what}: unknown stage {stage[:40]!r}")
        version = f.get("version", str)
        if not 0 < len(version) <= 255:
            raise InvalidObject(f"object {what}: bad version name")
        prev = f.get("previous", (bytes, type(None)))
        return StageEvent(
            version=version,
            stage=stage,
            target=f.oid("target"),
            who=f.get("who", str),
            time=f.get("time", int),
            tz_offset=f.get("tz", int),
            why=f.get("why", str),
            previous=None if prev is None else _oid(prev, what),
        )
    raise InvalidObject(f"object {what}: unknown type {str(kind)[:40]!r}")


def _tensor_payload(
    tf: _Fields, tm: dict[str, Any], name: str, nbytes: int, what: str
) -> tuple[tuple[Chunk, ...], bytes | None]:
    """A manifest tensor's bytes: inline ``data`` or ``chunks`` adding up to exactly ``nbytes``."""
    if "data" in tm:
        data = tf.get("data", bytes)
        if "chunks" in tm or len(data) != nbytes:
            raise InvalidObject(f"object {what}: bad inline tensor {name[:80]!r}")
        return (), data
    chunks = _read_chunks(tf.get("chunks", list), what)
    if sum(c.size for c in chunks) != nbytes:
        raise InvalidObject(f"object {what}: chunks of {name[:80]!r} do not add up to its size")
    return chunks, None


def _manifest_from_map(m: dict[str, Any], what: str) -> SafetensorsManifest:
    f = _Fields(m, {"v", "type", "size", "header", "tensors"}, what)
    header_bytes = f.get("header", bytes)
    size = f.nonneg("size")
    try:
        header = parse_header(header_bytes, size, f"manifest {what}")
    except InvalidSafetensors as e:
        raise InvalidObject(str(e)) from None
    raw_tensors = f.get("tensors", list)
    if len(raw_tensors) != len(header.tensors):
        raise InvalidObject(f"object {what}: tensor table does not match the header")
    tensors = []
    for info, tm in zip(header.tensors, raw_tensors, strict=True):
        tf = _Fields(tm, {"name", "dtype", "shape", "offsets", "chunks", "data"}, what)
        if (
            tf.get("name", str) != info.name
            or tf.get("dtype", str) != info.dtype
            or tuple(tf.get("shape", list)) != info.shape
            or tf.get("offsets", list) != [info.begin, info.end]
        ):
            raise InvalidObject(
                f"object {what}: tensor table does not match the header at {info.name[:80]!r}"
            )
        chunks, data = _tensor_payload(tf, tm, info.name, info.nbytes, what)
        tensors.append(TensorEntry(info.name, info.dtype, info.shape, info.begin, info.end, chunks, data))
    return SafetensorsManifest(
        size=size, header=header_bytes, tensors=tuple(tensors), metadata=header.metadata
    )


def _gguf_from_map(m: dict[str, Any], what: str) -> GGUFManifest:
    """A GGUF manifest, checked against its own header: the table must be exactly the header's."""
    f = _Fields(m, {"v", "type", "size", "header", "tensors"}, what)
    header_bytes = f.get("header", bytes)
    size = f.nonneg("size")
    try:
        header = parse_header_bytes(header_bytes, size, f"manifest {what}")
    except InvalidGGUF as e:
        raise InvalidObject(str(e)) from None
    raw_tensors = f.get("tensors", list)
    if len(raw_tensors) != len(header.tensors):
        raise InvalidObject(f"object {what}: tensor table does not match the header")
    out = []
    for i, (info, tm) in enumerate(zip(header.tensors, raw_tensors, strict=True)):
        tf = _Fields(tm, {"name", "type", "dims", "offset", "chunks", "data", "pad"}, what)
        if (
            tf.get("name", str) != info.name
            or tf.get("type", int) != info.ggml_type
            or tuple(tf.get("dims", list)) != info.dims
            or tf.get("offset", int) != info.offset
        ):
            raise InvalidObject(f"object {what}: tensor table does not match the header at {info.name[:80]!r}")
        pad = tf.get("pad", bytes)
        if len(pad) != header.pad_after(i):
            raise InvalidObject(f"object {what}: bad padding after {info.name[:80]!r}")
        chunks, data = _tensor_payload(tf, tm, info.name, info.nbytes, what)
        out.append(GGUFTensor(info.name, info.ggml_type, info.dims, info.offset, info.nbytes, chunks, data, pad))
    return GGUFManifest(size=size, header=header_bytes, tensors=tuple(out))


def referenced_ids(obj: StoredObject) -> list[tuple[ObjectId, int]]:
    """Every (id, kind) an object points at: what reachability walks (verify, gc, push) follow."""
    if isinstance(obj, Commit):
        return [(obj.tree, KIND_STRUCT)] + [(p, KIND_STRUCT) for p in obj.parents]
    if isinstance(obj, Tree):
        return [
            (e.id, KIND_DATA if e.kind == "blob" else KIND_STRUCT) for e in obj.entries if e.id is not None
        ]
    if isinstance(obj, ChunkedBlob):
        return [(c.id, KIND_DATA) for c in obj.chunks]
    if isinstance(obj, SafetensorsManifest):
        return [(c.id, KIND_DATA) for t in obj.tensors for c in t.chunks]
    if isinstance(obj, Tag):
        return [(obj.target, KIND_STRUCT)]
    if isinstance(obj, GGUFManifest):
        return [(c.id, KIND_DATA) for t in obj.tensors for c in t.chunks]
    if isinstance(obj, StageEvent):
        return [(obj.target, KIND_STRUCT)] + ([(obj.previous, KIND_STRUCT)] if obj.previous else [])
    raise TypeError(type(obj).__name__)
