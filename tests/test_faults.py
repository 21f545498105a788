"""Faults: a full disk, permission denied, a flaky network in front of the S3 server, and damaged
bytes (a truncated object; a flipped bit in a chunk, a manifest, a commit, a ref).

Each must be detected with a clear one-line error (or a precise ``mv verify`` finding), leave
nothing half-applied, lose nothing that was committed, and be recoverable: re-running after the
fault is gone completes, and ``mv repair`` fetches damaged objects back from a remote.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
from pathlib import Path
from typing import Any

import pytest
from campaign import (
    LONG,
    FlakyProxy,
    assert_intact,
    digests,
    figures,
    head_commit,
    mv,
    resize_filesystem,
    small_filesystem,
    verify_clean,
    write_model,
)
from conftest import RepoState, assert_one_line_error, assert_unchanged, run_mv

from mvstore.repo import Repository

pytestmark = pytest.mark.campaign
DROP_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"]


def _commit(work: Path, msg: str) -> str:
    return json.loads(mv("commit", "-m", msg, "--json", cwd=work).stdout)["id"]


# -- disk full ------------------------------------------------------------------------------------------


def test_disk_full_during_commit_checkout_and_push(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small", 48) as fs, figures("fault: disk full (tmpfs)") as fig:
        if fs is None:
            pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN); see test_file_size_limit")
        work = fs / "w"
        write_model(work, 0, 8)
        mv("init", cwd=work)
        first = _commit(work, "fits")
        files_first = digests(work)
        # 1. commit: the new objects do not fit
        write_model(work, 1, 24, changed=[0, 1, 2, 3])
        before = RepoState.of(work)
        cp = mv("commit", "-m", "too big", cwd=work, check=False)
        assert_one_line_error(cp, "No space left on device")
        assert_unchanged(work, before)  # no ref moved, no object visible, no temp file left
        verify_clean(work)
        assert_intact(work, first, files_first, tmp_path)
        fig.trials += 1
        # 2. after making room, the same commit completes
        resize_filesystem(fs, 160)
        second = _commit(work, "now it fits")
        files_second = digests(work)
        verify_clean(work, "--full")
        # 3. checkout on a full disk: refused cleanly, the folder is never half a file
        filler = fs / "filler"
        free = shutil.disk_usage(fs).free
        filler.write_bytes(b"\0" * max(0, free - (2 << 20)))
        head_before = (work / ".mv" / "HEAD").read_bytes()
        cp = mv("checkout", first, cwd=work, check=False)
        assert_one_line_error(cp, "No space left on device")
        assert (work / ".mv" / "HEAD").read_bytes() == head_before
        now = digests(work)
        assert all(now.get(p) in (files_first.get(p), files_second.get(p)) for p in now)  # each file whole
        filler.unlink()
        mv("checkout", first, cwd=work)
        assert digests(work) == files_first
        mv("checkout", "main", cwd=work)
        fig.trials += 1
        # 4. push to a remote on a full disk: the remote stays consistent, the re-run completes
        with small_filesystem(tmp_path / "rsmall", 12) as rfs:
            assert rfs is not None
            remote = rfs / "remote"
            mv("remote", "add", "origin", str(remote), cwd=work)
            cp = mv("push", "origin", "main", cwd=work, check=False)
            assert_one_line_error(cp, "No space left on device")
            if (remote / "mvstore.json").exists():
                verify_clean(work, "--remote", "origin")  # no ref moved to a half-uploaded commit
            resize_filesystem(rfs, 200)
            mv("push", "origin", "main", cwd=work)
            verify_clean(work, "--remote", "origin", "--full")
            clone = tmp_path / "clone"
            mv("clone", str(remote), str(clone), cwd=tmp_path)
            assert_intact(clone, second, files_second, tmp_path)
        fig.trials += 1
        fig.notes = {"faults": ["commit", "checkout", "push"]}


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_file_size_limit_during_commit_and_fetch(tmp_path: Path) -> None:
    """The portable stand-in for a full disk (no mount needed): writes past 1 MB fail with EFBIG."""
    with figures("fault: file size limit (RLIMIT_FSIZE): commit, fetch") as fig:
        _file_size_limit(tmp_path)
        fig.trials = 2


def _file_size_limit(tmp_path: Path) -> None:
    work = tmp_path / "w"
    write_model(work, 0, 1)
    mv("init", cwd=work)
    first = _commit(work, "small")
    write_model(work, 1, 6, changed=[0, 1, 2, 3])
    before = RepoState.of(work)
    cp = run_mv("commit", "-m", "big", cwd=work, check=False, preexec_fn=_limit_file_size)
    assert_one_line_error(cp, "too large")
    assert_unchanged(work, before)
    verify_clean(work)
    second = _commit(work, "big")
    remote = tmp_path / "remote"
    mv("remote", "add", "origin", str(remote), cwd=work)
    mv("push", cwd=work)
    down = tmp_path / "down"
    mv("clone", str(remote), str(down), "--rev", first, cwd=tmp_path)
    cp = run_mv("fetch", "origin", cwd=down, check=False, preexec_fn=_limit_file_size)
    assert_one_line_error(cp)
    verify_clean(down)
    mv("fetch", "origin", cwd=down)
    verify_clean(down, "--full")
    mv("show", second, cwd=down)  # the fetched commit is there, and readable


# -- permission denied ----------------------------------------------------------------------------------


@pytest.mark.skipif(
    shutil.which("setpriv") is None, reason="needs setpriv (util-linux) to drop root's DAC override"
)
def test_permission_denied(tmp_path: Path) -> None:
    work = tmp_path / "w"
    write_model(work, 0, 1)
    mv("init", cwd=work)
    first = _commit(work, "one")
    files = digests(work)
    repo = Repository.find(work)
    with figures("fault: permission denied") as fig:
        # read-only refs: the commit's objects are written, the ref cannot move
        write_model(work, 1, 1, changed=[0])
        heads = work / ".mv" / "refs" / "heads"
        os.chmod(heads, 0o555)
        try:
            cp = run_mv("commit", "-m", "x", cwd=work, check=False, wrapper=DROP_DAC)
            assert_one_line_error(cp, "Permission denied")
        finally:
            os.chmod(heads, 0o755)
        assert head_commit(work) == first
        verify_clean(work)
        fig.trials += 1
        # an unreadable object: verify names it (exit 1), gc refuses, nothing is deleted
        chunk = next(
            c.id
            for t in repo.manifest(
                repo.tree(repo.commit_object(repo.refs.head().id).tree).by_path()["model.safetensors"].id
            ).tensors  # type: ignore[arg-type,union-attr]
            for c in t.chunks
        )
        os.chmod(repo.store.path(chunk), 0o000)
        try:
            cp = run_mv("verify", "--full", cwd=work, check=False, wrapper=DROP_DAC)
            assert cp.returncode == 1
            assert_one_line_error(cp, chunk.hex(), "Permission denied")
            cp = run_mv("gc", "--prune=now", cwd=work, check=False, wrapper=DROP_DAC)
            assert cp.returncode != 0 or repo.store.path(chunk).exists()
        finally:
            os.chmod(repo.store.path(chunk), 0o444)
        fig.trials += 1
        # a read-only remote folder: push fails in one line, the local side is untouched
        remote = tmp_path / "remote"
        mv("remote", "add", "origin", str(remote), cwd=work)
        mv("push", cwd=work)
        mv("commit", "-m", "two", cwd=work)
        for d in [remote, *[p for p in remote.rglob("*") if p.is_dir()]]:
            os.chmod(d, 0o555)
        try:
            cp = run_mv("push", cwd=work, check=False, wrapper=DROP_DAC)
            assert_one_line_error(cp, "Permission denied")
        finally:
            for d in [remote, *[p for p in remote.rglob("*") if p.is_dir()]]:
                os.chmod(d, 0o755)
        verify_clean(work, "--remote", "origin")
        mv("push", cwd=work)
        verify_clean(work, "--remote", "origin", "--full")
        assert_intact(work, first, files, tmp_path)
        fig.trials += 1


# -- a flaky network ------------------------------------------------------------------------------------


def _through(proxy: FlakyProxy) -> list[str]:
    return ["--option", f"endpoint_url={proxy.endpoint_url}"]


def test_s3_server_goes_away_mid_push(tmp_path: Path, moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every connection after the first few fails (more than the client's retries can hide): the
    push fails in one line, the remote (checked directly) is consistent, nothing local changed,
    and once the network is back the same push completes."""
    env = dict(moto_s3.env)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    port = int(moto_s3.endpoint_url.rsplit(":", 1)[1])
    url = moto_s3.make_bucket() + "/dies"
    work = tmp_path / "w"
    write_model(work, 0, 6)
    mv("init", cwd=work)
    first = _commit(work, "one")
    files = digests(work)
    mv("remote", "add", "direct", url, "--option", f"endpoint_url={moto_s3.endpoint_url}", cwd=work, env=env)
    with figures("fault: S3 server goes away mid-push") as fig:
        # the connection at which the network dies moves through the push
        for budget in (2, 4, 8, 16, 32) if LONG else (3, 12):
            proxy = FlakyProxy(port, drop_after=budget)
            try:
                mv("remote", "add", "-f", "flaky", url, *_through(proxy), cwd=work, env=env)
                before = RepoState.of(work)
                cp = mv("push", "flaky", "main", cwd=work, env=env, check=False, timeout=600)
                fig.trials += 1
                if cp.returncode != 0:
                    fig.notes["failed_in_one_line"] = fig.notes.get("failed_in_one_line", 0) + 1
                    assert_one_line_error(cp)
                    assert RepoState.of(work).refs == before.refs  # no local ref moved
                rc = mv("verify", "--remote", "direct", "--full", cwd=work, env=env, check=False)
                assert rc.returncode in (0, 2), rc.stdout  # 2: nothing pushed yet (no marker)
                proxy.drop_after = None  # the network is back
                mv("push", "flaky", "main", cwd=work, env=env, timeout=600)
                verify_clean(work, "--remote", "direct", "--full", env=env)
            finally:
                proxy.close()
            write_model(work, budget, 6, changed=[budget % 4])
            _commit(work, f"after {budget}")
        assert fig.notes.get("failed_in_one_line", 0) >= 1, "the proxy never made a push fail"
    assert_intact(work, first, files, tmp_path)


@pytest.mark.parametrize("mode", ["drop", "cut"])
def test_flaky_s3_connection(
    tmp_path: Path, moto_s3: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy in front of the S3 server drops every 3rd connection, or cuts every 2nd one after
    64 KiB (an upload cut midway). Pushes and clones through it either succeed or fail in one line;
    the remote, checked directly, is always consistent; repeating the command eventually succeeds."""
    env = dict(moto_s3.env)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    port = int(moto_s3.endpoint_url.rsplit(":", 1)[1])
    proxy = FlakyProxy(port, drop_every=3 if mode == "drop" else 0, cut_every=2 if mode == "cut" else 0)
    url = moto_s3.make_bucket() + "/flaky"
    direct = ["--option", f"endpoint_url={moto_s3.endpoint_url}"]
    work = tmp_path / "w"
    write_model(work, 0, 6)
    mv("init", cwd=work)
    mv("commit", "-m", "one", cwd=work)
    mv("remote", "add", "flaky", url, *_through(proxy), cwd=work, env=env)
    mv("remote", "add", "direct", url, *direct, cwd=work, env=env)
    failures = 0
    try:
        with figures(f"fault: flaky S3 connection ({mode})") as fig:
            for step in range(3):
                if step:
                    write_model(work, step, 6, changed=[step])
                    mv("commit", "-m", f"step {step}", cwd=work)
                # The proxy fails connections, not requests: how many attempts a push needs depends
                # on how the client pools connections, so the loop is bounded, not exact.
                for _attempt in range(12):
                    fig.trials += 1
                    cp = mv("push", "flaky", "main", cwd=work, env=env, check=False, timeout=600)
                    if (
                        mv(
                            "verify", "--remote", "direct", "--json", cwd=work, env=env, check=False
                        ).returncode
                    ) not in (0, 2):
                        fig.failures += 1
                        raise AssertionError("the remote is inconsistent after a failed push")
                    if cp.returncode == 0:
                        break
                    failures += 1
                    assert_one_line_error(cp)
                else:
                    raise AssertionError("push never got through the flaky proxy")
            verify_clean(work, "--remote", "direct", "--full", env=env)
            for _attempt in range(12):
                fig.trials += 1
                dest = tmp_path / "clone"
                cp = mv(
                    "clone", url, str(dest), *_through(proxy), cwd=tmp_path, env=env, check=False, timeout=600
                )
                if cp.returncode == 0:
                    break
                failures += 1
                assert_one_line_error(cp)
                assert not dest.exists(), "a failed clone left a half-made repository"
            else:
                raise AssertionError("clone never got through the flaky proxy")
            assert digests(dest) == digests(work)
            verify_clean(dest, "--full")
            fig.notes = {
                "failed_attempts_reported_in_one_line": failures,
                "connections": proxy.connections,
                "dropped": proxy.dropped,
                "cut": proxy.cut,
            }
    finally:
        proxy.close()
    assert proxy.dropped + proxy.cut > 0, "the proxy never failed anything: the test tested nothing"


# -- damaged bytes -----------------------------------------------------------------------------------------


def _damage_repo(tmp_path: Path) -> tuple[Path, Path, dict[str, dict[str, str]]]:
    work = tmp_path / "w"
    write_model(work, 0, 3)
    mv("init", cwd=work)
    commits = {}
    commits[_commit(work, "one")] = digests(work)
    write_model(work, 1, 3, changed=[1])
    commits[_commit(work, "two")] = digests(work)
    remote = tmp_path / "remote"
    mv("remote", "add", "origin", str(remote), cwd=work)
    mv("push", cwd=work)
    return work, remote, commits


def _victims(repo: Repository) -> dict[str, Path]:
    head = repo.refs.head().id
    assert head is not None
    commit = repo.commit_object(head)
    entry = repo.tree(commit.tree).by_path()["model.safetensors"]
    assert entry.id is not None
    manifest = repo.manifest(entry.id)
    chunk = next(c.id for t in manifest.tensors for c in t.chunks)
    return {
        "chunk": repo.store.path(chunk),
        "manifest": repo.store.path(entry.id),
        "commit": repo.store.path(head),
        "tree": repo.store.path(commit.tree),
    }


def _flip(path: Path, offset: int) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x04
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        "truncated-chunk",
        "flipped-chunk",
        "flipped-manifest",
        "flipped-commit",
        "flipped-tree",
        "flipped-ref",
        "garbled-ref",
    ],
)
def test_damage_is_detected_and_repaired(tmp_path: Path, damage: str) -> None:
    work, _remote, commits = _damage_repo(tmp_path)
    repo = Repository.find(work)
    victims = _victims(repo)
    ref = work / ".mv" / "refs" / "heads" / "main"
    with figures(f"fault: {damage}") as fig:
        fig.trials = 1
        if damage == "truncated-chunk":
            p = victims["chunk"]
            os.chmod(p, 0o644)
            p.write_bytes(p.read_bytes()[:-100])
        elif damage == "flipped-ref":
            text = ref.read_text()
            ref.write_text(text[:10] + ("0" if text[10] != "0" else "1") + text[11:])  # still hex
        elif damage == "garbled-ref":
            ref.write_bytes(b"\xff" + ref.read_bytes()[1:])
        else:
            _flip(victims[damage.split("-")[1]], -7)
        full = damage == "flipped-chunk"  # the default pass trusts chunk bytes; --full re-hashes them
        cp = mv("verify", *(["--full"] if full else []), cwd=work, check=False)
        assert cp.returncode == 1, f"{damage} went unnoticed:\n{cp.stdout}"
        line = assert_one_line_error(cp)
        if damage != "flipped-ref" and damage != "garbled-ref":
            what = damage.split("-")[1]
            assert victims[what].parent.name + victims[what].name in line, line
        if damage == "flipped-chunk":
            assert mv("verify", cwd=work).returncode == 0  # documented: structure-only by default
            cp = mv("checkout", "HEAD~1", cwd=work, check=False)  # every read re-hashes
            assert_one_line_error(cp, "match its id")
        # nothing else was lost: the commit that does not use the damaged object is intact
        if damage in ("flipped-chunk", "truncated-chunk"):
            pass
        # repair: from the remote (objects) or the reflog (refs)
        out = json.loads(mv("repair", *(["--full"] if full else []), "--json", cwd=work).stdout)
        assert out["ok"], out
        verify_clean(work, "--full")
        for cid, files in commits.items():
            assert_intact(work, cid, files, tmp_path)
        assert head_commit(work) == list(commits)[-1]
