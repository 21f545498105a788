"""Shared machinery of the mvstore benchmarks: timing, baselines, peak RSS, machine line, markdown.

Every figure the benchmarks publish is measured next to a baseline in the same run and printed as
a ratio, so a slower or faster machine moves both sides together. Conventions:

* A :class:`Timing` holds N samples (seconds); it is shown as ``median (min–max)``.
* Commands run as real subprocesses (``time_cmd``) so their start-up cost counts, as a user's does;
  in-process figures (``time_call``) isolate throughput from start-up.
* "Durable" baselines include a ``sync``: a commit that returns has its objects on disk, so the
  fair comparison is ``cp -r SRC DST && sync``, not a copy into the page cache.
* Peak RSS is measured in a fresh wrapper process per measurement (``RUSAGE_CHILDREN`` of a process
  whose only child is the command), so one measurement never leaks into the next.
"""

from __future__ import annotations

import json
import mmap
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import blake3

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = REPO_ROOT / "bench" / "RESULTS.md"
DEFAULT_WORKDIR = REPO_ROOT / "bench" / "out"
MIB = 1024 * 1024
GIB = 1024 * MIB


class BenchError(RuntimeError):
    """A benchmarked command failed: the message carries its stderr."""


# --------------------------------------------------------------------------- timings


@dataclass
class Timing:
    """Samples of one measured quantity (seconds unless ``unit`` says otherwise)."""

    samples: list[float] = field(default_factory=list)
    unit: str = "s"
    outputs: list[str] = field(default_factory=list)

    def add(self, value: float, output: str = "") -> None:
        self.samples.append(value)
        if output:
            self.outputs.append(output)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def fmt(self) -> str:
        if not self.samples:
            return "—"
        f = fmt_seconds if self.unit == "s" else fmt_bytes if self.unit == "B" else (lambda v: f"{v:.3g}")
        if len(self.samples) == 1:
            return f(self.median)
        return f"{f(self.median)} ({f(self.min)}–{f(self.max)})"


def fmt_seconds(s: float) -> str:
    if s < 0.01:
        return f"{s * 1000:.2f} ms"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    return f"{s:.2f} s"


def fmt_bytes(n: float) -> str:
    """Decimal units, as the issue's figures ("91 MB", "300 MB") use."""
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f} {unit}" if unit == "GB" else f"{n / div:.1f} {unit}"
    return f"{n:.0f} B"


def fmt_rate(nbytes: int, t: Timing) -> str:
    return f"{nbytes / t.median / 1e9:.2f} GB/s" if t.samples and t.median > 0 else "—"


def run_steps(steps: Sequence[tuple[str, Callable[[], object]]]) -> None:
    """Run named benchmark steps in order, printing each name and how long it took."""
    for name, step in steps:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        step()
        print(f"   ({time.perf_counter() - t0:.1f}s)", flush=True)


def time_call(
    fn: Callable[[], object],
    runs: int,
    setup: Callable[[int], object] | None = None,
    timing: Timing | None = None,
) -> Timing:
    """Time ``fn()`` ``runs`` times; ``setup(i)`` runs untimed before each sample."""
    t = timing or Timing()
    for i in range(runs):
        if setup is not None:
            setup(i)
        t0 = time.perf_counter()
        fn()
        t.add(time.perf_counter() - t0)
    return t


def run(
    argv: Sequence[str | os.PathLike[str]],
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command quietly, capturing its output; a failure raises with the command's stderr."""
    proc = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if check and proc.returncode != 0:
        cmd = " ".join(str(a) for a in argv)
        raise BenchError(f"`{cmd}` (in {cwd or os.getcwd()}) exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def time_cmd(
    argv: Sequence[str | os.PathLike[str]],
    runs: int,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    setup: Callable[[int], object] | None = None,
    timing: Timing | None = None,
) -> Timing:
    """Wall time of a subprocess (start-up included), ``runs`` times; stdout of each run is kept."""
    t = timing or Timing()
    for i in range(runs):
        if setup is not None:
            setup(i)
        t0 = time.perf_counter()
        proc = run(argv, cwd, env)
        t.add(time.perf_counter() - t0, proc.stdout)
    return t


# --------------------------------------------------------------------------- peak RSS

_RSS_WRAPPER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
secs = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": p.returncode, "maxrss_kib": ru.ru_maxrss, "seconds": secs,
                  "stderr": p.stderr.decode(errors="replace")[-2000:]}))
"""


def peak_rss(
    argv: Sequence[str | os.PathLike[str]],
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[int, float]:
    """(peak resident set size in bytes, wall seconds) of one run of ``argv`` in a fresh wrapper."""
    proc = run([sys.executable, "-c", _RSS_WRAPPER, *argv], cwd, env)
    doc = json.loads(proc.stdout)
    if doc["rc"] != 0:
        raise BenchError(f"`{' '.join(map(str, argv))}` exited {doc['rc']}: {doc['stderr'].strip()}")
    return int(doc["maxrss_kib"]) * 1024, float(doc["seconds"])


# --------------------------------------------------------------------------- files and baselines


def model_files(root: Path) -> list[Path]:
    """Regular files under ``root`` (sorted), skipping ``.mv`` / ``.git`` / ``.dvc`` folders."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in (".mv", ".git", ".dvc"))
        out.extend(Path(dirpath) / f for f in sorted(filenames))
    return out


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in model_files(root))


def rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def sync() -> None:
    """Flush every dirty page so that earlier writes are not paid for inside the next timing."""
    os.sync()


def read_all(paths: Iterable[Path]) -> int:
    """Read files once into one reused buffer: makes them warm in the page cache."""
    buf = bytearray(8 * MIB)
    view = memoryview(buf)
    total = 0
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while n := f.readinto(view):
                total += n
    return total


def warm_store(repo: Path) -> int:
    """Read every object of a repository once (the store side of a warm-cache comparison)."""
    objects = repo / ".mv" / "objects"
    return read_all(p for p in objects.rglob("*") if p.is_file())


def blake3_files(paths: Iterable[Path]) -> list[bytes]:
    """The raw-hashing baseline: multi-threaded blake3 over an mmap of each file."""
    out = []
    for p in paths:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                out.append(blake3.blake3().digest())
                continue
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                out.append(blake3.blake3(mm, max_threads=blake3.blake3.AUTO).digest())
    return out


def cp_r(src: Path, dst: Path) -> None:
    run(["cp", "-r", src, dst])


def cp_r_cmd(src: Path, dst: Path, durable: bool) -> list[str]:
    """``cp -r SRC DST`` (and ``&& sync`` when ``durable``) as one shell command line."""
    script = 'cp -r "$1" "$2"' + (" && sync" if durable else "")
    return ["sh", "-c", script, "sh", str(src), str(dst)]


def cp_files_cmd(files: Sequence[Path], dst_dir: Path) -> list[str]:
    """``cp`` of a list of files into a folder (the baseline of a checkout that rewrites them)."""
    return ["cp", *map(str, files), str(dst_dir)]


def mirror(src: Path, dst: Path) -> None:
    """Make the files of ``dst`` (outside .mv/) exactly those of ``src``, writing every file anew.

    That is what a training loop does when it writes the next checkpoint over the last one.
    """
    wanted = {p.relative_to(src) for p in model_files(src)}
    for p in model_files(dst):
        if p.relative_to(dst) not in wanted:
            p.unlink()
    for rel in sorted(wanted):
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, target)


def settle(root: Path, real_wait: bool = True) -> None:
    """Get every file under ``root`` out of mvstore's "racy" window so a stat cache can trust it.

    The stat cache (like git's index) distrusts files modified within ``RACY_NS`` of the moment they
    were recorded. ``real_wait`` sleeps until the newest file is old enough (what a user sees);
    otherwise mtimes are moved into the past (quick mode: same effect, no sleeping).
    """
    from mvstore.statcache import RACY_NS

    margin = RACY_NS / 1e9 + 0.2
    files = model_files(root)
    if not files:
        return
    if real_wait:
        newest = max(p.stat().st_mtime for p in files)
        delay = newest + margin - time.time()
        if delay > 0:
            time.sleep(delay)
        return
    past = time.time() - 10 * margin
    for p in files:
        os.utime(p, (past, past))


# --------------------------------------------------------------------------- tools


def venv_bin(name: str) -> str:
    """A console script of the running interpreter's environment (``mv``, not the system ``mv``)."""
    cand = Path(sys.executable).parent / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name)
    if found is None:
        raise BenchError(f"{name!r} is not installed in this environment")
    return found


_MV_BIN: str | None = None


def use_mv(path: str | os.PathLike[str] | None) -> None:
    """Run every ``mv`` command of the benchmarks with this executable (None: the current venv's)."""
    global _MV_BIN
    _MV_BIN = None if path is None else str(path)


def mv_cmd(*args: str | os.PathLike[str]) -> list[str]:
    return [_MV_BIN or venv_bin("mv"), *map(str, args)]


def install_mv(venv: Path) -> Path:
    """A regular (non-editable) install of the working tree in ``venv``; returns its ``mv``.

    Why: the CLI figures should be those of what ``pip install`` gives a user. An editable install
    adds an import hook to every interpreter start, and with PYTHONDONTWRITEBYTECODE set (as in this
    sandbox) the package is recompiled from source on every call; pip compiles bytecode at install.
    The package files are copied to a scratch folder first, so the build never writes into the repo.
    Dependencies come from the package index on the first call only.
    """
    py = venv / "bin" / "python"
    if not py.exists():
        run([sys.executable, "-m", "venv", venv])
    run([py, "-m", "pip", "install", "-q", "setuptools>=68", "wheel"])  # the build backend
    src = venv.parent / "mv-src"
    rmtree(src)
    src.mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "mvstore", src / "mvstore", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO_ROOT / name).exists():
            shutil.copy2(REPO_ROOT / name, src / name)
    if not (src / "README.md").exists():
        (src / "README.md").write_text("mvstore\n")
    run([py, "-m", "pip", "install", "-q", "--no-build-isolation", src])  # deps: no-op once installed
    run([py, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", "--no-build-isolation", src])
    rmtree(src)
    return venv / "bin" / "mv"


# --------------------------------------------------------------------------- machine line


def _fs_of(path: Path) -> tuple[str, str]:
    """(mount point, filesystem type) holding ``path``, from /proc/mounts."""
    real = os.path.realpath(path)
    best = ("/", "?")
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
                    best = (mnt, parts[2])
    except OSError:
        pass
    return best


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_rev() -> str:
    try:
        proc = run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"], check=False)
    except OSError:
        return "?"
    rev = proc.stdout.strip() if proc.returncode == 0 else "no commit"
    dirty = run(["git", "-C", REPO_ROOT, "status", "--porcelain", "mvstore"], check=False).stdout.strip()
    return rev + (" + uncommitted changes" if dirty else "")


def machine_line(bench_dir: Path) -> str:
    bench_dir.mkdir(parents=True, exist_ok=True)
    mnt, fstype = _fs_of(bench_dir)
    free = shutil.disk_usage(bench_dir).free
    return (
        f"Machine: {os.cpu_count()} cores, {_mem_total() / GIB:.1f} GiB RAM, "
        f"bench dir on {fstype} ({mnt}, {free / 1e9:.0f} GB free); "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"torch {_version('torch')}, safetensors {_version('safetensors')}, blake3 {_version('blake3')}, "
        f"mvstore {_version('mvstore')} (git {_git_rev()}); "
        f"load average {os.getloadavg()[0]:.2f} at start; run {time.strftime('%Y-%m-%d %H:%M %Z')}."
    )


# --------------------------------------------------------------------------- result rows and markdown


@dataclass
class Row:
    figure: str
    ours: str
    baseline: str
    ratio: str
    target: str = "—"
    met: bool | None = None

    def echo(self) -> None:
        verdict = "" if self.met is None else ("  [met]" if self.met else "  [MISSED]")
        print(
            f"  {self.figure}: ours {self.ours} | baseline {self.baseline} | ratio {self.ratio}"
            f" | target {self.target}{verdict}",
            flush=True,
        )


def speed_row(figure: str, ours: Timing, base: Timing, target: float | None) -> Row:
    """Throughput-style figure: ratio = baseline time / our time (higher is better)."""
    ratio = base.median / ours.median if ours.median > 0 else float("inf")
    met = None if target is None else ratio >= target
    tgt = "—" if target is None else f"≥ {target:g}×"
    return Row(figure, ours.fmt(), base.fmt(), f"{ratio:.2f}×", tgt, met)


def fraction_row(figure: str, ours: Timing, base: Timing, limit: float | None) -> Row:
    """Cost-as-a-share figure: ratio = our time / baseline time (lower is better)."""
    ratio = ours.median / base.median if base.median > 0 else float("inf")
    met = None if limit is None else ratio <= limit
    tgt = "—" if limit is None else f"≤ {limit * 100:g} %"
    return Row(figure, ours.fmt(), base.fmt(), f"{ratio * 100:.1f} %", tgt, met)


def skipped_row(figure: str, why: str, target: str = "—") -> Row:
    return Row(figure, f"skipped ({why})", "—", "—", target, None)


def md_table(rows: Sequence[Row]) -> str:
    head = "| figure | ours (median, min–max) | baseline (median, min–max) | ratio | target | met? |\n"
    head += "|---|---|---|---|---|---|\n"
    lines = []
    for r in rows:
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        cells = [r.figure, r.ours, r.baseline, r.ratio, r.target, met]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return head + "\n".join(lines) + "\n"


def md_simple_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
    for r in rows:
        out += "| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |\n"
    return out


_RESULTS_PREAMBLE = """# mvstore benchmark results

Written by the scripts in `bench/` (`python -m bench.core`, `python -m bench.chunk_size`); each
section is replaced when its script runs again. Every figure sits next to a baseline measured in
the same run on the same machine, and the ratio is what the targets refer to.
"""


def write_section(path: Path, heading: str, body: str) -> None:
    """Replace the ``## heading`` section of a markdown file (up to the next ``## ``), or append it."""
    text = path.read_text() if path.exists() else _RESULTS_PREAMBLE
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip("\n") == heading), None)
    section = heading + "\n\n" + body.rstrip("\n") + "\n"
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        after = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + after if after else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new)
    os.replace(tmp, path)
