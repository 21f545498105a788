"""Shared helpers for the reliability campaign (crash, concurrency, faults, fuzzing, load).

The campaign runs in two sizes. The default (CI, part of the normal ``pytest`` run) is short and
seeded so it never flakes; ``MV_CAMPAIGN=long`` runs the long version (≥ 200 kills per operation,
≥ 100 concurrency rounds, SeaweedFS, 10k-commit load). ``MV_CAMPAIGN_OUT=file.jsonl`` appends one
JSON record per scenario (trials, kills that landed mid-operation, failures, data lost), which is
where the figures in RELIABILITY.md come from.

Everything here drives the real program: ``mv`` subprocesses killed with real signals at random
(seeded) times, real files, real servers. Nothing is mocked and there is no crash-point hook in
the product: kills land wherever the clock says.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conftest import MV, cli_env

LONG = os.environ.get("MV_CAMPAIGN", "short") == "long"


def trials(short: int, long: int) -> int:
    """The number of trials for this run (``MV_CAMPAIGN_TRIALS`` overrides both, for debugging)."""
    override = os.environ.get("MV_CAMPAIGN_TRIALS")
    if override:
        return int(override)
    return long if LONG else short


def rng(*key: object) -> random.Random:
    """A deterministic random source per scenario (and per trial): the campaign never flakes."""
    return random.Random(":".join(map(str, key)))


# -- figures ------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """One scenario's outcome, as RELIABILITY.md reports it."""

    scenario: str
    trials: int = 0
    killed_mid_operation: int = 0  # the kill landed before the command finished
    finished: int = 0  # the command finished before the kill
    failures: int = 0  # invariant violations (any makes the test fail)
    data_lost: int = 0  # reported commits that did not come back byte for byte
    notes: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def record(self) -> None:
        out = os.environ.get("MV_CAMPAIGN_OUT")
        if not out:
            return
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps({"long": LONG, **asdict(self)}) + "\n")


@contextmanager
def figures(scenario: str) -> Iterator[Figures]:
    fig = Figures(scenario)
    t0 = time.perf_counter()
    try:
        yield fig
    finally:
        fig.seconds = round(time.perf_counter() - t0, 2)
        fig.record()


# -- models -------------------------------------------------------------------------------------------


def write_model(
    folder: Path, seed: int, mb: float = 8.0, layers: int = 4, changed: Sequence[int] | None = None
) -> None:
    """An HF-style folder: ``model.safetensors`` of about ``mb`` MB (a sub-chunked embedding, a few
    layers — only ``changed`` layers depend on ``seed``), a tiny config and an opaque ``extra.bin``."""
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    width = 256
    per_layer = int(mb * (1 << 20) / 4 / (layers + 1) / width)
    base = np.random.default_rng(0)
    new = np.random.default_rng(seed)
    tensors = {"embed.weight": base.standard_normal((per_layer, width), dtype=np.float32)}
    for i in range(layers):
        g = new if (changed is None or i in changed) else base
        tensors[f"layer.{i}.weight"] = g.standard_normal((per_layer, width), dtype=np.float32)
        tensors[f"layer.{i}.bias"] = np.full(
            (width,), float(seed if changed is None or i in changed else 0), np.float32
        )
    save_file(tensors, str(folder / "model.safetensors"), metadata={"seed": str(seed)})
    (folder / "config.json").write_text(json.dumps({"hidden": width, "seed": seed}))
    (folder / "extra.bin").write_bytes(new.bytes(300_000))


def digests(root: Path) -> dict[str, str]:
    """Path → sha256 of every file under ``root`` except ``.mv`` and checkout's temp files."""
    import re

    tmp = re.compile(r"\..+\.mvtmp-[0-9a-f]{8}")
    out = {}
    for dirpath, dirs, files in os.walk(root):
        if Path(dirpath) == root:
            dirs[:] = [d for d in dirs if d not in (".mv", ".git")]
        for f in files:
            if tmp.fullmatch(f):
                continue
            p = Path(dirpath) / f
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# -- running and killing ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    finished: bool  # exited on its own before the kill
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float


def spawn(
    args: Sequence[str | os.PathLike[str]], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [MV, *map(str, args)],
        cwd=str(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(env),
        start_new_session=True,  # its own process group: the kill reaches every thread and child
    )


def run_and_kill(
    args: Sequence[str | os.PathLike[str]], cwd: Path, delay: float, env: dict[str, str] | None = None
) -> Outcome:
    """Run ``mv ARGS`` and SIGKILL it after ``delay`` seconds unless it finished first."""
    t0 = time.perf_counter()
    p = spawn(args, cwd, env)
    try:
        out, err = p.communicate(timeout=delay)
        return Outcome(True, p.returncode, out, err, time.perf_counter() - t0)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate(timeout=60)
        finished = p.returncode != -signal.SIGKILL
        return Outcome(finished, p.returncode, out, err, time.perf_counter() - t0)


def mv(
    *args: str | os.PathLike[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    cp = subprocess.run(
        [MV, *map(str, args)], cwd=str(cwd), capture_output=True, text=True, env=cli_env(env), timeout=timeout
    )
    if check and cp.returncode != 0:
        raise AssertionError(
            f"mv {' '.join(map(str, args))} exited {cp.returncode}\n{cp.stdout}\n{cp.stderr}"
        )
    return cp


def calibrate(args: Sequence[str | os.PathLike[str]], cwd: Path, env: dict[str, str] | None = None) -> float:
    """How long one uninterrupted run takes (the kill delays are drawn from [0, 1.1 × this])."""
    t0 = time.perf_counter()
    mv(*args, cwd=cwd, env=env)
    return time.perf_counter() - t0


# -- checks --------------------------------------------------------------------------------------------


def verify_clean(root: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``mv verify`` exits 0 and reports no problem (warnings about temp files are fine)."""
    cp = mv("verify", "--json", *extra, cwd=root, env=env, check=False)
    report = json.loads(cp.stdout) if cp.stdout.strip().startswith("{") else {}
    assert cp.returncode == 0 and report.get("ok"), f"verify found problems:\n{cp.stdout}\n{cp.stderr}"
    return report


def assert_intact(root: Path, commit: str, expected: dict[str, str], scratch: Path) -> None:
    """Commit ``commit`` of the repository at ``root`` rebuilds exactly the files ``expected``."""
    import mvstore

    dest = scratch / f"export-{commit[:12]}-{time.monotonic_ns()}"
    mvstore.Repo(root).export(commit, dest)
    try:
        got = digests(dest)
        assert got == expected, f"commit {commit[:12]} does not rebuild byte for byte"
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def remove_stale_locks(root: Path, *more: Path) -> list[Path]:
    """The documented way out after a crash left a ref lock: delete it (no mv process is running).
    ``more``: other folders to clean (a local-folder remote a killed push left a lock in)."""
    found = [p for d in (root / ".mv", *more) for p in d.rglob("*.lock")]
    for p in found:
        p.unlink()
    return found


def head_commit(root: Path) -> str | None:
    import mvstore
    from mvstore.errors import MvError

    try:
        return mvstore.Repo(root).resolve("HEAD")
    except MvError:
        return None


def ancestors(root: Path, rev: str) -> set[str]:
    from mvstore.ops.history import walk
    from mvstore.repo import Repository
    from mvstore.revparse import resolve_commit

    repo = Repository.find(root)
    return {oid.hex() for oid, _c in walk(repo, resolve_commit(repo, rev))}


def age_files(paths: Sequence[Path], seconds: float) -> None:
    """Make files look ``seconds`` old (what gc's grace period compares against)."""
    when = time.time() - seconds
    for p in paths:
        os.utime(p, (when, when))


def age_store(root: Path, seconds: float) -> None:
    objects = root / ".mv" / "objects"
    age_files([p for p in objects.rglob("*") if p.is_file()], seconds)


# -- a flaky network ------------------------------------------------------------------------------------


class FlakyProxy:
    """A TCP proxy on 127.0.0.1 in front of a server, failing on purpose.

    ``drop_every``: every k-th connection is closed before a byte is forwarded (a refused or reset
    connection); ``drop_after``: every connection after the first n fails (the server went away). ``cut_every`` / ``cut_after``: every k-th connection forwards only the first
    ``cut_after`` bytes of the request (an upload cut midway), then both sides are closed.
    Loopback only, a bounded number of connections, daemon threads: it can never hang a test.
    """

    def __init__(
        self,
        target_port: int,
        drop_every: int = 0,
        cut_every: int = 0,
        cut_after: int = 65536,
        drop_after: int | None = None,
    ) -> None:
        import socket
        import threading

        self.target = ("127.0.0.1", target_port)
        self.drop_every, self.cut_every, self.cut_after = drop_every, cut_every, cut_after
        self.drop_after = drop_after  # every connection after this many fails (the server "dies")
        self.connections = self.dropped = self.cut = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        import socket
        import threading

        while not self._stop.is_set() and self.connections < 100_000:
            try:
                client, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            n = self.connections
            if (self.drop_every and n % self.drop_every == 0) or (
                self.drop_after is not None and n > self.drop_after
            ):
                self.dropped += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()  # RST: the client sees a reset connection
                continue
            limit = self.cut_after if self.cut_every and n % self.cut_every == 0 else None
            threading.Thread(target=self._pipe_pair, args=(client, limit), daemon=True).start()

    def _pipe_pair(self, client: Any, limit: int | None) -> None:
        import socket
        import threading

        try:
            upstream = socket.create_connection(self.target, timeout=30)
        except OSError:
            client.close()
            return
        done = threading.Event()

        def pump(src: Any, dst: Any, budget: int | None) -> None:
            sent = 0
            try:
                while not done.is_set():
                    data = src.recv(65536)
                    if not data:
                        break
                    if budget is not None and sent + len(data) > budget:
                        dst.sendall(data[: max(0, budget - sent)])
                        self.cut += 1
                        break
                    dst.sendall(data)
                    sent += len(data)
            except OSError:
                pass
            finally:
                done.set()
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        t = threading.Thread(target=pump, args=(upstream, client, None), daemon=True)
        t.start()
        pump(client, upstream, limit)
        t.join(timeout=60)
        client.close()
        upstream.close()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=5)


@contextmanager
def small_filesystem(path: Path, size_mb: int) -> Iterator[Path | None]:
    """A tmpfs of ``size_mb`` MB mounted at ``path`` (root with CAP_SYS_ADMIN), else None."""
    path.mkdir(parents=True, exist_ok=True)
    cp = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], capture_output=True, text=True
    )
    if cp.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def resize_filesystem(path: Path, size_mb: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size_mb}m", str(path)], check=True, capture_output=True)


# -- the figures table ----------------------------------------------------------------------------------


def summarize(path: str) -> str:
    """The RELIABILITY.md table from a ``MV_CAMPAIGN_OUT`` file: one row per scenario (summed)."""
    rows: dict[str, dict[str, Any]] = {}
    for line in Path(path).read_text().splitlines():
        rec = json.loads(line)
        row = rows.setdefault(
            rec["scenario"],
            {"trials": 0, "killed": 0, "failures": 0, "data_lost": 0, "seconds": 0.0, "notes": {}},
        )
        row["trials"] += rec["trials"]
        row["killed"] += rec["killed_mid_operation"]
        row["failures"] += rec["failures"]
        row["data_lost"] += rec["data_lost"]
        row["seconds"] += rec["seconds"]
        row["notes"] = rec["notes"]
    out = [
        "| scenario | trials | killed mid-operation | failures | data lost | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in sorted(rows):
        r = rows[name]
        killed = r["killed"] if name.startswith("crash") else "–"
        out.append(
            f"| {name} | {r['trials']} | {killed} | {r['failures']} | {r['data_lost']} | {r['seconds']:.0f} |"
        )
    return "\n".join(out)


if __name__ == "__main__":  # python tests/campaign.py FIGURES.jsonl
    import sys

    print(summarize(sys.argv[1]))
