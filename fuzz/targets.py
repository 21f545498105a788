"""The parsers fuzzed by both atheris (the harnesses beside this file) and hypothesis
(tests/test_fuzz.py): each takes arbitrary bytes and must either succeed or raise one of our
errors (:class:`mvstore.errors.MvError`) — never another exception, never hang, never allocate
without bound. One definition, two fuzzers, so they can never drift apart.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from mvstore import codec
from mvstore.codec import ENVELOPE_SIZE
from mvstore.formats.gguf import parse_header_bytes
from mvstore.formats.safetensors import parse_header, read_header_length
from mvstore.ids import ObjectId
from mvstore.paths import check_tree_path
from mvstore.refs import check_ref_name
from mvstore.remote.backend import check_name

MAX_INPUT = 1 << 16


def safetensors_file(data: bytes) -> None:
    """A whole file: the 8-byte length, then the header (file size = what we were given)."""
    n = read_header_length(data[:8], len(data), "fuzz")
    parse_header(data[8 : 8 + n], len(data), "fuzz")


def safetensors_header(data: bytes) -> None:
    """A header claiming any file size (the first 8 bytes), as a manifest stores it."""
    size = struct.unpack("<Q", data[:8].ljust(8, b"\0"))[0]
    parse_header(data[8:], size, "fuzz")


def gguf_header(data: bytes) -> None:
    size = struct.unpack("<Q", data[:8].ljust(8, b"\0"))[0] % (1 << 40)
    parse_header_bytes(data[8:], max(size, len(data) - 8), "fuzz")


def object_decoder(data: bytes) -> None:
    obj = codec.decode_object(data, "fuzz")
    codec.referenced_ids(obj)


def envelope(data: bytes) -> None:
    """A stored-object file: header, params, payload (a delta's base is a fixed random object)."""
    env = codec.parse_envelope(data[: ENVELOPE_SIZE + 65536], "fuzz")
    base = bytes(range(256)) * ((env.raw_size // 256) + 1) if env.raw_size <= 1 << 20 else b""

    def base_reader(_oid: ObjectId, _depth: int) -> bytes:
        return base[: env.raw_size]

    codec.delta_base(env, "fuzz")
    codec.decode_payload(env, memoryview(data)[env.payload_offset :], "fuzz", base_reader)


def names(data: bytes) -> None:
    """Ref names, remote object names and tree paths from the same untrusted text."""
    text = data.decode("utf-8", "surrogateescape")
    for check in (check_ref_name, check_name, check_tree_path):
        try:
            check(text)
        except UnicodeEncodeError:
            pass  # surrogates cannot be names; our checks see them only through this harness


TARGETS: dict[str, Callable[[bytes], None]] = {
    "safetensors_file": safetensors_file,
    "safetensors_header": safetensors_header,
    "gguf_header": gguf_header,
    "object_decoder": object_decoder,
    "envelope": envelope,
    "names": names,
}
