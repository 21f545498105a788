"""Byte-for-byte round trips: whatever goes in comes back out, and only changes are re-stored."""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from pathlib import Path

import torch
from conftest import (
    RawTensor,
    assert_same_files,
    assert_same_tensor,
    files_of,
    object_files,
    rand_bytes,
    raw_safetensors,
    save_st,
    tmp_leftovers,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import mvstore
from mvstore.formats.chunking import INLINE_TENSOR_BYTES, TENSOR_CHUNK_BYTES
from mvstore.formats.safetensors import DTYPE_BITS
from mvstore.ops.tensors import manifest_of, tensor_bytes

# --- the property ------------------------------------------------------------------------------------

NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=10,
).filter(lambda s: s != "__metadata__")
# Names that look like paths or JSON trouble: tensor names are data, never paths.
TRICKY_NAMES = st.sampled_from(
    ["../../etc/passwd", "/abs", "a/b/c", ".mv/HEAD", "a\\b", "x\"y", "é.weight", "emb.weight", " ", "\u2028"]
)


@st.composite
def tensors(draw: st.DrawFn) -> RawTensor:
    name = draw(st.one_of(NAMES, TRICKY_NAMES))
    dtype = draw(st.sampled_from(sorted(DTYPE_BITS)))
    bits = DTYPE_BITS[dtype]
    unit = 8 // math.gcd(bits, 8)  # elements that make whole bytes: 2 for F4, 4 for F6, else 1
    big = draw(st.integers(0, 7)) == 0
    if big:  # above the inline threshold: stored as chunk objects
        rows = draw(st.integers(1, 40))
        cols = unit * math.ceil((INLINE_TENSOR_BYTES * 8 // bits + 1) / (rows * unit))
        shape: tuple[int, ...] = (rows, cols)
    else:
        rank = draw(st.integers(0 if unit == 1 else 1, 3))
        dims = [draw(st.integers(0, 4)) for _ in range(rank)]
        if rank:
            dims[-1] *= unit
        shape = tuple(dims)
    nbytes = bits * math.prod(shape) // 8
    if nbytes > 256:
        data = rand_bytes(nbytes, draw(st.integers(0, 2**32)))
    else:
        data = draw(st.binary(min_size=nbytes, max_size=nbytes))
    return RawTensor(name, dtype, shape, data)


@st.composite
def safetensors_files(draw: st.DrawFn) -> tuple[bytes, list[RawTensor], dict[str, str] | None, bytes]:
    ts = draw(st.lists(tensors(), max_size=6, unique_by=lambda t: t.name))
    n = len(ts)
    metadata = draw(
        st.none() | st.dictionaries(st.text(max_size=6), st.text(max_size=8), max_size=3)
    )
    kwargs = dict(
        metadata=metadata,
        header_order=draw(st.permutations(range(n))),
        data_order=draw(st.permutations(range(n))),
        metadata_pos=draw(st.integers(0, n)),
        separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (",\n  ", " : ")])),
        ensure_ascii=draw(st.booleans()),
        pad=draw(st.none() | st.integers(0, 17)),
        pad_char=draw(st.sampled_from([b" ", b" ", b"\n", b"\t", b"\r"])),
    )
    blob = raw_safetensors(ts, **kwargs)
    header_len = int.from_bytes(blob[:8], "little")
    return blob, ts, metadata, blob[8 : 8 + header_len]


@settings(max_examples=100)
@given(safetensors_files())
def test_any_valid_safetensors_round_trips(case: tuple[bytes, list[RawTensor], dict[str, str] | None, bytes]) -> None:
    blob, ts, metadata, header = case
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "m"
        root.mkdir()
        f = root / "w.safetensors"
        f.write_bytes(blob)
        repo = mvstore.Repo.init(root)
        cid = repo.commit("prop")

        out = Path(d) / "out"
        repo.export(cid, out)
        assert (out / "w.safetensors").read_bytes() == blob
        assert repo.read_file(cid, "w.safetensors") == blob

        f.unlink()
        repo.checkout(cid, force=True)
        assert f.read_bytes() == blob

        m = manifest_of(repo.repository, cid, "w.safetensors")
        assert m.header == header
        assert m.size == len(blob)
        assert dict(m.metadata) == (metadata or {})
        table = {t.name: t for t in m.tensors}
        assert sorted(table) == sorted(t.name for t in ts)
        data_start = 8 + len(header)
        for t in ts:
            e = table[t.name]
            assert (e.dtype, e.shape) == (t.dtype, t.shape)
            assert blob[data_start + e.begin : data_start + e.end] == t.data
            assert bytes(tensor_bytes(repo.repository, e)) == t.data
            if len(t.data) > INLINE_TENSOR_BYTES:
                assert e.data is None and e.chunks, "big tensors are chunk objects, not inline"
        assert tmp_leftovers(root) == []


def test_reference_writer_files_round_trip(work: Path, tmp_path: Path) -> None:
    """Files written by safetensors.torch for every dtype torch has, with metadata."""
    tensors = {
        "f32": torch.randn(7, 5),
        "f16": torch.randn(3, 3).half(),
        "bf16": torch.randn(33, 65).bfloat16(),
        "f64": torch.randn(2),
        "i64": torch.arange(5),
        "i32": torch.arange(6, dtype=torch.int32).reshape(2, 3),
        "i16": torch.arange(4, dtype=torch.int16),
        "i8": torch.arange(-3, 3, dtype=torch.int8),
        "u8": torch.arange(9, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "e4m3": torch.randn(4, 4).to(torch.float8_e4m3fn),
        "e5m2": torch.randn(4, 4).to(torch.float8_e5m2),
        "scalar": torch.tensor(3.5),
        "empty": torch.empty(0, 4),
        "big": torch.randn(64, 64),
    }
    save_st(work / "model.safetensors", tensors, metadata={"format": "pt", "note": "héllo"})
    repo = mvstore.Repo.init(work)
    cid = repo.commit("all dtypes")
    repo.export(cid, tmp_path / "out")
    assert_same_files(work, tmp_path / "out")
    loaded = repo.load_state_dict(cid)
    assert sorted(loaded) == sorted(tensors)
    for k, v in tensors.items():
        assert_same_tensor(loaded[k], v)


# --- folders -----------------------------------------------------------------------------------------


def _sharded(root: Path, seed: int, shards: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    everything: dict[str, torch.Tensor] = {}
    weight_map = {}
    for s in range(shards):
        part = {f"layer.{s}.{k}": torch.randn(40, 40, generator=g) for k in ("q", "k", "v")}
        part[f"layer.{s}.bias"] = torch.randn(40, generator=g)
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        save_st(root / name, part, metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
        everything.update(part)
    index = {"metadata": {"total_size": sum(t.numel() * 4 for t in everything.values())}, "weight_map": weight_map}
    (root / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
    (root / "config.json").write_text('{"model_type": "toy"}\n')
    return everything


def test_sharded_hf_folder(work: Path, tmp_path: Path) -> None:
    everything = _sharded(work, seed=1)
    repo = mvstore.Repo.init(work)
    c1 = repo.commit("sharded")
    snapshot1 = files_of(work)

    sd = repo.load_state_dict(c1)  # merges all shards through the index
    assert sorted(sd) == sorted(everything)
    for k, v in everything.items():
        assert torch.equal(sd[k], v)

    # Change one shard only: the diff names that file alone.
    from safetensors.torch import load_file

    shard2 = work / "model-00002-of-00003.safetensors"
    part = load_file(str(shard2))
    part["layer.1.q"] = part["layer.1.q"] + 1
    save_st(shard2, part, metadata={"format": "pt"})
    c2 = repo.commit("shard 2 changed")
    d = repo.diff(c1, c2)
    assert [f.path for f in d.files] == ["model-00002-of-00003.safetensors"]
    assert [t.name for t in d.files[0].tensors] == ["layer.1.q"]

    repo.export(c1, tmp_path / "v1")
    assert files_of(tmp_path / "v1") == snapshot1
    repo.export(c2, tmp_path / "v2")
    assert_same_files(work, tmp_path / "v2")


def test_large_tensor_split_and_partial_update(work: Path, tmp_path: Path) -> None:
    rows, cols = 3000, 1024  # 12 MB of F32: three row-aligned sub-chunks of at most 4 MiB
    g = torch.Generator().manual_seed(0)
    big = torch.randn(rows, cols, generator=g)
    small = torch.randn(10, generator=g)
    f = work / "model.safetensors"
    save_st(f, {"big": big, "small": small})
    repo = mvstore.Repo.init(work)
    c1 = repo.commit("one")
    m1 = manifest_of(repo.repository, c1, "model.safetensors").tensor("big")
    assert m1 is not None
    row_bytes = cols * 4
    assert len(m1.chunks) == math.ceil(rows * row_bytes / TENSOR_CHUNK_BYTES)
    assert all(c.size <= TENSOR_CHUNK_BYTES and c.size % row_bytes == 0 for c in m1.chunks)
    assert sum(c.size for c in m1.chunks) == rows * row_bytes
    v1 = f.read_bytes()

    rows_per_chunk = TENSOR_CHUNK_BYTES // row_bytes
    big2 = big.clone()
    big2[rows_per_chunk + 5 : rows_per_chunk + 9] += 1.0  # a few rows inside the second chunk
    save_st(f, {"big": big2, "small": small})
    before = object_files(work)
    c2 = repo.commit("two")
    new = object_files(work) - before
    m2 = manifest_of(repo.repository, c2, "model.safetensors").tensor("big")
    assert m2 is not None
    changed = [i for i, (a, b) in enumerate(zip(m1.chunks, m2.chunks, strict=True)) if a.id != b.id]
    assert changed == [1]
    # One data chunk, plus the manifest, tree and commit.
    assert len(new) == 4
    assert f"{m2.chunks[1].id.hex()[:2]}/{m2.chunks[1].id.hex()[2:]}" in new
    d = repo.diff(c1, c2)
    (tc,) = d.files[0].tensors
    assert tc.name == "big" and tc.changed_bytes == m2.chunks[1].size

    repo.export(c1, tmp_path / "a")
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == v1
    assert torch.equal(repo.tensor("big", c2), big2)
    assert torch.equal(repo.tensor("big", c1), big)


def test_vocabulary_growth_restores_only_the_tail(work: Path) -> None:
    hidden = 384
    g = torch.Generator().manual_seed(3)
    emb = torch.randn(6000, hidden, generator=g)  # 9.2 MB: 2 full 4 MiB chunks + a tail
    other = {"ln.weight": torch.ones(hidden), "dense.weight": torch.randn(hidden, hidden, generator=g)}
    f = work / "model.safetensors"
    save_st(f, {"emb.weight": emb, **other})
    repo = mvstore.Repo.init(work)
    c1 = repo.commit("base vocab")
    grown = torch.cat([emb, torch.randn(64, hidden, generator=g)])
    save_st(f, {"emb.weight": grown, **other})
    before = object_files(work)
    c2 = repo.commit("64 new tokens")
    new = object_files(work) - before
    a = manifest_of(repo.repository, c1, "model.safetensors").tensor("emb.weight")
    b = manifest_of(repo.repository, c2, "model.safetensors").tensor("emb.weight")
    assert a is not None and b is not None
    assert len(a.chunks) == len(b.chunks) == 3
    assert a.chunks[:-1] == b.chunks[:-1]
    assert a.chunks[-1] != b.chunks[-1]
    assert len(new) == 4  # tail chunk + manifest + tree + commit: dense.weight is not re-stored
    assert torch.equal(repo.tensor("emb.weight", c2), grown)


def test_blobs_cdc_exec_nested_and_ignore(work: Path, tmp_path: Path) -> None:
    (work / "config.json").write_text('{"a": 1}\n')  # inline
    (work / "tokenizer.json").write_bytes(rand_bytes(100_000, 1))  # one blob object
    (work / "pytorch_model.bin").write_bytes(rand_bytes(600_000, 2))  # .bin over 256 KiB: CDC
    big = bytearray(rand_bytes(12 * 1024 * 1024, 3))  # > 4 MiB opaque file: CDC
    (work / "data.raw").write_bytes(big)
    (work / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(work / "run.sh", 0o755)
    (work / "1_Pooling").mkdir()
    (work / "1_Pooling" / "config.json").write_text('{"pooling": "mean"}')
    (work / "a" / "b" / "c").mkdir(parents=True)
    (work / "a" / "b" / "c" / "deep.txt").write_text("deep\n")
    (work / "empty.txt").write_bytes(b"")
    (work / ".mvignore").write_text("*.log\ncache/\n!keep.log\n")
    (work / "train.log").write_text("noise\n")
    (work / "keep.log").write_text("kept\n")
    (work / "cache").mkdir()
    (work / "cache" / "x.bin").write_bytes(b"x" * 10)
    (work / "a" / "b" / "inner.log").write_text("ignored too\n")

    repo = mvstore.Repo.init(work)
    c1 = repo.commit("blobs")
    tree = repo.repository.tree(repo.repository.commit_object(mvstore.ObjectId.from_hex(c1)).tree).by_path()
    assert "train.log" not in tree and "cache/x.bin" not in tree and "a/b/inner.log" not in tree
    assert "keep.log" in tree
    assert tree["config.json"].kind == "inline"
    assert tree["tokenizer.json"].kind == "blob"
    assert tree["pytorch_model.bin"].kind == "chunked"
    assert tree["data.raw"].kind == "chunked"
    assert tree["run.sh"].executable and not tree["config.json"].executable
    blob = repo.repository.chunked(tree["data.raw"].id)
    assert len(blob.chunks) > 2

    out = tmp_path / "out"
    repo.export(c1, out)
    expected = {k: v for k, v in files_of(work).items() if k not in ("train.log", "cache/x.bin", "a/b/inner.log")}
    assert files_of(out) == expected
    assert os.stat(out / "run.sh").st_mode & stat.S_IXUSR
    assert not os.stat(out / "config.json").st_mode & stat.S_IXUSR

    # Insert a few bytes in the middle of the big file: CDC re-stores only the chunks around it.
    big[6_000_000:6_000_000] = b"inserted!"
    (work / "data.raw").write_bytes(big)
    before = object_files(work)
    objdir = work / ".mv" / "objects"
    c2 = repo.commit("edit in the middle")
    new = object_files(work) - before
    new_bytes = sum((objdir / p).stat().st_size for p in new)
    assert new_bytes < len(big) / 2, f"{new_bytes} bytes re-stored for a 9-byte insertion"
    repo.export(c2, tmp_path / "out2")
    assert (tmp_path / "out2" / "data.raw").read_bytes() == bytes(big)

    # Check out the first version in place: the big file comes back byte for byte, mode kept.
    repo.checkout(c1)
    assert files_of(work)["data.raw"] == expected["data.raw"]
    assert os.stat(work / "run.sh").st_mode & stat.S_IXUSR


def test_same_tensors_in_two_files_are_stored_once(work: Path) -> None:
    t = {"w": torch.randn(256, 256)}
    save_st(work / "a.safetensors", t)
    repo = mvstore.Repo.init(work)
    repo.commit("a")
    before = object_files(work)
    save_st(work / "sub" / "b.safetensors", t, metadata={"other": "header"})
    repo.commit("b")
    # Only b's manifest, a tree and a commit: the 256 KiB tensor chunk is shared.
    assert len(object_files(work) - before) == 3


def test_unicode_and_odd_file_names(work: Path, tmp_path: Path) -> None:
    names = ["é/ü.txt", "日本語.json", "with space.txt", "#hash", "-dash.txt", "a.safetensors.bak", "UPPER.SafeTensors"]
    for i, n in enumerate(names):
        p = work / n
        p.parent.mkdir(parents=True, exist_ok=True)
        if n.lower().endswith(".safetensors"):
            save_st(p, {"t": torch.arange(i + 1)})
        else:
            p.write_bytes(f"{n}\n".encode())
    repo = mvstore.Repo.init(work)
    cid = repo.commit("odd names")
    repo.export(cid, tmp_path / "out")
    assert_same_files(work, tmp_path / "out")
    assert repo.read_file(cid, "é/ü.txt") == "é/ü.txt\n".encode()


def test_checkout_swaps_files_and_folders(work: Path) -> None:
    """A path that is a file in one commit and a folder in the other, and folders that come and go."""
    repo = mvstore.Repo.init(work)
    (work / "x").write_text("x is a file\n")
    (work / "keep.txt").write_text("keep\n")
    v1 = files_of(work)
    c1 = repo.commit("x file")
    (work / "x").unlink()
    (work / "x").mkdir()
    (work / "x" / "y.txt").write_text("now a folder\n")
    (work / "new" / "deep").mkdir(parents=True)
    (work / "new" / "deep" / "f.txt").write_text("f\n")
    v2 = files_of(work)
    c2 = repo.commit("x folder")

    repo.checkout(c1)
    assert files_of(work) == v1
    assert not (work / "new").exists(), "folders emptied by a checkout are removed"
    repo.checkout(c2)
    assert files_of(work) == v2
    repo.checkout("main")
    assert files_of(work) == v2 and repo.status().clean
