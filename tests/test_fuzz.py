"""Fuzzing the parsers that read untrusted bytes: safetensors headers, GGUF headers, the object
decoder, stored-object envelopes (zstd, byte planes, deltas), revisions, ref names, remote object
names and tree paths.

Two fuzzers over the same targets (``fuzz/targets.py``): hypothesis here (mutations of valid
seeds, plus arbitrary bytes and text, deterministic in CI), and atheris/libFuzzer (coverage-guided,
``fuzz/run.py``), run for a bounded number of inputs below. The contract: only our error types
(``MvError``), no hang, bounded memory — including the classic traps (a header claiming 2^63
bytes, a JSON bomb, a zstd frame claiming a petabyte).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from campaign import LONG, figures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mvstore.errors import MvError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "fuzz"))
from seeds import seeds  # noqa: E402
from targets import TARGETS  # noqa: E402

pytestmark = pytest.mark.campaign
MEMORY_LIMIT = 64 << 20  # no input of ≤ 64 KiB may make a parser allocate more than this
FUZZ = settings(
    max_examples=1000 if LONG else 150,
    deadline=None,  # hangs are caught by the atheris runs' -timeout, not by flaky wall clocks
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def call_bounded(target: Callable[[bytes], None], data: bytes) -> None:
    """Run ``target``: our errors are fine, anything else fails; so does a big allocation."""
    tracemalloc.start()
    try:
        target(data)
    except MvError:
        pass
    finally:
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MEMORY_LIMIT, f"{target.__name__} allocated {peak >> 20} MiB for {len(data)} input bytes"


@st.composite
def mutated(draw: st.DrawFn, target: str) -> bytes:
    """A valid seed with a few byte-level mutations (flip, overwrite, insert, delete, truncate)."""
    data = bytearray(draw(st.sampled_from(seeds(target))))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "int"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(max_size=16))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[at:]
        elif op == "int" and len(data) >= at + 8:  # a length field set to something extreme
            value = draw(st.sampled_from([0, 1, 2**31, 2**32 - 1, 2**62, 2**63, 2**64 - 1]))
            data[at : at + 8] = struct.pack("<Q", value)
    return bytes(data)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_hypothesis_mutations(name: str) -> None:
    @FUZZ
    @given(data=st.one_of(mutated(name), st.binary(max_size=512)))
    def run(data: bytes) -> None:
        call_bounded(TARGETS[name], data)

    with figures(f"fuzz (hypothesis): {name}") as fig:
        run()
        fig.trials = FUZZ.max_examples


def test_classic_traps() -> None:
    """Inputs built to hurt: every one is refused quickly, in our error types, in little memory."""
    huge_len = struct.pack("<Q", 2**63) + b"{}"
    bomb = b"[" * 200_000 + b"]" * 200_000
    deep_json_header = struct.pack("<Q", len(bomb)) + bomb
    wide = (
        b"{"
        + b",".join(b'"t%d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}' % i for i in range(300_000))
        + b"}"
    )
    gguf_counts = struct.pack("<Q", 1 << 40) + b"GGUF" + struct.pack("<IQQ", 3, 2**63, 2**63)
    gguf_string = (
        struct.pack("<Q", 1 << 40) + b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**63) + b"k"
    )
    import zstandard

    frame = zstandard.ZstdCompressor().compress(b"\0" * 1000)
    forged = bytearray(frame)
    from mvstore.codec import KIND_DATA, envelope_header

    # a frame whose header claims (far) more content than the envelope's raw size allows
    big_claim = zstandard.ZstdCompressor(write_content_size=True).compress(b"\0" * (1 << 20))
    zstd_bomb = envelope_header(KIND_DATA, 1000, 1) + big_claim
    msgpack_bomb = b"\xdd\xff\xff\xff\xff"  # an array claiming 2^32 - 1 elements, none present
    msgpack_map_bomb = b"\xdf\xff\xff\xff\xff"
    cases = [
        ("safetensors_file", huge_len),
        ("safetensors_file", deep_json_header),
        ("safetensors_header", struct.pack("<Q", 1 << 40) + bomb),
        ("safetensors_header", struct.pack("<Q", 1 << 40) + wide),
        ("gguf_header", gguf_counts),
        ("gguf_header", gguf_string),
        ("envelope", zstd_bomb),
        ("envelope", envelope_header(KIND_DATA, 2**63, 1) + bytes(forged)),
        ("object_decoder", msgpack_bomb),
        ("object_decoder", msgpack_map_bomb),
        ("object_decoder", b"\x91" * 100_000 + b"\xc0"),  # 100k nested arrays
    ]
    for name, data in cases:
        call_bounded(TARGETS[name], data)


# -- revisions, ref names, paths ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mvstore

    work = tmp_path_factory.mktemp("fuzzrepo")
    (work / "a.txt").write_text("a")
    os.environ.setdefault("MV_AUTHOR", "Fuzz <f@example.com>")
    repo = mvstore.Repo.init(work)
    repo.commit("one")
    (work / "a.txt").write_text("b")
    repo.commit("two")
    repo.tag("v1.0.0")
    return work


rev_text = st.one_of(
    st.text(max_size=80),
    st.from_regex(
        r"(HEAD|main|v1\.0\.0|[0-9a-f]{4,64}|@)?([~^][0-9]{0,3}){0,4}(:[a-z./]{0,12})?", fullmatch=True
    ),
)


@FUZZ
@given(text=rev_text)
def test_revision_parsing(small_repo: Path, text: str) -> None:
    from mvstore.repo import Repository
    from mvstore.revparse import resolve_commit, split_path

    repo = Repository.find(small_repo)
    try:
        rev, _path = split_path(text)
        resolve_commit(repo, rev)
    except MvError:
        pass


@FUZZ
@given(name=st.one_of(st.text(max_size=64), st.from_regex(r"[a-z./\-_@{}~^:*?\[\\ ]{1,24}", fullmatch=True)))
def test_names_never_escape(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    """A ref name, a remote object name or a tree path that is accepted stays inside its folder."""
    from mvstore.paths import check_tree_path
    from mvstore.refs import check_ref_name
    from mvstore.remote.backend import check_name

    base = Path("/nonexistent/base")
    for check, prefix in ((check_ref_name, "refs/heads"), (check_name, ""), (check_tree_path, "")):
        try:
            accepted = check(name)
        except MvError:
            continue
        except UnicodeEncodeError:
            continue
        full = os.path.normpath(os.path.join(str(base), prefix, accepted))
        assert full.startswith(str(base) + os.sep), f"{check.__name__} accepted {name!r}, which escapes"
        assert "\x00" not in accepted


# -- atheris (libFuzzer, coverage-guided) -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_atheris(name: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, s in enumerate(seeds(name)):
        (corpus / f"seed{i}").write_bytes(s)
    budget = ["-max_total_time=45"] if LONG else ["-runs=100000"]
    cmd = [
        sys.executable,
        str(ROOT / "fuzz" / "run.py"),
        name,
        *budget,
        "-timeout=10",  # a hang: one input taking > 10 s
        "-rss_limit_mb=2048",
        "-malloc_limit_mb=512",  # an allocation bomb
        "-seed=1",  # deterministic in CI
        f"-artifact_prefix={tmp_path}/",
        str(corpus),
    ]
    with figures(f"fuzz (atheris): {name}") as fig:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
        done = [line for line in cp.stderr.splitlines() if "DONE" in line]
        fig.trials = int(done[-1].split()[0].lstrip("#")) if done else 0
        crashes = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-"))]
        fig.failures = len(crashes)
        assert cp.returncode == 0 and not crashes, f"atheris found {crashes}:\n{cp.stderr[-3000:]}"
    shutil.rmtree(corpus)
