"""Valid inputs for every fuzz target, built with the real writers: the fuzzers mutate these, so
they explore deep into each parser instead of failing on the first byte."""

from __future__ import annotations

import struct

from mvstore import codec
from mvstore.codec import KIND_DATA, KIND_STRUCT, encode_envelope, envelope_header
from mvstore.ids import hash_bytes
from mvstore.objects import (
    Chunk,
    ChunkedBlob,
    Commit,
    SafetensorsManifest,
    StageEvent,
    Tag,
    TensorEntry,
    Tree,
    TreeEntry,
)


def _safetensors() -> bytes:
    import json

    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
            "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},
            "c": {"dtype": "BOOL", "shape": [0], "data_offsets": [22, 22]},
        },
        separators=(",", ":"),
    ).encode()
    header += b" " * (-(8 + len(header)) % 8)
    return struct.pack("<Q", len(header)) + header + bytes(range(22))


def _gguf() -> bytes:
    """A GGUF header (GGUF v3, two KVs, two F32 tensors) as a manifest stores it, file size first."""

    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    kvs = s("general.architecture") + struct.pack("<I", 8) + s("llama")
    kvs += s("general.alignment") + struct.pack("<I", 4) + struct.pack("<I", 32)
    infos = (
        s("w") + struct.pack("<I", 2) + struct.pack("<QQ", 4, 2) + struct.pack("<I", 0) + struct.pack("<Q", 0)
    )
    infos += (
        s("b") + struct.pack("<I", 1) + struct.pack("<Q", 4) + struct.pack("<I", 0) + struct.pack("<Q", 32)
    )
    head = b"GGUF" + struct.pack("<IQQ", 3, 2, 2) + kvs + infos
    head += b"\0" * (-len(head) % 32)
    file_size = len(head) + 32 + 16
    return struct.pack("<Q", file_size) + head


def _objects() -> list[bytes]:
    data = bytes(range(200))
    cid = hash_bytes(data)
    st = _safetensors()
    n = struct.unpack("<Q", st[:8])[0]
    manifest = SafetensorsManifest(
        size=len(st),
        header=st[8 : 8 + n],
        tensors=(
            TensorEntry("a", "F32", (2, 2), 0, 16, (Chunk(cid, 16),), None),
            TensorEntry("b", "BF16", (3,), 16, 22, (), bytes(6)),
            TensorEntry("c", "BOOL", (0,), 22, 22, (), b""),
        ),
    )
    tree = Tree(
        (
            TreeEntry("config.json", "inline", 2, False, None, b"{}"),
            TreeEntry("model.safetensors", "safetensors", len(st), False, hash_bytes(b"m"), None),
            TreeEntry("x.bin", "blob", 200, True, cid, None),
        )
    )
    commit = Commit(
        hash_bytes(b"t"), (hash_bytes(b"p"),), "A <a@b>", 1_700_000_000, 60, "msg", (("step", 3),)
    )
    tag = Tag(hash_bytes(b"c"), "commit", "v1.0.0", "A <a@b>", 1_700_000_000, 0, "release")
    stage = StageEvent("v1.0.0", "candidate", hash_bytes(b"c"), "A", 1, 0, "why", hash_bytes(b"prev"))
    blob = ChunkedBlob(16, (Chunk(cid, 16),))
    return [codec.encode_object(o) for o in (manifest, tree, commit, tag, stage, blob)]


def _envelopes() -> list[bytes]:
    raw = bytes(range(256)) * 8
    out = [
        envelope_header(KIND_DATA, len(raw)) + raw,
        encode_envelope(raw, KIND_DATA, 1, compress=True),
        encode_envelope(raw, KIND_DATA, 4, compress=True),
        encode_envelope(_objects()[2], KIND_STRUCT, 1, compress=True),
    ]
    from mvstore.encoding import xor_delta

    base = (bytes(range(256)) * 9)[: len(raw)]
    params = codec.pack({"base": bytes(hash_bytes(base)), "w": 2, "d": 1})
    out.append(
        envelope_header(KIND_DATA, len(raw), codec.ENCODING_XOR_DELTA, params) + xor_delta(raw, base, 2)
    )
    return out


def seeds(target: str) -> list[bytes]:
    if target == "safetensors_file":
        return [_safetensors()]
    if target == "safetensors_header":
        st = _safetensors()
        n = struct.unpack("<Q", st[:8])[0]
        return [struct.pack("<Q", len(st)) + st[8 : 8 + n]]
    if target == "gguf_header":
        return [_gguf()]
    if target == "object_decoder":
        return _objects()
    if target == "envelope":
        return _envelopes()
    if target == "names":
        return [
            b"main",
            b"feature/x-1",
            b"v1.2.0-rc.1",
            b"objects/ab/cd",
            b"packs/00.idx",
            b"model/config.json",
        ]
    raise KeyError(target)
