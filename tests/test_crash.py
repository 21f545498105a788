"""Crash consistency: SIGKILL ``mv commit / checkout / push / pull / gc`` at random moments.

Each trial runs the real command in a subprocess and kills it after a seeded random delay drawn
over the command's measured duration (files are tens of MB so most kills land mid-operation;
the figures count how many did). After every kill:

* ``mv verify`` is clean (local, and ``--remote`` for push);
* every commit that was *reported* done (exit 0 before the kill) rebuilds byte for byte;
* re-running the command completes. A kill inside the few microseconds a ref lock is held leaves
  that lock behind: the re-run then fails with a one-line error naming the lock and how to remove
  it (never a silent steal); the test follows that documented way out and counts it.

Trial counts: ``campaign.trials(short, long)`` (≥ 20 per operation in CI, ≥ 200 with
``MV_CAMPAIGN=long``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from campaign import (
    Figures,
    age_store,
    assert_intact,
    calibrate,
    digests,
    figures,
    head_commit,
    mv,
    remove_stale_locks,
    rng,
    run_and_kill,
    trials,
    verify_clean,
    write_model,
)

pytestmark = pytest.mark.campaign
MB = 24  # big enough that a commit spends most of its time past interpreter start-up


def _rerun(
    args: list[str], cwd: Path, fig: Figures, ok_errors: tuple[str, ...] = (), remote: Path | None = None
) -> dict | None:
    """Re-run after a kill: it must complete (or say why nothing was left to do)."""
    cp = mv(*args, cwd=cwd, check=False)
    if cp.returncode != 0 and ".lock exists" in cp.stderr:
        assert "if none is running, delete that file" in cp.stderr, cp.stderr
        cleared = remove_stale_locks(cwd, *([remote] if remote else []))
        on_remote = remote is not None and any(remote in p.parents for p in cleared)
        key = "stale_remote_locks_cleared" if on_remote else "stale_locks_cleared"
        fig.notes[key] = fig.notes.get(key, 0) + len(cleared)
        cp = mv(*args, cwd=cwd, check=False)
    if cp.returncode != 0:
        assert any(e in cp.stderr for e in ok_errors), f"re-run of mv {' '.join(args)} failed: {cp.stderr}"
        return None
    return json.loads(cp.stdout) if cp.stdout.strip().startswith("{") else {}


def _check_reported(
    root: Path, reported: dict[str, dict[str, str]], scratch: Path, fig: Figures, every: bool
) -> None:
    items = list(reported.items())
    for cid, files in items if every else items[-2:]:
        try:
            assert_intact(root, cid, files, scratch)
        except AssertionError:
            fig.data_lost += 1
            raise


def test_kill_commit(tmp_path: Path) -> None:
    work = tmp_path / "w"
    write_model(work, 0, MB)
    mv("init", cwd=work)
    reported: dict[str, dict[str, str]] = {}
    first = json.loads(mv("commit", "-m", "base", "--json", cwd=work).stdout)
    reported[first["id"]] = digests(work)
    write_model(work, 1, MB, changed=[0, 1])
    reported[json.loads(mv("commit", "-m", "calibrate", "--json", cwd=work).stdout)["id"]] = digests(work)
    write_model(work, 2, MB, changed=[2])
    duration = calibrate(["commit", "-m", "calibrate 2"], work)
    reported[head_commit(work) or ""] = digests(work)
    n = trials(20, 200)
    with figures("crash: commit") as fig:
        for i in range(n):
            r = rng("commit", i)
            write_model(work, 100 + i, MB, changed=r.sample(range(4), 2))
            expected = digests(work)
            out = run_and_kill(["commit", "-m", f"trial {i}", "--json"], work, r.uniform(0.1, 1.1 * duration))
            fig.trials += 1
            if out.finished:
                fig.finished += 1
                assert out.returncode == 0, out.stderr
                reported[json.loads(out.stdout)["id"]] = expected
            else:
                fig.killed_mid_operation += 1
            again = _rerun(["commit", "-m", f"trial {i} again", "--json"], work, fig, ("nothing to commit",))
            if again:
                reported[again["id"]] = expected
            verify_clean(work)
            assert_intact(work, head_commit(work) or "", expected, tmp_path)  # the folder is what HEAD holds
            status = mv("status", "--json", cwd=work).stdout
            assert json.loads(status).get("clean", True), status
            _check_reported(work, reported, tmp_path, fig, every=(i == n - 1))


def test_kill_checkout(tmp_path: Path) -> None:
    work = tmp_path / "w"
    write_model(work, 0, MB)
    mv("init", cwd=work)
    mv("commit", "-m", "a", cwd=work)
    a = head_commit(work) or ""
    files_a = digests(work)
    shutil.rmtree(work / "sub", ignore_errors=True)
    write_model(work, 1, MB, changed=[0, 1, 2])
    (work / "only-in-b.txt").write_text("b")
    mv("commit", "-m", "b", cwd=work)
    b = head_commit(work) or ""
    files_b = digests(work)
    mv("branch", "side", a, cwd=work)
    duration = calibrate(["checkout", "side"], work)
    mv("checkout", "main", cwd=work)
    n = trials(20, 200)
    with figures("crash: checkout") as fig:
        for i in range(n):
            r = rng("checkout", i)
            target, files = ("side", files_a) if i % 2 == 0 else ("main", files_b)
            out = run_and_kill(["checkout", target], work, r.uniform(0.1, 1.1 * duration))
            fig.trials += 1
            if out.finished:
                fig.finished += 1
                assert out.returncode == 0, out.stderr
            else:
                fig.killed_mid_operation += 1
            _rerun(["checkout", target], work, fig)
            assert digests(work) == files, "the re-run did not restore the folder"
            assert json.loads(mv("status", "--json", cwd=work).stdout).get("clean", True)
            verify_clean(work)
            if i == n - 1:
                assert_intact(work, a, files_a, tmp_path)
                assert_intact(work, b, files_b, tmp_path)


def test_kill_push(tmp_path: Path) -> None:
    work = tmp_path / "w"
    remote = tmp_path / "remote"
    write_model(work, 0, MB)
    mv("init", cwd=work)
    mv("commit", "-m", "base", cwd=work)
    mv("remote", "add", "origin", str(remote), cwd=work)
    mv("push", "origin", "main", cwd=work)
    write_model(work, 1, MB, changed=[0, 1])
    mv("commit", "-m", "calibrate", cwd=work)
    duration = calibrate(["push", "origin", "main"], work)
    pushed: dict[str, dict[str, str]] = {head_commit(work) or "": digests(work)}
    n = trials(20, 200)
    with figures("crash: push (local folder remote)") as fig:
        for i in range(n):
            r = rng("push", i)
            write_model(work, 100 + i, MB, changed=r.sample(range(4), 2))
            mv("commit", "-m", f"trial {i}", cwd=work)
            expected = digests(work)
            out = run_and_kill(["push", "origin", "main", "--json"], work, r.uniform(0.1, 1.1 * duration))
            fig.trials += 1
            if out.finished:
                fig.finished += 1
                assert out.returncode == 0, out.stderr
            else:
                fig.killed_mid_operation += 1
            verify_clean(work, "--remote", "origin")  # the remote is consistent right after the kill
            _rerun(["push", "origin", "main", "--json"], work, fig, remote=remote)
            pushed[head_commit(work) or ""] = expected
            verify_clean(work)
            verify_clean(work, "--remote", "origin")
        # Every pushed commit comes back from the remote byte for byte.
        clone = tmp_path / "clone"
        mv("clone", str(remote), str(clone), cwd=tmp_path)
        verify_clean(clone)
        _check_reported(clone, pushed, tmp_path, fig, every=True)


def test_kill_pull(tmp_path: Path) -> None:
    up = tmp_path / "up"
    remote = tmp_path / "remote"
    write_model(up, 0, MB)
    mv("init", cwd=up)
    mv("commit", "-m", "base", cwd=up)
    mv("remote", "add", "origin", str(remote), cwd=up)
    mv("push", "origin", "main", cwd=up)
    down = tmp_path / "down"
    mv("clone", str(remote), str(down), cwd=tmp_path)
    write_model(up, 1, MB, changed=[0, 1, 2])
    mv("commit", "-m", "calibrate", cwd=up)
    mv("push", cwd=up)
    duration = calibrate(["pull"], down)
    reported: dict[str, dict[str, str]] = {head_commit(down) or "": digests(down)}
    n = trials(20, 200)
    with figures("crash: pull") as fig:
        for i in range(n):
            r = rng("pull", i)
            write_model(up, 100 + i, MB, changed=r.sample(range(4), 3))
            mv("commit", "-m", f"trial {i}", cwd=up)
            mv("push", cwd=up)
            expected = digests(up)
            out = run_and_kill(["pull"], down, r.uniform(0.1, 1.1 * duration))
            fig.trials += 1
            if out.finished:
                fig.finished += 1
                assert out.returncode == 0, out.stderr
                reported[head_commit(down) or ""] = expected
            else:
                fig.killed_mid_operation += 1
            verify_clean(down)
            _rerun(["pull"], down, fig)
            assert digests(down) == expected, "the re-run of pull did not bring the folder to the tip"
            reported[head_commit(down) or ""] = expected
            verify_clean(down)
            _check_reported(down, reported, tmp_path, fig, every=(i == n - 1))


def _garbage(work: Path, count: int, seed: int) -> None:
    """``count`` unreachable objects of a few KiB, written with the plumbing, made a day old."""
    from mvstore.codec import KIND_DATA
    from mvstore.ids import hash_bytes
    from mvstore.repo import Repository

    repo = Repository.find(work)
    r = rng("garbage", seed)
    with repo.store.transaction() as txn:
        for _ in range(count):
            data = r.randbytes(r.randrange(1024, 8192))
            txn.put(hash_bytes(data), data, KIND_DATA)
    age_store(work, 86400)


def test_kill_gc(tmp_path: Path) -> None:
    work = tmp_path / "w"
    write_model(work, 0, 8)
    mv("init", cwd=work)
    mv("commit", "-m", "base", cwd=work)
    reported = {head_commit(work) or "": digests(work)}
    write_model(work, 1, 8, changed=[0])
    mv("commit", "-m", "two", cwd=work)
    reported[head_commit(work) or ""] = digests(work)
    _garbage(work, 2000, -1)
    duration = calibrate(["gc", "--prune=1.hour.ago"], work)
    n = trials(20, 200)
    with figures("crash: gc") as fig:
        for i in range(n):
            r = rng("gc", i)
            _garbage(work, 2000, i)  # fresh garbage, a day old, every trial
            out = run_and_kill(["gc", "--prune=1.hour.ago", "--json"], work, r.uniform(0.1, 1.1 * duration))
            fig.trials += 1
            if out.finished:
                fig.finished += 1
                assert out.returncode == 0, out.stderr
            else:
                fig.killed_mid_operation += 1
            verify_clean(work)
            res = _rerun(["gc", "--prune=1.hour.ago", "--json"], work, fig)
            assert res is not None
            report = verify_clean(work)
            assert report["dangling"] == [], "gc left garbage behind"
            assert not any(".gc-" in p.name for p in (work / ".mv" / "objects").rglob("*"))
            _check_reported(work, reported, tmp_path, fig, every=True)
