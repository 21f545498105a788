"""GGUF files: split per tensor, rebuilt byte for byte, malformed headers refused.

Valid files are written by the ``gguf`` package's own writer (what llama.cpp's converters use);
malformed ones are built byte by byte, since a writer will not produce them.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from conftest import RepoState, assert_one_line_error, assert_unchanged, run_mv
from hypothesis import given
from hypothesis import strategies as st

import mvstore
from mvstore import codec
from mvstore.codec import KIND_STRUCT
from mvstore.errors import InvalidObject
from mvstore.formats import gguf as G
from mvstore.formats.chunking import TENSOR_CHUNK_BYTES
from mvstore.formats.gguf import InvalidGGUF
from mvstore.ingest import Ingestor
from mvstore.objects import GGUFManifest

Q = gguf.GGMLQuantizationType


def write_gguf(
    path: Path,
    tensors: dict[str, tuple[np.ndarray, int | None]],
    kvs: dict[str, object] | None = None,
    alignment: int | None = None,
    arch: str = "llama",
) -> Path:
    """A GGUF file through gguf-py: ``tensors`` maps name → (array, raw ggml type or None)."""
    w = gguf.GGUFWriter(str(path), arch)
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for k, v in (kvs or {}).items():
        if isinstance(v, bool):
            w.add_bool(k, v)
        elif isinstance(v, int):
            w.add_uint32(k, v)
        elif isinstance(v, float):
            w.add_float32(k, v)
        elif isinstance(v, str):
            w.add_string(k, v)
        else:
            w.add_array(k, v)  # type: ignore[arg-type]
    for name, (arr, raw) in tensors.items():
        if raw is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=Q(raw))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def quant_rows(rows: int, blocks_per_row: int, qtype: int, seed: int = 0) -> np.ndarray:
    """Random bytes shaped as a quantized tensor of ``rows`` rows (gguf-py wants the byte shape)."""
    size = G.GGML_TYPES[qtype][2]
    return np.random.default_rng(seed).integers(0, 256, (rows, blocks_per_row * size), dtype=np.uint8)


class _Capture:
    """An in-memory object writer: ingest without a repository."""

    def __init__(self) -> None:
        self.objects: dict[bytes, tuple[bytes, int]] = {}

    def put(self, oid: bytes, data: bytes | memoryview, kind: int) -> bool:
        self.objects[bytes(oid)] = (bytes(data), kind)
        return True


def split_and_rebuild(path: Path) -> tuple[bytes, GGUFManifest, _Capture]:
    """Ingest a file into memory, decode its manifest through the codec, rebuild the bytes."""
    cap = _Capture()
    with Ingestor(cap) as ing:  # type: ignore[arg-type]
        entry, _ = ing.ingest_file(path, path.name)
    assert entry.kind == "gguf" and entry.id is not None
    raw, kind = cap.objects[bytes(entry.id)]
    assert kind == KIND_STRUCT
    m = codec.decode_object(raw, "test")
    assert isinstance(m, GGUFManifest)
    out = bytearray(m.header)
    for t in m.tensors:
        assert len(out) == len(m.header) + t.offset
        if t.data is not None:
            out += t.data
        else:
            for c in t.chunks:
                data, k = cap.objects[bytes(c.id)]
                assert k == 1 and len(data) == c.size
                out += data
        out += t.pad
    return bytes(out), m, cap


# --- valid files ---------------------------------------------------------------------------------------


def test_roundtrip_types_kvs_and_padding(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    p = write_gguf(
        tmp_path / "m.gguf",
        {
            "tok_embd.weight": (rng.standard_normal((300, 64), dtype=np.float32), None),
            "norm.weight": (rng.standard_normal(64).astype(np.float16), None),
            "odd": (np.arange(7, dtype=np.int8), None),  # 7 bytes: padding follows
            "q8": (quant_rows(16, 2, Q.Q8_0), Q.Q8_0),
            "q4k": (quant_rows(8, 1, Q.Q4_K), Q.Q4_K),
            "bf": (rng.integers(0, 65535, (4, 32), dtype=np.uint16), Q.BF16),
        },
        kvs={
            "general.name": "tiny",
            "tokenizer.ggml.model": "gpt2",
            "tokenizer.ggml.tokens": ["a", "bb", "ccc", "ünï"],
            "tokenizer.ggml.scores": [0.5, 0.25, 0.1, 0.0],
            "llama.context_length": 2048,
            "flag": True,
            "ratio": 0.5,
        },
    )
    rebuilt, m, _ = split_and_rebuild(p)
    assert rebuilt == p.read_bytes()
    names = [t.name for t in m.tensors]
    assert names == ["tok_embd.weight", "norm.weight", "odd", "q8", "q4k", "bf"]  # offset order
    odd = m.tensor("odd")
    assert odd is not None and odd.data is not None and len(odd.pad) == 32 - 7
    header = G.parse_header_bytes(m.header, m.size, "x")
    assert dict(header.metadata)["general.name"] == "tiny" and header.alignment == 32


@pytest.mark.parametrize("alignment", [1, 8, 64, 4096])
def test_custom_alignment(tmp_path: Path, alignment: int) -> None:
    p = write_gguf(
        tmp_path / "m.gguf",
        {"a": (np.arange(5, dtype=np.float32), None), "b": (np.arange(3, dtype=np.int16), None)},
        alignment=alignment,
    )
    rebuilt, m, _ = split_and_rebuild(p)
    assert rebuilt == p.read_bytes()
    assert G.parse_header_bytes(m.header, m.size, "x").alignment == alignment


def test_no_tensors(tmp_path: Path) -> None:
    p = write_gguf(tmp_path / "e.gguf", {}, kvs={"general.name": "empty"})
    rebuilt, m, _ = split_and_rebuild(p)
    assert rebuilt == p.read_bytes() and m.tensors == ()


def test_large_tensor_split_at_rows(tmp_path: Path) -> None:
    """A 6 MiB Q8_0 tensor: chunks ≤ 4 MiB, each a whole number of rows."""
    rows, blocks = 3000, 64  # row = 64 blocks * 34 bytes = 2176 bytes
    p = write_gguf(tmp_path / "q.gguf", {"w": (quant_rows(rows, blocks, Q.Q8_0), Q.Q8_0)})
    rebuilt, m, _ = split_and_rebuild(p)
    assert rebuilt == p.read_bytes()
    (t,) = m.tensors
    assert len(t.chunks) == 2
    assert all(c.size <= TENSOR_CHUNK_BYTES and c.size % (blocks * 34) == 0 for c in t.chunks)


def test_requantization_dedupes(repo: mvstore.Repo, work: Path) -> None:
    """Two variants sharing all but one tensor: the second commit stores only the changed tensor."""
    rng = np.random.default_rng(2)
    big = rng.standard_normal((1024, 1024), dtype=np.float32)  # 4 MiB: one chunk
    other = rng.standard_normal((512, 1024), dtype=np.float32)
    write_gguf(work / "m.gguf", {"a": (big, None), "b": (other, None)}, kvs={"general.file_type": 0})
    repo.commit("f32")
    write_gguf(
        work / "m.gguf",
        {"a": (big, None), "b": (other.astype(np.float16), None)},
        kvs={"general.file_type": 1},
    )
    res = run_mv("commit", "-m", "f16 b", "--json", cwd=work)
    stats = json.loads(res.stdout)
    assert stats["new_bytes"] < 2 * 1024 * 1024  # b in f16 (1 MiB) + manifest, not `a` again
    d = repo.diff("HEAD~1", "HEAD", stats=True)
    assert [f.path for f in d.files] == ["m.gguf"]
    (change,) = d.files[0].tensors  # `a` is the same chunk in both: only `b` is listed
    assert (change.name, change.status, change.dtype, change.old_dtype) == ("b", "retyped", "F16", "F32")
    assert change.shape == (1024, 512)  # dims as GGUF lists them, ne[0] first
    assert change.changed_bytes == change.nbytes == 512 * 1024 * 2
    cli = json.loads(run_mv("diff", "HEAD~1", "HEAD", "--json", cwd=work).stdout)
    assert "b" in json.dumps(cli) and '"retyped"' in json.dumps(cli)
    out = work.parent / "out"
    repo.export("HEAD~1", out)
    repo.checkout("HEAD~1")
    assert (out / "m.gguf").read_bytes() == (work / "m.gguf").read_bytes()


def test_cli_ls_and_checkout(repo: mvstore.Repo, work: Path) -> None:
    p = write_gguf(work / "model.gguf", {"w": (np.ones((8, 32), dtype=np.float32), None)})
    original = p.read_bytes()
    run_mv("commit", "-m", "gguf", cwd=work)
    assert "gguf" in run_mv("ls", cwd=work).stdout
    listed = run_mv("ls", "HEAD:model.gguf", cwd=work).stdout.split()
    assert (listed[0], listed[1], listed[-1]) == ("F32", "32x8", "w"), listed
    (t,) = json.loads(run_mv("ls", "HEAD:model.gguf", "--json", cwd=work).stdout)["tensors"]
    assert (t["name"], t["dtype"], t["shape"], t["nbytes"]) == ("w", "F32", [32, 8], 8 * 32 * 4)
    p.unlink()
    run_mv("checkout", "HEAD", "--force", cwd=work)
    assert p.read_bytes() == original
    run_mv("verify", "HEAD", "--unsigned", cwd=work)
    write_gguf(p, {"w": (np.full((8, 32), 2.0, dtype=np.float32), None)})
    (f,) = repo.diff().files  # the work folder against HEAD
    assert [(c.name, c.status) for c in f.tensors] == [("w", "changed")]
    repo.commit("twos")
    (f,) = repo.diff("HEAD~1", "HEAD", stats=True).files
    assert f.tensors[0].max_abs_diff == 1.0 and f.tensors[0].rel_change == pytest.approx(1.0)


_TYPES = [Q.F32, Q.F16, Q.Q8_0, Q.Q4_0, Q.Q6_K, Q.I32, Q.BF16]


@given(
    shapes=st.lists(
        st.tuples(st.sampled_from(_TYPES), st.integers(1, 6), st.integers(1, 3)), min_size=0, max_size=5
    ),
    alignment=st.sampled_from([None, 16, 64, 256]),
    n_tokens=st.integers(0, 20),
)
def test_property_roundtrip(tmp_path_factory: pytest.TempPathFactory, shapes, alignment, n_tokens) -> None:
    """Any file gguf-py writes (types, shapes, alignments, KV arrays) rebuilds byte for byte."""
    d = tmp_path_factory.mktemp("g")
    tensors: dict[str, tuple[np.ndarray, int | None]] = {}
    for i, (qtype, rows, blocks) in enumerate(shapes):
        name, block, size = G.GGML_TYPES[int(qtype)]
        if block == 1:
            dt = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "BF16": np.uint16}[name]
            arr = np.arange(rows * blocks * 3, dtype=dt).reshape(rows, blocks * 3)
            tensors[f"t{i}"] = (arr, int(qtype) if name == "BF16" else None)
        else:
            tensors[f"t{i}"] = (quant_rows(rows, blocks, int(qtype), seed=i), int(qtype))
    p = write_gguf(
        d / "p.gguf",
        tensors,
        kvs={"tokenizer.ggml.tokens": [f"t{j}" for j in range(n_tokens)] or ["x"]},
        alignment=alignment,
    )
    assert split_and_rebuild(p)[0] == p.read_bytes()


# --- malformed headers -----------------------------------------------------------------------------------


def _s(text: str | bytes) -> bytes:
    b = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(b)) + b


def kv_u32(key: str, v: int) -> bytes:
    return _s(key) + struct.pack("<II", 4, v)


def kv_str(key: str, v: str) -> bytes:
    return _s(key) + struct.pack("<I", 8) + _s(v)


def info(name: str, dims: tuple[int, ...], ggml_type: int, offset: int) -> bytes:
    return (
        _s(name)
        + struct.pack("<I", len(dims))
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<IQ", ggml_type, offset)
    )


def raw_gguf(
    kvs: list[bytes],
    infos: list[bytes],
    data: bytes,
    *,
    version: int = 3,
    magic: bytes = b"GGUF",
    n_tensors: int | None = None,
    n_kv: int | None = None,
    alignment: int = 32,
    tail: bytes = b"",
) -> bytes:
    head = magic + struct.pack(
        "<IQQ", version, len(infos) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv
    )
    body = head + b"".join(kvs) + b"".join(infos)
    body += b"\0" * (-len(body) % alignment)
    return body + data + tail


GOOD_INFOS = [info("a", (8,), 0, 0), info("b", (4,), 0, 32)]
GOOD_DATA = bytes(32) + bytes(16) + bytes(16)

BAD = {
    "magic": (raw_gguf([], GOOD_INFOS, GOOD_DATA, magic=b"GGUG"), "not a GGUF file"),
    "version 1": (raw_gguf([], GOOD_INFOS, GOOD_DATA, version=1), "unsupported GGUF version 1"),
    "version 4": (raw_gguf([], GOOD_INFOS, GOOD_DATA, version=4), "unsupported GGUF version 4"),
    "big-endian": (raw_gguf([], GOOD_INFOS, GOOD_DATA, version=3 << 24), "big-endian"),
    "tensor count": (raw_gguf([], GOOD_INFOS, GOOD_DATA, n_tensors=1 << 40), "tensor count"),
    "kv count": (raw_gguf([], GOOD_INFOS, GOOD_DATA, n_kv=1 << 40), "key/value count"),
    "key length": (raw_gguf([struct.pack("<Q", 1 << 50) + b"k"], [], b""), "length"),
    "string past end": (
        raw_gguf([_s("k") + struct.pack("<IQ", 8, 1 << 20) + b"abc"], [], b""),
        "out of range",
    ),
    "value type": (raw_gguf([_s("k") + struct.pack("<I", 99)], [], b""), "unknown value type 99"),
    "nested array": (raw_gguf([_s("k") + struct.pack("<IIQ", 9, 9, 1)], [], b""), "nested arrays"),
    "array past end": (
        raw_gguf([_s("k") + struct.pack("<IIQ", 9, 6, 1 << 40)], [], b""),
        "runs past the end",
    ),
    "duplicate key": (raw_gguf([kv_u32("k", 1), kv_u32("k", 2)], [], b""), "duplicate key"),
    "alignment not power of 2": (raw_gguf([kv_u32("general.alignment", 24)], [], b""), "power of two"),
    "alignment type": (raw_gguf([kv_str("general.alignment", "32")], [], b""), "uint32"),
    "bad utf-8 key": (raw_gguf([_s(b"\xff\xfe") + struct.pack("<II", 4, 1)], [], b""), "UTF-8"),
    "duplicate tensor": (
        raw_gguf([], [info("a", (8,), 0, 0), info("a", (8,), 0, 32)], GOOD_DATA),
        "duplicate tensor",
    ),
    "rank 5": (raw_gguf([], [info("a", (1, 1, 1, 1, 8), 0, 0)], bytes(32)), "5 dimensions"),
    "unknown ggml type": (raw_gguf([], [info("a", (8,), 77, 0)], bytes(32)), "unknown ggml type 77"),
    "block multiple": (raw_gguf([], [info("a", (33,), 8, 0)], bytes(64)), "block size 32"),
    "unaligned offset": (
        raw_gguf([], [info("a", (8,), 0, 0), info("b", (4,), 0, 40)], GOOD_DATA),
        "not a multiple",
    ),
    "overlap": (raw_gguf([], [info("a", (16,), 0, 0), info("b", (4,), 0, 32)], bytes(96)), "overlaps"),
    "gap": (raw_gguf([], [info("a", (8,), 0, 0), info("b", (4,), 0, 64)], bytes(96)), "gap of"),
    "data past end": (raw_gguf([], GOOD_INFOS, bytes(40)), "past the end of the file"),
    "trailing bytes": (raw_gguf([], GOOD_INFOS, GOOD_DATA, tail=bytes(64)), "trailing bytes"),
    "huge shape": (raw_gguf([], [info("a", (1 << 40, 1 << 40), 0, 0)], bytes(32)), "too large"),
    "truncated": (b"GGUF\x03\x00\x00\x00", "too short"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_header_refused(repo: mvstore.Repo, work: Path, case: str) -> None:
    data, needle = BAD[case]
    (work / "ok.txt").write_text("x")
    repo.commit("base")
    (work / "bad.gguf").write_bytes(data)
    before = RepoState.of(work)
    with pytest.raises(InvalidGGUF) as ei:
        repo.commit("bad")
    assert needle in str(ei.value) and "bad.gguf" in str(ei.value)
    assert isinstance(ei.value, ValueError) and "\n" not in str(ei.value)
    assert_unchanged(work, before)


def test_malformed_header_cli(repo: mvstore.Repo, work: Path) -> None:
    (work / "model.gguf").write_bytes(BAD["overlap"][0])
    before = RepoState.of(work)
    cp = run_mv("commit", "-m", "x", cwd=work, check=False)
    assert_one_line_error(cp, "model.gguf", "overlaps")
    assert_unchanged(work, before)
    cp = run_mv("validate", "--folder", cwd=work, check=False)
    assert cp.returncode == 4 and "model.gguf" in cp.stdout and "overlaps" in cp.stdout


def test_good_raw_file_is_accepted() -> None:
    """The hand-built baseline itself is valid: each BAD case differs from it in one way."""
    data = raw_gguf([], GOOD_INFOS, GOOD_DATA)
    h = G.parse_header(lambda off, n: data[off : off + n], len(data), "good")
    assert [t.name for t in h.tensors] == ["a", "b"] and h.pad_after(1) == 16


def test_manifest_must_match_its_header(tmp_path: Path) -> None:
    p = write_gguf(tmp_path / "m.gguf", {"a": (np.arange(8, dtype=np.float32), None)})
    _, m, _ = split_and_rebuild(p)
    good = codec._to_map(m)
    for mutate in (
        lambda d: d["tensors"][0].__setitem__("offset", 32),
        lambda d: d["tensors"][0].__setitem__("name", "b"),
        lambda d: d["tensors"][0].__setitem__("pad", b"\0"),
        lambda d: d["tensors"][0].__setitem__("extra", 1),
        lambda d: d.__setitem__("size", d["size"] + 1),
        lambda d: d.__setitem__("header", d["header"][:-1]),
    ):
        bad = codec._to_map(m)
        mutate(bad)
        with pytest.raises(InvalidObject):
            codec.decode_object(codec.pack(bad), "m")
    assert codec.decode_object(codec.pack(good), "m") == m
