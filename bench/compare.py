"""mvstore against the tools users pick instead (issue 4): DVC, git-lfs, `cp -r`, chunk-level dedup.

    python -m bench.compare [--quick] [--runs 3] [--gpt-gb 2] [--data DIR] [--out bench/RESULTS.md]

Data (made by :mod:`bench.data`, deterministic, cached under ``bench/out/data``): the real MiniLM
fine-tuning series (full, frozen, lora, bf16, vocab; 5 checkpoints each) and a synthetic GPT-2-style
model (``--gpt-gb`` GiB, HF sharded layout) plus a second version in which 3 weight matrices change.

For every series, checkpoint by checkpoint (every file rewritten, as a training loop does):

* **stored bytes** after each checkpoint: mvstore (plain commits; and committed + ``mv repack`` after
  each checkpoint), DVC (git + DVC, ``dvc add`` per checkpoint, cache size; then ``dvc push`` to a
  default remote on another filesystem), git-lfs (``git add`` + ``git commit`` with
  ``*.safetensors`` tracked; ``.git`` size; then ``git push`` to a bare remote on another
  filesystem), ``cp -r`` (a folder of copies) and a content-defined-chunking estimate (FastCDC,
  64 KiB average, Xet's 8–128 KiB bounds, blake3 dedup of chunks; no compression) of what chunk-level
  dedup would store;
* **commit** time: ``mv commit`` vs ``dvc add`` of the same rewritten folder (every checkpoint after
  the first is one sample; the GPT model is committed a, b, a, b);
* on the full fine-tune series and the GPT model, also: no-op ``mv status`` vs ``dvc status``,
  ``mv export`` / ``mv checkout`` vs ``cp -r``, ``Repo.load_state_dict`` (raw store and after repack)
  vs ``safetensors.torch.load_file``, ``mv push`` (compressed and ``--no-compress``) vs
  ``dvc push --all-commits``, ``mv clone --rev main`` vs ``git clone`` + ``dvc pull``, all to and
  from a local-folder remote on another filesystem (``/dev/shm`` here), and the peak RSS of each.

``--quick``: tiny data, 1 run, no DVC or git-lfs (nothing is installed): a smoke test of the harness.
The stored-bytes curves go to ``bench/out/stored_bytes.json`` for :mod:`bench.chart`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import (
    DEFAULT_RESULTS,
    DEFAULT_WORKDIR,
    GIB,
    MIB,
    REPO_ROOT,
    BenchError,
    Row,
    Timing,
    _fs_of,
    fmt_bytes,
    install_mv,
    machine_line,
    md_simple_table,
    md_table,
    mirror,
    model_files,
    mv_cmd,
    peak_rss,
    read_all,
    rmtree,
    run,
    settle,
    skipped_row,
    speed_row,
    sync,
    tree_bytes,
    use_mv,
    venv_bin,
    write_section,
)

HEADING = "## Against the alternatives (issue 4)"
STORED_JSON = DEFAULT_WORKDIR / "stored_bytes.json"
KINDS = ("full", "frozen", "lora", "bf16", "vocab")
KIND_LABELS = {
    "full": "MiniLM full fine-tune (fp32)",
    "frozen": "MiniLM frozen base, top layer trained (fp32)",
    "lora": "MiniLM LoRA adapter over a fixed base",
    "bf16": "MiniLM full fine-tune (bf16)",
    "vocab": "MiniLM vocabulary growth",
}
TOOLS = ("mvstore", "mvstore + repack", "DVC", "git-lfs", "cp -r", "CDC 64 KiB (est.)")


# =========================================================================== shared helpers
# (bench/remote.py imports these too)


@dataclass
class Section:
    """Rows grouped under ### headings, plus free-form tables and notes, rendered as markdown."""

    groups: dict[str, list[Row]] = field(default_factory=dict)
    intros: dict[str, str] = field(default_factory=dict)
    extra: dict[str, list[str]] = field(default_factory=dict)  # group -> markdown blocks after its rows
    notes: list[str] = field(default_factory=list)

    def add(self, group: str, row: Row) -> Row:
        row.echo()
        self.groups.setdefault(group, []).append(row)
        return row

    def block(self, group: str, text: str) -> None:
        print(text, flush=True)
        self.groups.setdefault(group, [])
        self.extra.setdefault(group, []).append(text)

    def note(self, text: str) -> None:
        print(f"  note: {text}", flush=True)
        self.notes.append(text)

    def render(self, head: list[str]) -> str:
        parts = list(head)
        for group, rows in self.groups.items():
            parts += ["", f"### {group}"]
            if self.intros.get(group):
                parts += ["", self.intros[group]]
            if rows:
                parts += ["", md_table(rows).rstrip("\n")]
            for blk in self.extra.get(group, []):
                parts += ["", blk.rstrip("\n")]
        if self.notes:
            parts += ["", "### Notes", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(parts) + "\n"

    def tally(self) -> tuple[int, int]:
        rows = [r for rs in self.groups.values() for r in rs]
        return sum(r.met is True for r in rows), sum(r.met is not None for r in rows)


@dataclass
class Data:
    series: dict[str, list[Path]]
    gpt: list[Path]  # [version a, version b]
    gpt_changed: list[str]
    root: Path


def _stamp(params: dict[str, object]) -> str:
    src = (REPO_ROOT / "bench" / "data.py").read_bytes()
    return json.dumps({**params, "data.py": hashlib.sha256(src).hexdigest()}, sort_keys=True)


def _cached(folder: Path, params: dict[str, object], make: Callable[[Path], None]) -> Path:
    """``folder`` made by ``make`` unless a stamp says it was made with the same parameters and data.py.

    Everything is deterministic by seed, so a cached copy holds the same bytes a fresh run would make."""
    stamp_path = folder.parent / f"{folder.name}.stamp"
    stamp = _stamp(params)
    if not (folder.exists() and stamp_path.exists() and stamp_path.read_text() == stamp):
        t0 = time.perf_counter()
        rmtree(folder)
        stamp_path.unlink(missing_ok=True)
        folder.mkdir(parents=True)
        make(folder)
        stamp_path.write_text(stamp)
        print(f"data: made {folder} ({time.perf_counter() - t0:.1f}s)", flush=True)
    return folder


def ensure_series(root: Path, kind: str, n: int) -> list[Path]:
    from .data import make_series

    def make(f: Path) -> None:
        make_series(kind, f, n=n)

    folder = _cached(root.resolve() / "series" / f"{kind}-{n}", {"kind": kind, "n": n}, make)
    return sorted(folder.glob("ckpt-*"))


def ensure_gpt(root: Path, nbytes: int, mutated: bool = True) -> tuple[list[Path], list[str]]:
    """A synthetic GPT of ``nbytes`` (folder ``a``) and, with ``mutated``, its version ``b``."""
    from .data import make_synthetic_gpt, mutate_synthetic_gpt

    def make(f: Path) -> None:
        make_synthetic_gpt(f / "a", total_bytes=nbytes, seed=0)
        if mutated:
            changed = mutate_synthetic_gpt(f / "a", f / "b", n_tensors=3, seed=1)
            (f / "changed.json").write_text(json.dumps(changed))

    name = f"gpt-{nbytes}" if mutated else f"gpt-{nbytes}-single"
    folder = _cached(root.resolve() / name, {"bytes": nbytes, "mutated": mutated}, make)
    if not mutated:
        return [folder / "a"], []
    return [folder / "a", folder / "b"], json.loads((folder / "changed.json").read_text())


def ensure_data(root: Path, series_n: int, gpt_bytes: int, kinds: tuple[str, ...] = KINDS) -> Data:
    series = {k: ensure_series(root, k, series_n) for k in kinds}
    gpt, changed = ensure_gpt(root, gpt_bytes)
    return Data(series, gpt, changed, root)


def default_data_dir() -> Path:
    return DEFAULT_WORKDIR / "data"


@contextlib.contextmanager
def other_fs_dir(work: Path, prefix: str) -> Iterator[tuple[Path, str]]:
    """A scratch folder on another filesystem than ``work`` (``/dev/shm`` when it is one), removed after.

    Yields (path, description). Falls back to a folder under ``work`` (same filesystem) and says so."""
    work_dev = os.stat(work).st_dev
    for cand in (Path("/dev/shm"), Path("/run/user") / str(os.getuid())):
        try:
            if cand.is_dir() and os.access(cand, os.W_OK) and os.stat(cand).st_dev != work_dev:
                path = Path(tempfile.mkdtemp(prefix=prefix, dir=cand))
                mnt, fstype = _fs_of(path)
                try:
                    yield path, f"{mnt} ({fstype}; the repositories are on {_fs_of(work)[1]} {_fs_of(work)[0]})"
                finally:
                    shutil.rmtree(path, ignore_errors=True)
                return
        except OSError:
            continue
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=work))
    try:
        yield path, f"{path} (SAME filesystem as the repositories: no other writable filesystem found)"
    finally:
        shutil.rmtree(path, ignore_errors=True)


def dir_bytes(root: Path) -> int:
    """Apparent size of every regular file under ``root`` (hard links counted once, symlinks not followed)."""
    total, seen = 0, set()
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except FileNotFoundError:
                continue
            if not os.path.isfile(os.path.join(dirpath, f)) or os.path.islink(os.path.join(dirpath, f)):
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def timed(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one run of a command, in a fresh wrapper process."""
    rss, secs = peak_rss(argv, cwd, env)
    return secs, rss


@dataclass
class Measured:
    """Timing samples of a command plus the largest peak RSS seen."""

    t: Timing = field(default_factory=Timing)
    rss: int = 0

    def add(self, secs: float, rss: int = 0) -> None:
        self.t.add(secs)
        self.rss = max(self.rss, rss)

    def run(self, argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.add(*timed(argv, cwd, env))


def ratio_row(figure: str, ours: float, base: float, target: float | None, ours_s: str, base_s: str) -> Row:
    """Size-style figure: ratio = ours / baseline (lower is better); ``target`` is a ceiling."""
    ratio = ours / base if base else float("inf")
    met = None if target is None else ratio <= target
    return Row(figure, ours_s, base_s, f"{ratio:.3f}×", "—" if target is None else f"≤ {target:g}×", met)


def factor_row(figure: str, ours: float, base: float, target: float | None, ours_s: str, base_s: str) -> Row:
    """'N× smaller' figure: ratio = baseline / ours (higher is better); ``target`` is a floor."""
    ratio = base / ours if ours else float("inf")
    met = None if target is None else ratio >= target
    return Row(figure, ours_s, base_s, f"{ratio:.2f}×", "—" if target is None else f"≥ {target:g}×", met)


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DVC_NO_ANALYTICS"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    for k, v in (("GIT_AUTHOR_NAME", "bench"), ("GIT_AUTHOR_EMAIL", "bench@localhost")):
        env.setdefault(k, v)
        env.setdefault(k.replace("AUTHOR", "COMMITTER"), v)
    return env


def ensure_dvc(install: bool) -> tuple[Path | None, str]:
    """DVC in its own venv (bench/out/dvc-venv; pip-installed on first use when ``install``).

    Analytics and update checks are turned off before DVC runs anything (nothing leaves the machine)."""
    venv = DEFAULT_WORKDIR / "dvc-venv"
    dvc = venv / "bin" / "dvc"
    env = git_env()
    try:
        if not dvc.exists():
            if not install:
                return None, "DVC not installed"
            print("installing DVC into bench/out/dvc-venv (first run only)...", flush=True)
            run([sys.executable, "-m", "venv", venv])
            run([venv / "bin" / "pip", "install", "-q", "dvc"], env=env)
        run([dvc, "config", "--global", "core.analytics", "false"], env=env)
        run([dvc, "config", "--global", "core.check_update", "false"], env=env)
        version = run([dvc, "--version"], env=env).stdout.strip()
    except (BenchError, OSError) as e:
        return None, str(e).splitlines()[0][:200]
    return dvc, f"DVC {version}"


def ensure_git_lfs(install: bool) -> tuple[bool, str]:
    """git-lfs from the Debian package (apt-get install on first use when ``install`` and root)."""
    def version() -> str | None:
        try:
            proc = run(["git", "lfs", "version"], check=False)
        except OSError:
            return None
        return proc.stdout.strip().split(" ")[0] if proc.returncode == 0 else None

    v = version()
    if v is None and install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing git-lfs (apt-get)...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if run(["apt-get", "install", "-y", "-q", "git-lfs"], env=env, check=False).returncode != 0:
            run(["apt-get", "update", "-q"], env=env, check=False)
            run(["apt-get", "install", "-y", "-q", "git-lfs"], env=env, check=False)
        v = version()
    return (v is not None), (v or "git-lfs not installed")


# =========================================================================== the comparison


@dataclass
class Cfg:
    runs: int
    quick: bool
    dvc: Path | None
    dvc_version: str
    lfs: bool
    lfs_version: str
    work: Path
    remote_root: Path  # on another filesystem
    real_wait: bool


@dataclass
class Dataset:
    key: str
    label: str
    dirs: list[Path]  # checkpoints, in order (stored bytes after each)
    commit_seq: list[Path]  # what is committed, in order (dirs, or a, b, a, b for the GPT pair)
    deep: bool  # also status / export / checkout / load / push / pull


@dataclass
class Outcome:
    """Everything measured on one dataset (for the tables, the goals and the chart)."""

    ds: Dataset
    stored: dict[str, list[int]] = field(default_factory=dict)  # tool -> bytes after each checkpoint
    logical: list[int] = field(default_factory=list)  # cumulative bytes of the checkpoints
    remote: dict[str, int] = field(default_factory=dict)  # tool -> bytes on its remote after a push
    commit: dict[str, Measured] = field(default_factory=dict)  # "mv" / "dvc" / "lfs": incremental commits
    first: dict[str, Measured] = field(default_factory=dict)  # the first checkpoint (all new)
    repack: Measured = field(default_factory=Measured)
    m: dict[str, Measured] = field(default_factory=dict)  # everything else by name
    breakdown: list[list[str]] = field(default_factory=list)  # step costs (bench_breakdown)


def _cdc_curve(dirs: list[Path]) -> list[int]:
    """Unique bytes after each checkpoint if every file were cut by FastCDC (avg 64 KiB) and chunks
    deduplicated by hash — Xet-style chunk dedup, without its compression."""
    import blake3
    from pyfastcdc import FastCDC

    cdc = FastCDC(64 * 1024, min_size=8 * 1024, max_size=128 * 1024)
    seen: set[bytes] = set()
    total, out = 0, []
    for d in dirs:
        for p in model_files(d):
            if p.stat().st_size == 0:
                continue
            for c in cdc.cut_file(str(p)):
                h = blake3.blake3(c.data).digest()
                if h not in seen:
                    seen.add(h)
                    total += c.length
        out.append(total)
    return out


def _warm_status(repo: Path, cfg: Cfg) -> None:
    settle(repo, cfg.real_wait)
    run(mv_cmd("status"), repo)


def _prep_commit_sample(folder: Path) -> None:
    """Before a timed commit: the (just rewritten) files are warm and written back, as in core."""
    read_all(model_files(folder))
    sync()


def bench_mv(cfg: Cfg, ds: Dataset, out: Outcome) -> tuple[Path, Path]:
    """Plain repository P (CLI commits, timed) and repacked repository R (commit + repack after each)."""
    from mvstore import Repo

    p = cfg.work / f"mv-{ds.key}"
    rmtree(p)
    p.mkdir(parents=True)
    run(mv_cmd("init"), p)
    out.commit["mv"], out.first["mv"] = Measured(), Measured()
    out.stored["mvstore"] = []
    for i, d in enumerate(ds.commit_seq):
        mirror(d, p)
        _prep_commit_sample(p)
        (out.first if i == 0 else out.commit)["mv"].run(mv_cmd("commit", "-m", f"checkpoint {i}"), p)
        if i < len(ds.dirs):
            run(mv_cmd("tag", f"ck{i}"), p)
            out.stored["mvstore"].append(Repo(p).stats().stored_bytes)

    r = cfg.work / f"mvr-{ds.key}"
    rmtree(r)
    r.mkdir(parents=True)
    repo = Repo.init(r)
    out.stored["mvstore + repack"] = []
    for i, d in enumerate(ds.dirs):
        mirror(d, r)
        repo.commit(f"checkpoint {i}")
        repo.tag(f"ck{i}")
        sync()
        out.repack.run(mv_cmd("repack"), r)
        out.stored["mvstore + repack"].append(repo.stats().stored_bytes)
    return p, r


def bench_dvc(cfg: Cfg, ds: Dataset, out: Outcome, dvc: Path) -> Path:
    env = git_env()
    d = cfg.work / f"dvc-{ds.key}"
    remote = cfg.remote_root / f"dvc-{ds.key}"
    rmtree(d)
    rmtree(remote)
    d.mkdir(parents=True)
    run(["git", "init", "-q"], d, env)
    run([dvc, "init", "-q"], d, env)
    run([dvc, "remote", "add", "-q", "-d", "local", remote], d, env)
    run(["git", "add", "-A"], d, env)
    run(["git", "commit", "-q", "-m", "dvc init"], d, env)
    out.commit["dvc"], out.first["dvc"] = Measured(), Measured()
    out.stored["DVC"] = []
    for i, src in enumerate(ds.commit_seq):
        mirror(src, d / "model")
        _prep_commit_sample(d / "model")
        (out.first if i == 0 else out.commit)["dvc"].run([str(dvc), "add", "-q", "model"], d, env)
        run(["git", "add", "model.dvc", ".gitignore"], d, env)
        run(["git", "commit", "-q", "-m", f"checkpoint {i}"], d, env)
        if i < len(ds.dirs):
            out.stored["DVC"].append(dir_bytes(d / ".dvc" / "cache"))
    push = out.m.setdefault("dvc push (series)", Measured())
    push.run([str(dvc), "push", "-q", "--all-commits"], d, env)
    out.remote["DVC"] = dir_bytes(remote)
    return d


def bench_lfs(cfg: Cfg, ds: Dataset, out: Outcome) -> None:
    env = git_env()
    g = cfg.work / f"lfs-{ds.key}"
    remote = cfg.remote_root / f"lfs-{ds.key}.git"
    rmtree(g)
    rmtree(remote)
    g.mkdir(parents=True)
    run(["git", "init", "-q"], g, env)
    run(["git", "lfs", "install", "--local"], g, env)
    run(["git", "lfs", "track", "*.safetensors"], g, env)
    run(["git", "add", ".gitattributes"], g, env)
    run(["git", "commit", "-q", "-m", "lfs"], g, env)
    run(["git", "init", "-q", "--bare", remote], env=env)
    run(["git", "remote", "add", "origin", remote], g, env)
    out.commit["lfs"], out.first["lfs"] = Measured(), Measured()
    out.stored["git-lfs"] = []
    for i, src in enumerate(ds.dirs):
        mirror(src, g / "model")
        _prep_commit_sample(g / "model")
        (out.first if i == 0 else out.commit)["lfs"].run(
            ["sh", "-c", f"git add -A && git commit -q -m 'checkpoint {i}'"], g, env
        )
        out.stored["git-lfs"].append(dir_bytes(g / ".git"))
    out.m.setdefault("git push (series)", Measured()).run(["git", "push", "-q", "origin", "HEAD:main"], g, env)
    out.remote["git-lfs"] = dir_bytes(remote)
    rmtree(g)
    rmtree(remote)


def bench_status(cfg: Cfg, ds: Dataset, out: Outcome, p: Path, d: Path | None) -> None:
    _warm_status(p, cfg)
    ours = out.m.setdefault("mv status", Measured())
    for _ in range(max(cfg.runs, 3)):
        ours.run(mv_cmd("status"), p)
    if d is not None and cfg.dvc is not None:
        env = git_env()
        run([cfg.dvc, "status", "-q"], d, env)
        theirs = out.m.setdefault("dvc status", Measured())
        for _ in range(max(cfg.runs, 3)):
            theirs.run([str(cfg.dvc), "status", "-q"], d, env)


def _cp_r(src: Path, dst: Path) -> list[str]:
    return ["cp", "-r", str(src), str(dst)]


def bench_materialize(cfg: Cfg, ds: Dataset, out: Outcome, p: Path, r: Path) -> None:
    """export (raw store, newest; repacked store, oldest = deepest delta chain) and checkout vs cp -r."""
    dst = cfg.work / "out-dst"
    newest, oldest = ds.dirs[-1], ds.dirs[0]
    cp_new, cp_old = out.m.setdefault("cp -r newest", Measured()), out.m.setdefault("cp -r oldest", Measured())
    exp_raw = out.m.setdefault("mv export newest (raw store)", Measured())
    exp_rp = out.m.setdefault("mv export oldest (repacked store)", Measured())
    last = f"ck{len(ds.dirs) - 1}"

    def fresh() -> None:
        rmtree(dst)
        sync()

    for i in range(cfg.runs):
        order: list[Callable[[], None]] = [
            lambda: (fresh(), read_all(model_files(newest)), cp_new.run(_cp_r(newest, dst))),
            lambda: (fresh(), read_all(model_files(oldest)), cp_old.run(_cp_r(oldest, dst))),
            lambda: (fresh(), exp_raw.run(mv_cmd("export", last, dst), p)),
            lambda: (fresh(), exp_rp.run(mv_cmd("export", "ck0", dst), r)),
        ]
        for fn in order if i % 2 == 0 else order[::-1]:
            fn()
    fresh()
    # checkout in the plain repository: newest -> oldest and back (only changed files are written)
    co = out.m.setdefault("mv checkout", Measured())
    cp_co = out.m.setdefault("cp -r (checkout baseline)", Measured())
    run(mv_cmd("switch", "main"), p, check=False)
    for i in range(cfg.runs):
        target, src = ("ck0", oldest) if i % 2 == 0 else ("main", newest)
        _warm_status(p, cfg)
        fresh()
        read_all(model_files(src))
        cp_co.run(_cp_r(src, dst))
        fresh()
        co.run(mv_cmd("checkout", target), p)
    if cfg.runs % 2 == 1:
        run(mv_cmd("checkout", "main"), p)
    fresh()


_LOAD_SCRIPT = r"""
import json, resource, struct, sys, time
spec = json.loads(sys.argv[1])
import torch
torch.set_num_threads(1)  # a copy is memory-bound; OpenMP spin-waits add noise on a busy 2-core box
from safetensors.torch import load_file
from mvstore import Repo
import mvstore.ops.tensors  # imports are not part of the figure
DT = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
      "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
      "BOOL": torch.bool}
params = {}
for f in spec["files"]:
    with open(f, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    header.pop("__metadata__", None)
    for k, v in header.items():
        params[k] = torch.zeros(v["shape"], dtype=DT[v["dtype"]])
def hwm():  # peak RSS of this process since the last reset (Linux VmHWM), else ru_maxrss
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
try:  # reset the high-water mark: the figure is the load's peak (with the parameters it fills)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
t0 = time.perf_counter()
if spec["mode"] == "mv":
    sd = Repo(spec["repo"]).load_state_dict(spec["rev"])
else:
    sd = {}
    for f in spec["files"]:
        sd.update(load_file(f))
for k, t in sd.items():
    params[k].copy_(t)
secs = time.perf_counter() - t0
assert set(sd) == set(params), "loaded tensors differ from the file's"
print(json.dumps({"seconds": secs, "rss": hwm()}))
"""


def bench_load(cfg: Cfg, ds: Dataset, out: Outcome, p: Path, r: Path) -> None:
    """Load a checkpoint and copy every tensor into preallocated parameters (model.load_state_dict)."""
    oldest = ds.dirs[0]
    files = [str(f) for f in sorted(oldest.glob("*.safetensors"))]
    specs = {
        "load_file": {"mode": "file", "files": files},
        "mv load (raw store)": {"mode": "mv", "repo": str(p), "rev": "ck0", "files": files},
        "mv load (repacked, oldest)": {"mode": "mv", "repo": str(r), "rev": "ck0", "files": files},
        "mv load (repacked, newest)": {
            "mode": "mv", "repo": str(r), "rev": f"ck{len(ds.dirs) - 1}", "files": files,
        },
    }

    def once(name: str) -> None:
        proc = run([sys.executable, "-c", _LOAD_SCRIPT, json.dumps(specs[name])])
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
        out.m.setdefault(name, Measured()).add(float(doc["seconds"]), int(doc["rss"]))

    if not cfg.quick:  # warm the page cache for every side
        read_all(model_files(oldest))
        read_all(q for q in (p / ".mv" / "objects").rglob("*") if q.is_file())
        read_all(q for q in (r / ".mv" / "objects").rglob("*") if q.is_file())
    names = list(specs)
    for i in range(cfg.runs):
        for name in names if i % 2 == 0 else names[::-1]:
            once(name)


def bench_push_pull(cfg: Cfg, ds: Dataset, out: Outcome, p: Path, d: Path | None) -> None:
    env = git_env()
    mv_push = out.m.setdefault("mv push", Measured())
    mv_raw = out.m.setdefault("mv push --no-compress", Measured())
    mv_clone = out.m.setdefault("mv clone --rev main", Measured())
    dvc_push = out.m.setdefault("dvc push --all-commits", Measured())
    dvc_pull = out.m.setdefault("git clone + dvc pull", Measured())
    rem = cfg.remote_root
    dst = cfg.work / "pull-dst"
    run(mv_cmd("switch", "main"), p, check=False)
    for i in range(cfg.runs):
        url, url_raw = rem / f"mv-{ds.key}-{i}", rem / f"mvraw-{ds.key}-{i}"

        def ours(url: Path = url, url_raw: Path = url_raw) -> None:
            sync()
            mv_push.run(mv_cmd("push", "-q", url, "main"), p)
            sync()
            mv_raw.run(mv_cmd("push", "-q", "--no-compress", url_raw, "main"), p)
            rmtree(url_raw)
            rmtree(dst)
            sync()
            mv_clone.run(mv_cmd("clone", "-q", url, dst, "--rev", "main"))
            rmtree(dst)
            rmtree(url)

        def theirs() -> None:
            if d is None or cfg.dvc is None:
                return
            remote = rem / f"dvc-{ds.key}"
            rmtree(remote)
            sync()
            dvc_push.run([str(cfg.dvc), "push", "-q", "--all-commits"], d, env)
            rmtree(dst)
            sync()
            dvc_pull.run(
                ["sh", "-c", 'git clone -q "$1" "$2" && cd "$2" && "$3" pull -q', "sh", str(d), str(dst),
                 str(cfg.dvc)],
                None,
                env,
            )
            rmtree(dst)

        for fn in (ours, theirs) if i % 2 == 0 else (theirs, ours):
            fn()
    sync()


def _chunks(repo: Any, rev: str) -> list[tuple[Any, int]]:
    """(chunk id, byte-plane width) of every tensor chunk of a revision."""
    from mvstore.formats.safetensors import DTYPE_BITS
    from mvstore.revparse import resolve_commit

    out = []
    tree = repo.tree(repo.commit_object(resolve_commit(repo, rev)).tree)
    for e in tree.entries:
        if e.kind == "safetensors" and e.id is not None:
            for t in repo.manifest(e.id).tensors:
                out.extend((c.id, max(1, DTYPE_BITS[t.dtype] // 8)) for c in t.chunks)
    return out


def bench_breakdown(cfg: Cfg, ds: Dataset, out: Outcome, p: Path, r: Path) -> list[list[str]]:
    """Single-thread cost of each step of a push and of a repacked load, in-process, on the chunks of
    one checkpoint: the profile behind the push-compression and repacked-load figures."""
    import numpy as np
    import zstandard

    from mvstore import codec
    from mvstore.ids import hash_bytes
    from mvstore.repo import Repository

    pr, rr = Repository(p), Repository(r)
    newest, oldest = f"ck{len(ds.dirs) - 1}", "ck0"
    ch_new = _chunks(pr, newest)
    raws = {oid: pr.store.read(oid) for oid, _ in ch_new}  # warm
    total = sum(len(v) for v in raws.values())
    z = zstandard.ZstdCompressor(level=1)
    planes: dict[Any, bytes] = {}

    def split() -> None:
        for oid, w in ch_new:
            planes[oid] = np.frombuffer(raws[oid], dtype=np.uint8).reshape(-1, w).T.copy()

    from mvstore import encoding

    merge = getattr(encoding, "merge_planes", None)

    def unsplit_current() -> None:  # what encoding.decompress does
        for oid, w in ch_new:
            if merge is not None:
                merge(planes[oid], w)
            else:
                np.frombuffer(planes[oid], dtype=np.uint8).reshape(w, -1).T.tobytes()

    def unsplit_transposed() -> None:  # a transposed copy, for reference
        for oid, w in ch_new:
            np.frombuffer(planes[oid], dtype=np.uint8).reshape(w, -1).T.tobytes()

    steps: list[tuple[str, Callable[[], object]]] = [
        ("raw store: read + verify (blake3) a chunk", lambda: [pr.store.read(o) for o, _ in ch_new]),
        ("blake3 of a chunk (inside the read)", lambda: [hash_bytes(raws[o]) for o, _ in ch_new]),
        ("push, raw: `encode_envelope(compress=False)`",
         lambda: [codec.encode_envelope(raws[o], 1, w, False) for o, w in ch_new]),
        ("push, compressed: `encode_envelope(compress=True)`",
         lambda: [codec.encode_envelope(raws[o], 1, w, True) for o, w in ch_new]),
        ("  of which: byte-plane split (`reshape(-1, w).T.copy()`)", split),
        ("  `encoding.compress` alone (split + zstd, as pushed)",
         lambda: [encoding.compress(raws[o], w) for o, w in ch_new]),
        ("  for reference: zstd level 1 over the planes", lambda: [z.compress(planes[o]) for o, _ in ch_new]),
        ("repacked store: read newest checkpoint (zstd planes, key frames)",
         lambda: [rr.store.read(o) for o, _ in ch_new]),
        ("repacked store: read oldest checkpoint (XOR-delta chains)",
         lambda: [rr.store.read(o) for o, _ in _chunks(rr, oldest)]),
        ("  byte-plane merge as decoded (`encoding.merge_planes`)" if merge is not None
         else "  byte-plane merge as decoded (`reshape(w, -1).T.tobytes()`)", unsplit_current),
        ("  for reference: merge by a transposed copy (`reshape(w, -1).T.tobytes()`)", unsplit_transposed),
    ]
    rows = []
    for name, fn in steps:
        best = float("inf")
        for _ in range(max(2, cfg.runs)):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        rows.append([name, f"{total / best / 1e9:.2f} GB/s", f"{best * 1e3:.0f} ms"])
    return [[f"{ds.label}, {fmt_bytes(total)} of tensor chunks of one checkpoint", "", ""], *rows]


def bench_dataset(cfg: Cfg, ds: Dataset) -> Outcome:
    out = Outcome(ds)
    t0 = time.perf_counter()
    print(f"== {ds.label}: {len(ds.dirs)} checkpoints", flush=True)
    total = 0
    for d in ds.dirs:
        total += tree_bytes(d)
        out.logical.append(total)
    out.stored["cp -r"] = list(out.logical)
    out.stored["CDC 64 KiB (est.)"] = _cdc_curve(ds.dirs)
    p, r = bench_mv(cfg, ds, out)
    d = bench_dvc(cfg, ds, out, cfg.dvc) if cfg.dvc is not None else None
    if cfg.lfs:
        bench_lfs(cfg, ds, out)
    if ds.deep:
        bench_status(cfg, ds, out, p, d)
        bench_materialize(cfg, ds, out, p, r)
        bench_load(cfg, ds, out, p, r)
        bench_push_pull(cfg, ds, out, p, d)
        if ds.key == "full":
            out.breakdown = bench_breakdown(cfg, ds, out, p, r)
    for path in (p, r, d):
        if path is not None:
            rmtree(path)
    rmtree(cfg.remote_root / f"dvc-{ds.key}")
    print(f"   ({time.perf_counter() - t0:.1f}s)", flush=True)
    return out


# =========================================================================== report


def _fmt_curve(v: list[int]) -> str:
    return fmt_bytes(v[-1]) if v else "—"


def _theirs(o: Outcome) -> dict[str, int]:
    return {t: o.stored[t][-1] for t in ("DVC", "git-lfs") if o.stored.get(t)}


def report(cfg: Cfg, outs: list[Outcome], sec: Section) -> None:
    g_store, g_goals, g_time, g_rss = "Stored bytes", "Goals", "Times", "Peak memory"
    sec.intros[g_store] = (
        "Bytes stored after the last checkpoint of each series (apparent file sizes; the curves per "
        "checkpoint are in `bench/stored_bytes.png`). mvstore = its object store (`mv stats`); "
        "+ repack = committed and `mv repack` (zstd byte planes + XOR deltas, depth 4) after each "
        "checkpoint; DVC = `.dvc/cache` (git + DVC, `dvc add` per checkpoint); git-lfs = `.git` "
        "(objects + `lfs/objects`); cp -r = a folder of copies; CDC = unique 64 KiB-average FastCDC "
        "chunks (Xet-style chunk dedup, no compression: an estimate, not a tool). Remote columns: "
        "what `dvc push --all-commits` / `git push` left on the remote."
    )
    header = ["series", "checkpoints", "logical (cp -r)", *TOOLS[:4], "CDC 64 KiB (est.)", "DVC remote",
              "git-lfs remote", "mvstore / DVC", "mvstore + repack / DVC"]
    rows = []
    for o in outs:
        s = o.stored
        dvc = s.get("DVC", [0])[-1] if s.get("DVC") else 0
        rows.append([
            o.ds.label, str(len(o.ds.dirs)), fmt_bytes(o.logical[-1]),
            *(_fmt_curve(s.get(t, [])) for t in TOOLS[:4]), _fmt_curve(s["CDC 64 KiB (est.)"]),
            fmt_bytes(o.remote["DVC"]) if "DVC" in o.remote else "—",
            fmt_bytes(o.remote["git-lfs"]) if "git-lfs" in o.remote else "—",
            f"{s['mvstore'][-1] / dvc:.3f}×" if dvc else "—",
            f"{s['mvstore + repack'][-1] / dvc:.3f}×" if dvc else "—",
        ])
    sec.block(g_store, md_simple_table(header, rows))

    # ---- goals
    sec.intros[g_goals] = (
        "Every goal of issue 4 measured in this run. Stored-bytes ratios = mvstore after repack / the "
        "other tool after the same checkpoints (lower is better); compression = raw-encoded store "
        "(after dedup) / repacked store; \"overall\" = logical bytes of all checkpoints / repacked store."
    )
    for o in outs:
        theirs = _theirs(o)
        ours = o.stored["mvstore + repack"][-1]
        plain = o.stored["mvstore"][-1]
        key = o.ds.key
        for tool, val in theirs.items():
            limit = {"frozen": 0.3, "full": 0.65}.get(key, 1.0)
            sec.add(g_goals, ratio_row(
                f"{o.ds.label}: stored, mvstore + repack vs {tool}", ours, val, limit,
                fmt_bytes(ours), f"{tool} {fmt_bytes(val)}",
            ))
            sec.add(g_goals, ratio_row(
                f"{o.ds.label}: stored, plain mvstore (raw objects, no repack) vs {tool} (for reference)",
                plain, val, None, fmt_bytes(plain), f"{tool} {fmt_bytes(val)}",
            ))
        if not theirs:
            sec.add(g_goals, skipped_row(f"{o.ds.label}: stored vs DVC / git-lfs", cfg.dvc_version))
        target = {"full": 1.6, "bf16": 4.0}.get(key)
        sec.add(g_goals, factor_row(
            f"{o.ds.label}: compression after dedup (raw store / repacked)", ours, plain, target,
            fmt_bytes(ours), f"raw {fmt_bytes(plain)}",
        ))
        if key == "frozen":
            sec.add(g_goals, factor_row(
                f"{o.ds.label}: overall (logical / repacked)", ours, o.logical[-1], 4.0,
                fmt_bytes(ours), f"logical {fmt_bytes(o.logical[-1])}",
            ))
    for o in outs:
        if "mv push" in o.m and o.m["mv push"].t.samples:
            sec.add(g_goals, speed_row(
                f"{o.ds.label}: `mv push` (compressed) vs `mv push --no-compress`, local-folder remote",
                o.m["mv push"].t, o.m["mv push --no-compress"].t, 0.8,
            ))
    for o in outs:
        if "mv load (raw store)" in o.m:
            for name in ("mv load (repacked, oldest)", "mv load (repacked, newest)"):
                which = "oldest checkpoint (deepest delta chain)" if "oldest" in name else "newest checkpoint"
                sec.add(g_goals, speed_row(
                    f"{o.ds.label}: load of the {which} after repack vs the raw store's load",
                    o.m[name].t, o.m["mv load (raw store)"].t, 0.5,
                ))
    for o in outs:
        if o.commit.get("dvc") and o.commit["dvc"].t.samples:
            sec.add(g_goals, speed_row(
                f"{o.ds.label}: `mv commit` vs `dvc add` of the same rewritten folder "
                f"({len(o.commit['mv'].t.samples)} checkpoints)",
                o.commit["mv"].t, o.commit["dvc"].t, 2.0,
            ))
        elif cfg.dvc is None:
            sec.add(g_goals, skipped_row(f"{o.ds.label}: `mv commit` vs `dvc add`", cfg.dvc_version, "≥ 2×"))
    for o in outs:
        if "dvc status" in o.m:
            sec.add(g_goals, speed_row(
                f"{o.ds.label}: no-op `mv status` vs no-op `dvc status`", o.m["mv status"].t,
                o.m["dvc status"].t, 10.0,
            ))
        elif "mv status" in o.m:
            sec.add(g_goals, skipped_row(f"{o.ds.label}: no-op `mv status` vs `dvc status`", cfg.dvc_version,
                                         "≥ 10×"))

    # ---- times
    sec.intros[g_time] = (
        "Commands run as subprocesses (start-up included), medians over the runs with min–max. Commit "
        "samples: every checkpoint after the first (the folder rewritten, as training does; the GPT "
        "pair is committed a, b, a, b); the first checkpoint is shown apart. Export/checkout baselines "
        "read a warm source; checkout settles the folder and warms the stat cache first and writes only "
        "the files that differ. Load = `Repo.load_state_dict` + copy into preallocated parameters, a "
        "fresh process per sample, warm page cache. Push/pull to a local-folder remote on "
        f"{cfg.remote_root.parent} (another filesystem); `mv clone --rev main` and `dvc pull` fetch "
        "the current version, the pushes send all history."
    )
    for o in outs:
        lab = o.ds.label
        if o.commit.get("mv") and o.commit["mv"].t.samples:
            dvc_c = o.commit.get("dvc")
            if dvc_c and dvc_c.t.samples:
                sec.add(g_time, speed_row(f"{lab}: `mv commit` vs `dvc add`", o.commit["mv"].t, dvc_c.t, None))
            lfs_c = o.commit.get("lfs")
            if lfs_c and lfs_c.t.samples:
                sec.add(g_time, speed_row(f"{lab}: `mv commit` vs `git add` + `git commit` (git-lfs)",
                                          o.commit["mv"].t, lfs_c.t, None))
        if o.first.get("dvc") and o.first["dvc"].t.samples:
            sec.add(g_time, speed_row(f"{lab}: first checkpoint, `mv commit` vs `dvc add`", o.first["mv"].t,
                                      o.first["dvc"].t, None))
        if o.repack.t.samples:
            sec.add(g_time, Row(f"{lab}: `mv repack` after the last checkpoint (whole history)",
                                Timing([o.repack.t.samples[-1]]).fmt(), "—", "—"))
        pairs = [
            ("`mv export` newest, raw store, vs `cp -r`", "mv export newest (raw store)", "cp -r newest", 1.0),
            ("`mv export` oldest, repacked store, vs `cp -r`", "mv export oldest (repacked store)",
             "cp -r oldest", None),
            ("`mv checkout` oldest ↔ newest vs `cp -r` of the target", "mv checkout", "cp -r (checkout baseline)",
             1.0),
            ("load oldest, raw store, vs `safetensors.torch.load_file`", "mv load (raw store)", "load_file", 1.0),
            ("load oldest, repacked store, vs `load_file`", "mv load (repacked, oldest)", "load_file", None),
            ("`mv push` vs `dvc push --all-commits`", "mv push", "dvc push --all-commits", None),
            ("`mv clone --rev main` vs `git clone` + `dvc pull`", "mv clone --rev main", "git clone + dvc pull",
             None),
        ]
        for fig, a, b, tgt in pairs:
            if a in o.m and o.m[a].t.samples:
                if b in o.m and o.m[b].t.samples:
                    sec.add(g_time, speed_row(f"{lab}: {fig}", o.m[a].t, o.m[b].t, tgt))
                else:
                    sec.add(g_time, Row(f"{lab}: {fig}", o.m[a].t.fmt(), "skipped", "—"))

    for o in outs:
        if o.breakdown:
            g_prof = "Where the time goes"
            sec.intros[g_prof] = (
                "The profile behind the push-compression and repacked-load figures, measured in this run: "
                "each step of a push and of a load, single-threaded and in-process (best of the runs), over "
                "the tensor chunks of one checkpoint. A push runs read + verify + encode per object on a "
                "pool of 2 threads, then writes; a repacked load runs one read per chunk, which decodes "
                "(and re-verifies) every base of an XOR-delta chain."
            )
            sec.block(g_prof, md_simple_table(["step", "throughput", "time"], o.breakdown))

    # ---- peak RSS
    sec.intros[g_rss] = (
        "Peak RSS of the largest process of each command (`RUSAGE_CHILDREN` of a fresh wrapper); for "
        "loads, the high-water mark of the loading process from just before the load (reset through "
        "`/proc/self/clear_refs`), so it includes what was resident then: Python, torch and the "
        "preallocated parameters the load copies into."
    )
    rss_rows = []
    for o in outs:
        items = [("mv commit", o.commit.get("mv")), ("dvc add", o.commit.get("dvc")),
                 ("git add + commit (lfs)", o.commit.get("lfs")), ("mv repack", o.repack)]
        items += [(k, v) for k, v in o.m.items()]
        cells = [f"{k} {fmt_bytes(v.rss)}" for k, v in items if v is not None and v.rss]
        rss_rows.append([o.ds.label, "; ".join(cells)])
    sec.block(g_rss, md_simple_table(["data", "peak RSS per command"], rss_rows))


WHY = [  # (substring of a figure, title, why it misses: the profile or the mechanism, with the fix)
    ("(compressed) vs `mv push --no-compress`", "compressed push vs `--no-compress` push",
     "A compressed push adds the byte-plane split and zstd to every object (see \"Where the time "
     "goes\": `encode_envelope` with and without compression), on 2 cores shared by 2 encoder threads "
     "and the writer; the raw push is itself bound by read + blake3 re-verification + write. py-spy "
     "(1.07 GB model, git 28adc90): zstd 22 %, plane split 12 %, object reads 17 % (including a "
     "`data += part` copy of every object), temp-file writes 14 %. Next fixes: store planes that "
     "compress < 3 % (fp32 mantissa planes) raw inside the envelope; `readinto` a preallocated "
     "buffer instead of concatenating bytes."),
    ("after repack vs the raw store's load", "load after repack vs the raw store's load",
     "A raw chunk is mapped and hashed; a repacked one is read, zstd-decoded and its byte planes "
     "merged back, and a delta at depth d decodes, merges, XORs and re-verifies all d bases "
     "recursively (`LocalObjectStore.read` → `_read_base`): the oldest checkpoint of a 5-checkpoint "
     "series (depth 4) costs 5 decodes per chunk. py-spy on that load (git 28adc90): zstd 26 %, "
     "`merge_planes` 28 % (column copy + `tobytes`), XOR + `tobytes` 15 %, blake3 of every base 10 %. "
     "Fixes: decode a chain in plane space (XOR each delta's planes into the key frame's planes in "
     "place, merge once, hash once: the final hash proves the whole chain); no `tobytes` copies; "
     "even so 5 zstd passes per chunk cannot reach 0.5× of a mapped read, so keep the newest "
     "checkpoint(s) raw after repack (mapped, not decoded) and cap depth lower for checkpoints that "
     "are loaded often — the README's \"raw locally\" default."),
    ("vs `cp -r`", "export / checkout vs `cp -r`",
     "`cp -r` copies with `copy_file_range` in the kernel and hashes nothing; `mv export` / "
     "`mv checkout` read every chunk through Python, re-verify its blake3 and write the file "
     "(core issue figures; see the core section's profiles)."),
    ("vs `safetensors.torch.load_file`", "raw-store load vs `load_file`",
     "`load_file` maps the file and `copy_` reads it once; `Repo.load_state_dict` also verifies "
     "every chunk's blake3 (a second pass over the bytes) and assembles multi-chunk tensors "
     "(core issue figure)."),
]


def missed_block(sec: Section) -> None:
    missed = [r for rows in sec.groups.values() for r in rows if r.met is False]
    if not missed:
        return
    lines = []
    for why_key, title, why in WHY:
        hit = [r for r in missed if why_key in r.figure]
        if hit:
            figs = "; ".join(f"{r.figure}: {r.ratio}" for r in hit)
            lines.append(f"- **{title}** (target {hit[0].target}; {figs}). {why}")
    other = [r for r in missed if not any(k in r.figure for k, _, _ in WHY)]
    lines += [f"- {r.figure}: {r.ratio} (target {r.target})." for r in other]
    sec.intros["Missed targets: why"] = "Every target this section missed, with the profile that explains it."
    sec.block("Missed targets: why", "\n".join(lines))


def write_curves(outs: list[Outcome], path: Path) -> None:
    doc = {
        "series": [
            {"key": o.ds.key, "label": o.ds.label, "checkpoints": [d.name for d in o.ds.dirs],
             "logical": o.logical, "stored": o.stored}
            for o in outs
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))


# =========================================================================== main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny data, 1 run, no DVC / git-lfs")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gpt-gb", type=float, default=2.0, help="synthetic GPT size in GiB (default 2)")
    ap.add_argument("--data", type=Path, default=None, help="data cache folder (default bench/out/data)")
    ap.add_argument("--out", type=Path, default=DEFAULT_RESULTS)
    ap.add_argument("--kinds", default=None, help="MiniLM series to run, comma-separated (default: all; "
                    "--quick: full)")
    ap.add_argument("--no-gpt", action="store_true")
    ap.add_argument("--no-dvc", action="store_true")
    ap.add_argument("--no-lfs", action="store_true")
    ap.add_argument("--no-install", action="store_true", help="never install DVC / git-lfs")
    ap.add_argument("--reuse-mv", action="store_true",
                    help="use bench/out/mv-venv as it is (bench.run: bench.core has just installed it)")
    ap.add_argument("--dev-mv", action="store_true", help="run the CLI from the current (editable) venv")
    args = ap.parse_args(argv)
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    quick = bool(args.quick)
    kinds = tuple(k for k in (args.kinds or ("full" if quick else ",".join(KINDS))).split(",") if k)
    work = (DEFAULT_WORKDIR / ("compare-quick" if quick else "compare")).resolve()
    rmtree(work)
    work.mkdir(parents=True)
    machine = machine_line(work)
    print(machine, flush=True)
    sec = Section()

    if quick or args.dev_mv:
        use_mv(None)
        sec.note(f"CLI: `{venv_bin('mv')}` (the current environment's install).")
    else:
        mv_venv = DEFAULT_WORKDIR / "mv-venv"
        if args.reuse_mv and (mv_venv / "bin" / "mv").exists():
            use_mv(mv_venv / "bin" / "mv")
        else:
            use_mv(install_mv(mv_venv))
        sec.note("CLI: a regular (non-editable) install of the working tree in bench/out/mv-venv, as in "
                 "bench.core.")
    install = not quick and not args.no_install
    dvc, dvc_version = (None, "--quick") if quick or args.no_dvc else ensure_dvc(install)
    lfs, lfs_version = (False, "--quick") if quick or args.no_lfs else ensure_git_lfs(install)
    if dvc is None:
        sec.note(f"DVC skipped: {dvc_version}.")
    if not lfs:
        sec.note(f"git-lfs skipped: {lfs_version}.")

    data_dir = args.data or default_data_dir()
    data = ensure_data(data_dir, series_n=2 if quick else 5,
                       gpt_bytes=4 * MIB if quick else int(args.gpt_gb * GIB), kinds=kinds)
    gpt_size = tree_bytes(data.gpt[0])
    datasets = [
        Dataset(k, KIND_LABELS[k], data.series[k], data.series[k], deep=(k == "full")) for k in kinds
    ]
    if not args.no_gpt:
        a, b = data.gpt
        datasets.append(Dataset("gpt", f"GPT {fmt_bytes(gpt_size)}, 2 versions", [a, b], [a, b, a, b], deep=True))
    outs: list[Outcome] = []
    try:
        with other_fs_dir(work, "mvbench-compare-") as (remote_root, remote_desc):
            cfg = Cfg(
                runs=1 if quick else max(1, args.runs), quick=quick, dvc=dvc, dvc_version=dvc_version,
                lfs=lfs, lfs_version=lfs_version, work=work, remote_root=remote_root, real_wait=not quick,
            )
            sec.note(f"Local-folder remotes (DVC, git-lfs, `mv push`) live in {remote_desc}.")
            for ds in datasets:
                outs.append(bench_dataset(cfg, ds))
    finally:
        rmtree(work)
    report(cfg, outs, sec)
    missed_block(sec)
    write_curves(outs, STORED_JSON if not quick else work.parent / "stored_bytes-quick.json")
    try:
        from .chart import make_chart

        png = make_chart(STORED_JSON if not quick else work.parent / "stored_bytes-quick.json",
                         None if not quick else work.parent / "stored_bytes-quick.png")
        sec.note(f"Chart: `{png.relative_to(REPO_ROOT) if png.is_relative_to(REPO_ROOT) else png}`.")
    except ImportError as e:
        sec.note(f"chart skipped: {e}")
    met, total = sec.tally()
    head = [
        machine,
        "",
        f"Command: `{' '.join(['python -m bench.compare', *raw_argv])}` — "
        f"{time.perf_counter() - started:.0f} s, {cfg.runs} run(s) per timed figure. "
        f"Targets met: {met} of {total}. Tools: {dvc_version}; {lfs_version}.",
        f"Data: MiniLM fine-tuning series of {len(data.series[kinds[0]]) if kinds else 0} checkpoints "
        f"({', '.join(kinds)}); synthetic GPT-2-style model {fmt_bytes(gpt_size)} (HF shards) and a "
        f"version b with {len(data.gpt_changed)} weight matrices changed ({', '.join(data.gpt_changed)}).",
    ]
    write_section(args.out, HEADING, sec.render(head))
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
