"""Concurrency: N ≥ 4 processes committing to one repository, N clients pushing to one remote, and
gc racing a writer frozen (SIGSTOP) between writing its objects and moving its ref.

"No lost update" means: every commit reported done is an ancestor of the final branch tip and in
its reflog; every other attempt failed with a clear conflict error (the ref moved, non-fast-forward,
or a ref lock held). ``mv verify`` (local and ``--remote``) is clean afterwards.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from campaign import (
    LONG,
    age_files,
    age_store,
    ancestors,
    assert_intact,
    digests,
    figures,
    head_commit,
    mv,
    rng,
    spawn,
    trials,
    verify_clean,
    write_model,
)

from mvstore.ids import ObjectId
from mvstore.repo import Repository

pytestmark = pytest.mark.campaign
N = 4
CONFLICT_WORDS = ("moved", "non-fast-forward", "commits you don't", "exists", "created on the remote")


def _file_at(repo: Repository, commit: str, path: str) -> bytes:
    """One file of a commit, rebuilt from the store (every chunk verified on read)."""
    from mvstore.ops.materialize import read_entry

    tree = repo.tree(repo.commit_object(ObjectId.from_hex(commit)).tree)
    return read_entry(repo, tree.by_path()[path])


# -- N committers, one repository ----------------------------------------------------------------------


def _committer(args: tuple[str, int, int, Any, Any]) -> list[tuple[str, str, str]]:
    """Worker: each round write my own file and commit only it; report (outcome, id or error, digest)."""
    root, me, rounds, barrier, seed = args
    import mvstore
    from mvstore.errors import MvError

    os.environ["MV_AUTHOR"] = f"Worker {me} <w{me}@example.com>"
    r = rng(seed, me)
    out = []
    for n in range(rounds):
        barrier.wait(timeout=120)
        data = r.randbytes(200_000 + r.randrange(50_000))
        name = f"w{me}.bin"
        Path(root, name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        try:
            cid = mvstore.Repo(root).commit(f"worker {me} round {n}", paths=[name])
            out.append(("done", cid, digest))
        except MvError as e:
            out.append(("rejected", str(e), digest))
    return out


def test_concurrent_committers_lose_nothing(tmp_path: Path) -> None:
    work = tmp_path / "w"
    write_model(work, 0, 1)
    mv("init", cwd=work)
    mv("commit", "-m", "base", cwd=work)
    rounds = trials(15, 100)
    ctx = mp.get_context("fork")
    barrier = ctx.Manager().Barrier(N)
    with figures(f"concurrency: {N} committers, one repository") as fig, ctx.Pool(N) as pool:
        results = pool.map(_committer, [(str(work), i, rounds, barrier, "commit") for i in range(N)])
        fig.trials = rounds
        done = [(i, cid, d) for i, rs in enumerate(results) for o, cid, d in rs if o == "done"]
        rejected = [msg for rs in results for o, msg, _d in rs if o == "rejected"]
        fig.finished = len(done)
        fig.notes = {
            "attempts": N * rounds,
            "committed": len(done),
            "rejected_with_clear_error": len(rejected),
        }
        for msg in rejected:
            assert any(w in msg for w in CONFLICT_WORDS), f"unclear rejection: {msg}"
        history = ancestors(work, "main")
        lost = [cid for _i, cid, _d in done if cid not in history]
        fig.data_lost = len(lost)
        assert not lost, f"{len(lost)} reported commits are not in main's history"
        log = (work / ".mv" / "logs" / "refs" / "heads" / "main").read_text()
        assert all(cid in log for _i, cid, _d in done)
        repo = Repository.find(work)
        for i, cid, digest in done:  # each reported commit holds exactly the bytes its writer wrote
            got = _file_at(repo, cid, f"w{i}.bin")
            assert hashlib.sha256(got).hexdigest() == digest
        verify_clean(work, "--full")
        assert len(done) >= rounds, "every round should let at least one writer through"


# -- N pushers, one remote --------------------------------------------------------------------------


def _pusher(args: tuple[str, int, int, Any, dict[str, str]]) -> list[tuple[str, str, str]]:
    """Worker: each round catch up with the remote, commit my own file, push; report the outcome."""
    root, me, rounds, barrier, env = args
    os.environ.update(env)
    os.environ["MV_AUTHOR"] = f"Pusher {me} <p{me}@example.com>"
    import mvstore
    from mvstore.errors import MvError
    from mvstore.ops import sync
    from mvstore.ops.checkout import update_worktree

    r = rng("push", me)
    out = []
    for n in range(rounds):
        repo = Repository.find(root)
        sync.fetch(repo, "origin", ["main"])
        tip = repo.refs.read("refs/remotes/origin/main")
        assert tip is not None
        update_worktree(repo, tip, force=True)
        repo.refs.update("refs/heads/main", tip, message="catch up")
        data = r.randbytes(100_000)
        Path(root, f"p{me}.bin").write_bytes(data)
        cid = mvstore.Repo(root).commit(f"pusher {me} round {n}", paths=[f"p{me}.bin"])
        barrier.wait(timeout=180)
        try:
            sync.push(Repository.find(root), "origin", ["main"])
            out.append(("done", cid, hashlib.sha256(data).hexdigest()))
        except MvError as e:
            out.append(("rejected", str(e), ""))
    return out


def _remote_kinds() -> list[str]:
    return ["folder", "moto"] + (["seaweed"] if LONG else [])


@pytest.fixture(params=_remote_kinds())
def shared_remote(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    if request.param == "folder":
        return {"kind": "folder", "url": str(tmp_path / "remote"), "options": [], "env": {}, "atomic": True}
    server = request.getfixturevalue("moto_s3" if request.param == "moto" else "seaweed_s3")
    for k, v in server.env.items():
        monkeypatch.setenv(k, v)
    return {
        "kind": request.param,
        "url": server.make_bucket() + "/shared",
        "options": ["--option", f"endpoint_url={server.endpoint_url}"],
        "env": dict(server.env),
        "atomic": server.atomic_conditional_writes,
    }


def test_concurrent_pushers_lose_nothing(tmp_path: Path, shared_remote: dict[str, Any]) -> None:
    url, env = shared_remote["url"], shared_remote["env"]
    seed = tmp_path / "seed"
    write_model(seed, 0, 1)
    mv("init", cwd=seed)
    mv("commit", "-m", "base", cwd=seed)
    mv("remote", "add", "origin", url, *shared_remote["options"], cwd=seed, env=env)
    mv("push", "origin", "main", cwd=seed, env=env)
    clients = []
    for i in range(N):
        c = tmp_path / f"c{i}"
        mv("clone", url, str(c), *shared_remote["options"], cwd=tmp_path, env=env)
        clients.append(str(c))
    rounds = trials(8, 100) if shared_remote["kind"] == "folder" else trials(5, 100)
    ctx = mp.get_context("fork")
    barrier = ctx.Manager().Barrier(N)
    with (
        figures(f"concurrency: {N} pushers, one remote ({shared_remote['kind']})") as fig,
        ctx.Pool(N) as pool,
    ):
        results = pool.map(_pusher, [(c, i, rounds, barrier, env) for i, c in enumerate(clients)])
        fig.trials = rounds
        done = [(i, cid, d) for i, rs in enumerate(results) for o, cid, d in rs if o == "done"]
        rejected = [msg for rs in results for o, msg, _d in rs if o == "rejected"]
        fig.finished = len(done)
        fig.notes = {"attempts": N * rounds, "pushed": len(done), "rejected_with_clear_error": len(rejected)}
        for msg in rejected:
            assert any(w in msg for w in CONFLICT_WORDS), f"unclear rejection: {msg}"
        check = tmp_path / "check"
        mv("clone", url, str(check), *shared_remote["options"], cwd=tmp_path, env=env)
        history = ancestors(check, "main")
        lost = [cid for _i, cid, _d in done if cid not in history]
        if shared_remote["atomic"]:
            fig.data_lost = len(lost)
            assert not lost, f"{len(lost)} reported pushes are not in the remote's history"
        else:
            # moto checks-then-writes without a lock (tests/servers.py): two conditional writes can
            # both succeed there, which real S3 and SeaweedFS refuse. Only the semantics are tested.
            fig.notes["lost_to_non_atomic_server"] = len(lost)
        verify_clean(check, "--remote", "origin", "--full", env=env)
        verify_clean(check, "--full")
        repo = Repository.find(check)
        for i, cid, digest in done:
            if cid in history:
                assert hashlib.sha256(_file_at(repo, cid, f"p{i}.bin")).hexdigest() == digest
        assert len(done) >= rounds


# -- gc against a frozen writer ------------------------------------------------------------------------


def _objects(root: Path) -> dict[str, float]:
    out = {}
    for p in (root / ".mv" / "objects").rglob("*"):
        if p.is_file():
            out[p.relative_to(root / ".mv" / "objects").as_posix()] = p.stat().st_mtime
    return out


def _needed(work: Path, tmp: Path) -> tuple[set[str], set[str]]:
    """Object files the next commit of ``work`` needs, minus the commit itself (time-dependent),
    found by committing a copy of the repository: (the tree and what its entries name directly,
    the chunks below those)."""
    probe = tmp / f"probe-{time.monotonic_ns()}"
    shutil.copytree(work, probe, symlinks=True)
    mv("commit", "-m", "probe", cwd=probe)
    from mvstore.ops.sync import object_closure

    repo = Repository.find(probe)
    cid = ObjectId.from_hex(head_commit(probe) or "")
    tree = repo.commit_object(cid).tree
    direct = {tree} | {e.id for e in repo.tree(tree).entries if e.id is not None}
    closure = set(object_closure(repo, [cid])) - {cid}
    shutil.rmtree(probe)

    def names(ids: set[ObjectId]) -> set[str]:
        return {f"{o.hex()[:2]}/{o.hex()[2:]}" for o in ids}

    return names(direct), names(closure - direct)


def _freeze_when(proc: Any, ready: Any, timeout: float = 60) -> bool:
    """SIGSTOP ``proc`` as soon as ``ready()`` holds (tight polling); False if it finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            os.killpg(proc.pid, signal.SIGSTOP)
            return True
    raise AssertionError("the writer never reached the freeze point")


@pytest.mark.parametrize("reuse", ["no", "objects", "stat-cache"])
def test_gc_against_a_frozen_commit(tmp_path: Path, reuse: str) -> None:
    """Freeze ``mv commit`` after its objects are in place and before its ref moves; run gc with a
    one-day grace period; resume: the commit is complete and readable. ``reuse``: the objects are
    new ("no"); or old unreachable garbage of an abandoned commit that this one writes again
    ("objects": refreshed one by one); or that it reuses from the stat cache ("stat-cache": only
    the tree and the manifests are refreshed — the chunks below them stay days old and survive
    because a recent object keeps everything it references)."""
    work = tmp_path / "w"
    write_model(work, 0, 16)
    mv("init", cwd=work)
    mv("commit", "-m", "base", cwd=work)
    ref = work / ".mv" / "refs" / "heads" / "main"
    caught = missed = 0
    attempts = trials(3, 10)
    with figures(f"gc vs frozen commit (reuse: {reuse})") as fig:
        # Freezing inside a window of milliseconds is probabilistic: bounded retries until it lands.
        for attempt in range(60):
            if caught >= attempts:
                break
            write_model(work, 100 + attempt, 16, changed=[0, 1])
            direct, below = _needed(work, tmp_path)
            needed = direct | below
            if reuse != "no":  # the same content was committed before and abandoned: old, unreachable
                files = [p for p in work.rglob("*") if p.is_file() and ".mv" not in p.parts]
                age_files(files, 3600)  # not "racy": the stat cache will vouch for them
                parent = head_commit(work)
                mv("commit", "-m", "abandoned", cwd=work)
                Repository.find(work).refs.update(
                    "refs/heads/main", ObjectId.from_hex(parent or ""), message="drop"
                )
                shutil.rmtree(work / ".mv" / "logs")  # nothing but freshness may protect them
                age_store(work, 3 * 86400)
                if reuse == "objects":
                    (work / ".mv" / "index").unlink(missing_ok=True)
            watched = direct if reuse == "stat-cache" else needed
            before = ref.read_text()
            t0 = time.time()
            objdir = work / ".mv" / "objects"

            def ready(
                before: str = before, t0: float = t0, watched: set[str] = watched, objdir: Path = objdir
            ) -> bool:
                if ref.read_text() != before:
                    return False
                try:
                    return all((objdir / n).stat().st_mtime >= t0 - 1 for n in watched)
                except FileNotFoundError:
                    return False

            proc = spawn(["commit", "-m", f"frozen {attempt}", "--json"], work)
            frozen = _freeze_when(proc, ready)
            if not frozen or ref.read_text() != before:
                missed += 1
                if frozen:
                    os.killpg(proc.pid, signal.SIGCONT)
                proc.communicate(timeout=120)
                continue
            try:
                if reuse == "stat-cache":  # the chunks really are old: only the closure rule keeps them
                    old = [n for n in below if (objdir / n).stat().st_mtime < time.time() - 86400]
                    fig.notes["old_chunks_kept_by_closure"] = fig.notes.get(
                        "old_chunks_kept_by_closure", 0
                    ) + len(old)
                out = mv("gc", "--prune=1.day.ago", "--expire-reflog=now", "--json", cwd=work)
                present = _objects(work)
                assert needed <= set(present), "gc removed an object the frozen commit needs"
            finally:
                os.killpg(proc.pid, signal.SIGCONT)
            _stdout, stderr = proc.communicate(timeout=120)
            assert proc.returncode == 0, stderr
            caught += 1
            fig.trials += 1
            fig.notes.setdefault("gc_removed", []).append(json.loads(out.stdout)["removed_objects"])
            files_now = digests(work)
            verify_clean(work, "--full")
            assert_intact(work, head_commit(work) or "", files_now, tmp_path)
        fig.notes["freeze_missed_window"] = missed
        assert caught >= attempts, f"froze inside the window only {caught} times in {caught + missed}"
        if reuse == "stat-cache":
            assert fig.notes.get("old_chunks_kept_by_closure", 0) > 0, "the stat cache was not used"


def test_gc_against_a_frozen_push(tmp_path: Path) -> None:
    """Freeze ``mv push`` once its objects are on a (local folder) remote and before the ref
    moves — both for new objects and for old orphans it reuses — run ``gc --remote``, resume."""
    work = tmp_path / "w"
    remote = tmp_path / "remote"
    write_model(work, 0, 8)
    mv("init", cwd=work)
    mv("commit", "-m", "base", cwd=work)
    mv("remote", "add", "origin", str(remote), cwd=work)
    mv("push", cwd=work)
    ref = remote / "refs" / "heads" / "main"
    caught = missed = 0
    attempts = trials(3, 10)
    with figures("gc --remote vs frozen push (folder remote)") as fig:
        for attempt in range(60):  # bounded retries: freezing inside a millisecond window is luck
            if caught >= attempts:
                break
            reuse = attempt % 2 == 1
            write_model(work, 200 + attempt, 8, changed=[attempt % 4])
            mv("commit", "-m", f"c{attempt}", cwd=work)
            before = ref.read_text()
            if reuse:  # an interrupted push left every object; make them old orphans
                mv("push", cwd=work)
                ref.write_text(before)
                age_files([p for p in remote.rglob("*") if p.is_file() and "refs" not in p.parts], 3 * 86400)
            listed = {p for p in remote.rglob("*") if p.is_file()}
            t0 = time.time()

            def ready(
                before: str = before, t0: float = t0, reuse: bool = reuse, listed: set[Path] = listed
            ) -> bool:
                if ref.read_text() != before:
                    return False
                files = [p for p in remote.rglob("*") if p.is_file() and "refs" not in p.parts]
                if reuse:
                    return all(p.stat().st_mtime >= t0 - 1 for p in files if p.suffix != ".idx")
                return any(p.suffix == ".idx" and p not in listed for p in files)

            proc = spawn(["push", "--json"], work)
            frozen = _freeze_when(proc, ready)
            if not frozen or ref.read_text() != before:
                missed += 1
                if frozen:
                    os.killpg(proc.pid, signal.SIGCONT)
                proc.communicate(timeout=120)
                continue
            try:
                mv("gc", "--remote", "origin", "--prune=1.day.ago", cwd=work)
            finally:
                os.killpg(proc.pid, signal.SIGCONT)
            _out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            caught += 1
            fig.trials += 1
            verify_clean(work, "--remote", "origin", "--full")
            clone = tmp_path / f"clone{attempt}"
            mv("clone", str(remote), str(clone), cwd=tmp_path)
            assert digests(clone) == digests(work)
            shutil.rmtree(clone)
        fig.notes["freeze_missed_window"] = missed
        assert caught >= attempts


def test_gc_against_a_frozen_push_to_s3(
    tmp_path: Path, moto_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same against the S3 server: freeze when the pack index is listed, gc, resume."""
    from mvstore.ops.sync import open_backend

    env = dict(moto_s3.env)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    url = moto_s3.make_bucket() + "/frozen"
    options = {"client_kwargs": {"endpoint_url": moto_s3.endpoint_url}}
    backend = open_backend(url, options)
    work = tmp_path / "w"
    write_model(work, 0, 4)
    mv("init", cwd=work)
    mv("commit", "-m", "base", cwd=work)
    mv("remote", "add", "origin", url, "--option", f"endpoint_url={moto_s3.endpoint_url}", cwd=work, env=env)
    mv("push", cwd=work, env=env)
    caught = missed = 0
    with figures("gc --remote vs frozen push (S3 server)") as fig:
        for attempt in range(40):  # bounded retries: the freeze window is a few requests long
            if caught >= trials(2, 5):
                break
            write_model(work, 300 + attempt, 4, changed=[attempt % 4])
            mv("commit", "-m", f"c{attempt}", cwd=work)
            before = backend.read("refs/heads/main")
            idx_before = {n for n in backend.list("packs/") if n.endswith(".idx")}

            def ready(idx_before: set[str] = idx_before) -> bool:
                return bool({n for n in backend.list("packs/") if n.endswith(".idx")} - idx_before)

            proc = spawn(["push", "--json"], work, env)
            frozen = _freeze_when(proc, ready, timeout=120)
            if not frozen or backend.read("refs/heads/main") != before:
                missed += 1
                if frozen:
                    os.killpg(proc.pid, signal.SIGCONT)
                proc.communicate(timeout=120)
                continue
            try:
                mv("gc", "--remote", "origin", "--prune=1.hour.ago", cwd=work, env=env)
            finally:
                os.killpg(proc.pid, signal.SIGCONT)
            _out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            caught += 1
            fig.trials += 1
            verify_clean(work, "--remote", "origin", "--full", env=env)
        fig.notes["freeze_missed_window"] = missed
        assert caught >= trials(2, 5)
