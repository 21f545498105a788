"""Chart: stored bytes against the number of checkpoints, per tool, one panel per series.

    python -m bench.chart [--data bench/out/stored_bytes.json] [--out bench/stored_bytes.png]

Reads the curves :mod:`bench.compare` measured (``bench/out/stored_bytes.json``) and draws them with
matplotlib (Agg backend, no display needed).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from .common import DEFAULT_WORKDIR, REPO_ROOT

DEFAULT_PNG = REPO_ROOT / "bench" / "stored_bytes.png"
DEFAULT_JSON = DEFAULT_WORKDIR / "stored_bytes.json"

STYLE = {  # tool -> (color, marker, linestyle, linewidth, alpha): wide pale lines under thin ones, so
    # tools that store the same bytes (no dedup possible) stay visible where their curves coincide
    "cp -r": ("#7f7f7f", "s", ":", 1.6, 1.0),
    "DVC": ("#d62728", "o", "-", 6.0, 0.35),
    "git-lfs": ("#ff7f0e", "^", "--", 2.6, 0.9),
    "CDC 64 KiB (est.)": ("#9467bd", "x", "-.", 1.6, 1.0),
    "mvstore": ("#1f77b4", "D", "-", 1.3, 1.0),
    "mvstore + repack": ("#2ca02c", "P", "-", 2.0, 1.0),
}


def make_chart(data: Path = DEFAULT_JSON, out: Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = out or DEFAULT_PNG
    doc = json.loads(Path(data).read_text())
    series = doc["series"]
    n = len(series)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.9 * rows), squeeze=False)
    for ax, s in zip(axes.flat, series, strict=False):
        xs = list(range(1, len(s["checkpoints"]) + 1))
        big = max((max(v) for v in s["stored"].values() if v), default=1)
        unit, div = ("GB", 1e9) if big >= 2e9 else ("MB", 1e6)
        for tool, (color, marker, ls, lw, alpha) in STYLE.items():
            ys = s["stored"].get(tool)
            if not ys:
                continue
            ax.plot(xs[: len(ys)], [y / div for y in ys], label=tool, color=color, marker=marker, linestyle=ls,
                    linewidth=lw, alpha=alpha, markersize=5)
        ax.set_title(s["label"], fontsize=10)
        ax.set_xlabel("checkpoints committed")
        ax.set_ylabel(f"stored ({unit})")
        ax.set_xticks(xs)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    fig.suptitle("Stored bytes vs number of checkpoints (lower is better; where dedup finds nothing, "
                 "DVC, git-lfs, CDC and plain mvstore coincide)", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.chart", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--out", type=Path, default=DEFAULT_PNG)
    args = ap.parse_args(argv)
    print(make_chart(args.data, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
