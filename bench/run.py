"""The whole benchmark suite, one command: core store, remotes, the alternatives, and the chart.

    python -m bench.run            # full run (~20 min on a 2-core machine): writes bench/RESULTS.md
    python -m bench.run --quick    # tiny data, 1 run, no DVC / git-lfs installs (~1.5 min): CI smoke test
                                   # (writes bench/out/RESULTS-quick.md; the committed results stay as they are)

Each part runs as its own process (``python -m bench.core``, ``bench.remote``, ``bench.compare``,
``bench.chart``) and replaces only its own section of the results file; this script writes the top
of the file: the machine line, how long each part took, the load average while it ran, and a summary
of every target met or missed. The data (MiniLM fine-tuning series, synthetic GPT models) is made by
``bench/data.py``, deterministic by seed, and cached in ``bench/out/data``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .common import DEFAULT_RESULTS, DEFAULT_WORKDIR, GIB, MIB, REPO_ROOT, machine_line

PARTS = ("data", "core", "remote", "compare", "chart")
QUICK_OUT = DEFAULT_WORKDIR / "RESULTS-quick.md"


@dataclass
class Part:
    name: str
    argv: list[str]
    shown: str = ""
    seconds: float = 0.0
    rc: int | None = None
    loads: list[float] = field(default_factory=list)


class LoadSampler(threading.Thread):
    """Samples the 1-minute load average every few seconds, attributed to the part running."""

    def __init__(self, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.every = every
        self.current: Part | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            if self.current is not None:
                self.current.loads.append(os.getloadavg()[0])


def _fmt_loads(xs: list[float]) -> str:
    if not xs:
        return "—"
    return f"{statistics.median(xs):.1f} ({min(xs):.1f}–{max(xs):.1f})"


def _run_part(part: Part, log_dir: Path) -> None:
    print(f"\n##### {part.name}: {' '.join(part.argv)}", flush=True)
    log = log_dir / f"{part.name}.log"
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-u", *part.argv], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, stdin=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            f.write(line)
        part.rc = proc.wait()
    part.seconds = time.perf_counter() - t0
    print(f"##### {part.name}: exit {part.rc} after {part.seconds:.0f} s (log: {log})", flush=True)


_ROW = re.compile(r"^\| (.+) \| (.*) \| (.*) \| (.*) \| (.*) \| (yes|\*\*no\*\*) \|$")


def summarize(results: Path) -> tuple[list[str], int, int]:
    """Every row with a verdict, per section: (markdown lines of the missed ones, met, total)."""
    section = ""
    met = total = 0
    missed: list[str] = []
    for line in results.read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            continue
        m = _ROW.match(line)
        if not m:
            continue
        total += 1
        if m.group(6) == "yes":
            met += 1
        else:
            missed.append(f"| {section} | {m.group(1)} | {m.group(4)} | {m.group(5)} |")
    return missed, met, total


def write_top(results: Path, top: str) -> None:
    """Replace everything before the first ``## `` section with ``top``."""
    text = results.read_text() if results.exists() else ""
    idx = text.find("\n## ")
    rest = text[idx + 1 :] if idx >= 0 else ("" if not text.startswith("## ") else text)
    results.write_text(top.rstrip("\n") + "\n\n" + rest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny data, 1 run, no installs (CI smoke test)")
    ap.add_argument("--only", default=",".join(PARTS), help=f"parts to run, comma-separated ({', '.join(PARTS)})")
    ap.add_argument("--out", type=Path, default=None, help="results file (default bench/RESULTS.md; "
                    "--quick: bench/out/RESULTS-quick.md)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    quick = bool(args.quick)
    out = (args.out or (QUICK_OUT if quick else DEFAULT_RESULTS)).resolve()
    only = [p for p in args.only.split(",") if p]
    for p in only:
        if p not in PARTS:
            ap.error(f"unknown part {p!r}")
    log_dir = DEFAULT_WORKDIR / ("run-logs-quick" if quick else "run-logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_line(DEFAULT_WORKDIR)
    print(machine, flush=True)
    q = ["--quick"] if quick else ["--runs", str(args.runs)]
    o = ["--out", str(out)]
    data_code = (
        "from pathlib import Path; from bench.compare import ensure_data, ensure_gpt, ensure_series, KINDS;"
        f"d = Path({str(DEFAULT_WORKDIR / 'data')!r});"
        + (
            "ensure_data(d, 2, 4 * 2**20, ('full',)); ensure_series(d, 'frozen', 2)"
            if quick
            else f"ensure_data(d, 5, {2 * GIB}); ensure_gpt(d, {GIB}, mutated=False); "
            f"ensure_gpt(d, {256 * MIB}, mutated=False)"
        )
    )
    chart = ["-m", "bench.chart"] + (
        ["--data", str(DEFAULT_WORKDIR / "stored_bytes-quick.json"), "--out",
         str(DEFAULT_WORKDIR / "stored_bytes-quick.png")] if quick else []
    )
    parts = {
        "data": Part("data", ["-c", data_code], "python -c 'ensure_data(…)' (bench/compare.py: make or reuse the data)"),
        "core": Part("core", ["-m", "bench.core", *q, *o]),
        "remote": Part("remote", ["-m", "bench.remote", *q, *o]),
        "compare": Part("compare", ["-m", "bench.compare", *q, *o, *([] if quick else ["--reuse-mv"])]),
        "chart": Part("chart", chart),
    }
    if "core" not in only and "compare" in only and not quick:
        parts["compare"].argv.remove("--reuse-mv")  # nobody installed the CLI in this run: compare does
    sampler = LoadSampler()
    sampler.start()
    started = time.perf_counter()
    start_load = os.getloadavg()[0]
    for name in PARTS:
        if name not in only:
            continue
        sampler.current = parts[name]
        _run_part(parts[name], log_dir)
    sampler.current = None
    sampler.stop.set()
    total = time.perf_counter() - started
    all_loads = [x for p in parts.values() for x in p.loads]

    ran = [parts[n] for n in PARTS if n in only]
    timing = "; ".join(
        f"{p.name} {p.seconds:.0f} s" + ("" if p.rc == 0 else f" (**exit {p.rc}**)") for p in ran
    )
    part_rows = "\n".join(
        f"| {p.name} | `{p.shown or 'python ' + ' '.join(p.argv)}` | "
        f"{p.seconds:.0f} s | {'ok' if p.rc == 0 else f'exit {p.rc}'} | {_fmt_loads(p.loads)} |"
        for p in ran
    )
    missed, met, n_targets = summarize(out) if out.exists() else ([], 0, 0)
    cmd = "python -m bench.run" + (" --quick" if quick else "")
    top = [
        "# mvstore benchmark results",
        "",
        f"Written by one command, `{cmd}` (parts: `python -m bench.core`, `bench.remote`, "
        "`bench.compare`, `bench.chart`; `python -m bench.chunk_size` separately). Each part replaces "
        "only its own `## ` section; every figure sits next to a baseline measured in the same run on the "
        "same machine, and the ratio is what the targets refer to.",
        "",
        machine,
        "",
        f"Run: {total / 60:.1f} min in total ({timing}). 1-minute load average while it ran: median "
        f"{_fmt_loads(all_loads)} (at start {start_load:.2f}) on {os.cpu_count()} cores — the machine "
        "was shared with other work, so absolute times are noisy; ratios pair each figure with its "
        "baseline in the same minute.",
        "",
        "| part | command | time | result | load average, median (min–max) |",
        "|---|---|---|---|---|",
        part_rows,
        "",
        f"Targets met: **{met} of {n_targets}** across all sections below"
        + (" (rows marked `**no**`; the sections explain each miss)." if missed else "."),
    ]
    if missed:
        top += ["", "| section | missed figure | ratio | target |", "|---|---|---|---|", *missed]
    write_top(out, "\n".join(top))
    print(f"\nwrote {out}: {met} of {n_targets} targets met; {total:.0f} s in total", flush=True)
    return 0 if all(p.rc == 0 for p in ran) else 1


if __name__ == "__main__":
    raise SystemExit(main())
