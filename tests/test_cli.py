"""The ``mv`` command, end to end, through real subprocesses of the installed console scripts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import (
    BIN_DIR,
    MV,
    assert_one_line_error,
    cli_env,
    copy_tree,
    files_of,
    rand_bytes,
    run_mv,
    save_st,
)
from safetensors.torch import load_file

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _log(cwd: Path, *args: str) -> list[dict]:
    return json.loads(run_mv("log", "--json", *args, cwd=cwd).stdout)


# --- the user story on the real MiniLM model ----------------------------------------------------------------


def test_user_story_on_minilm(minilm_dir: Path, tmp_path: Path) -> None:
    work = copy_tree(minilm_dir, tmp_path / "my-model")
    v1 = files_of(work)

    out = run_mv("init", cwd=work).stdout
    assert ".mv" in out and (work / ".mv" / "HEAD").is_file()
    out = run_mv("commit", "-m", "step 1000", "--meta", "step=1000", "--meta", "loss=2.31",
                 "--meta", "dataset=sha256:abc", "--meta", "ok=true", cwd=work).stdout
    assert "step 1000" in out
    assert json.loads(run_mv("status", "--json", cwd=work).stdout)["clean"]

    # ...training writes new weights: only the pooler moves.
    st = load_file(str(work / "model.safetensors"))
    old_pooler = st["pooler.dense.weight"].clone()
    st["pooler.dense.weight"] = old_pooler + 0.01 * torch.randn(old_pooler.shape, generator=torch.Generator().manual_seed(0))
    save_st(work / "model.safetensors", st, metadata={"format": "pt"})
    v2 = files_of(work)
    status = json.loads(run_mv("status", "--json", cwd=work).stdout)
    assert status["modified"] == ["model.safetensors"] and not status["clean"]
    run_mv("commit", "-m", "step 2000", "--meta", "step=2000", cwd=work)

    # log: text and JSON, newest first, metadata keeps its types.
    text = run_mv("log", cwd=work).stdout
    assert text.index("step 2000") < text.index("step 1000")
    assert "loss=2.31" in text and "step=1000" in text
    log = _log(work)
    assert [e["message"] for e in log] == ["step 2000", "step 1000"]
    assert log[1]["meta"] == {"step": 1000, "loss": 2.31, "dataset": "sha256:abc", "ok": True}
    assert type(log[1]["meta"]["step"]) is int and type(log[1]["meta"]["loss"]) is float
    assert log[0]["parents"] == [log[1]["id"]] and log[1]["parents"] == []
    assert all(HEX64.match(e["id"]) for e in log)
    assert [e["id"] for e in _log(work, "-n", "1")] == [log[0]["id"]]
    assert [e["id"] for e in _log(work, "HEAD~1")] == [log[1]["id"]]
    assert len(run_mv("log", "--oneline", cwd=work).stdout.strip().splitlines()) == 2

    # diff with numerical change stats.
    text = run_mv("diff", "HEAD~1", "HEAD", "--stats", cwd=work).stdout
    assert "model.safetensors" in text and "pooler.dense.weight" in text and "rel" in text
    assert "encoder.layer.0" not in text
    d = json.loads(run_mv("diff", "HEAD~1", "HEAD", "--stats", "--json", cwd=work).stdout)
    assert (d["old"], d["new"]) == (log[1]["id"], log[0]["id"])
    assert [f["path"] for f in d["files"]] == ["model.safetensors"]
    (tc,) = d["files"][0]["tensors"]
    assert tc["name"] == "pooler.dense.weight" and tc["status"] == "changed"
    assert tc["shape"] == [384, 384] and tc["dtype"] == "F32"
    delta = st["pooler.dense.weight"].double() - old_pooler.double()
    assert tc["rel_change"] == pytest.approx(float(delta.norm() / old_pooler.double().norm()), rel=1e-6)
    assert tc["max_abs_diff"] == pytest.approx(float(delta.abs().max()), rel=1e-6)
    assert tc["changed_bytes"] == 384 * 384 * 4

    # tags and the pin
    run_mv("tag", "v1.0.0", "HEAD~1", cwd=work)
    run_mv("tag", "v2.0.0", cwd=work)
    assert run_mv("tag", "-l", cwd=work).stdout.split() == ["v1.0.0", "v2.0.0"]
    pin = run_mv("rev-parse", "v1.0.0", cwd=work).stdout.strip()
    assert pin == log[1]["id"]

    # stats: the unchanged 99% is stored once.
    s = json.loads(run_mv("stats", "--json", cwd=work).stdout)
    assert s["commits"] == 2
    assert s["logical_bytes"] == sum(map(len, v1.values())) + sum(map(len, v2.values()))
    assert s["dedup_ratio"] > 1.9
    assert s["stored_bytes"] < 1.05 * sum(map(len, v1.values()))
    assert "dedup ratio" in run_mv("stats", cwd=work).stdout

    # checkout the pin: byte for byte, HEAD detached there.
    run_mv("checkout", "v1.0.0", cwd=work)
    assert files_of(work) == v1
    st_json = json.loads(run_mv("status", "--json", cwd=work).stdout)
    assert st_json["clean"] and st_json["branch"] is None and st_json["head"] == pin

    # export elsewhere, byte for byte
    run_mv("export", "v2.0.0", tmp_path / "srv" / "model", cwd=work)
    assert files_of(tmp_path / "srv" / "model") == v2

    # back to the branch
    run_mv("checkout", "main", cwd=work)
    assert files_of(work) == v2
    assert json.loads(run_mv("status", "--json", cwd=work).stdout)["branch"] == "main"
    # one more commit lands on main, not on a detached HEAD
    (work / "notes.txt").write_text("after checkout main\n")
    run_mv("commit", "-m", "notes", cwd=work)
    assert run_mv("rev-parse", "main", cwd=work).stdout.strip() == _log(work)[0]["id"]


# --- a small model for everything else ------------------------------------------------------------------------


def _write_small(work: Path, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    save_st(work / "model.safetensors", {
        "emb.weight": torch.randn(100, 64, generator=g),
        "ln.weight": torch.ones(64) * seed,
        "head.weight": torch.randn(10, 64, generator=g).bfloat16(),
    }, metadata={"format": "pt"})
    (work / "config.json").write_text(json.dumps({"hidden": 64, "seed": seed}) + "\n")
    (work / "tokenizer.json").write_bytes(rand_bytes(10_000, 7))
    (work / "sub").mkdir(exist_ok=True)
    (work / "sub" / "extra.txt").write_text(f"extra {seed}\n")


@pytest.fixture
def two_commits(work: Path) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    _write_small(work, 1)
    v1 = files_of(work)
    run_mv("init", cwd=work)
    run_mv("commit", "-m", "one", cwd=work)
    run_mv("tag", "v1.0.0", cwd=work)
    _write_small(work, 2)
    v2 = files_of(work)
    run_mv("commit", "-m", "two", cwd=work)
    return work, v1, v2


def test_checkout_refuses_to_overwrite_uncommitted_changes(two_commits) -> None:
    work, v1, _v2 = two_commits
    save_st(work / "model.safetensors", {"mine": torch.ones(3)})  # uncommitted work
    mine = (work / "model.safetensors").read_bytes()
    cp = run_mv("checkout", "v1.0.0", cwd=work, check=False)
    line = assert_one_line_error(cp, "model.safetensors")
    assert "uncommitted" in line
    assert (work / "model.safetensors").read_bytes() == mine
    assert (work / "config.json").read_bytes() != v1["config.json"], "nothing is half-applied"
    run_mv("checkout", "--force", "v1.0.0", cwd=work)
    assert files_of(work) == v1


def test_checkout_protects_untracked_and_deleted_work(two_commits) -> None:
    work, v1, _v2 = two_commits
    (work / "new.txt").write_text("committed\n")
    run_mv("commit", "-m", "three", cwd=work)
    # the target would delete a file that has local edits
    (work / "new.txt").write_text("edited, not committed\n")
    assert_one_line_error(run_mv("checkout", "v1.0.0", cwd=work, check=False), "new.txt")
    assert (work / "new.txt").read_text() == "edited, not committed\n"
    run_mv("checkout", "-f", "v1.0.0", cwd=work)
    assert files_of(work) == v1
    # the target would overwrite an untracked file
    (work / "new.txt").write_text("untracked and precious\n")
    assert_one_line_error(run_mv("checkout", "main", cwd=work, check=False), "new.txt")
    assert (work / "new.txt").read_text() == "untracked and precious\n"


def test_checkout_force_restores_a_broken_weights_file(two_commits) -> None:
    """A training crash left a truncated/garbage model.safetensors: --force must bring it back."""
    work, v1, _v2 = two_commits
    (work / "model.safetensors").write_bytes(b"garbage, not a safetensors file at all")
    run_mv("checkout", "--force", "v1.0.0", cwd=work)
    assert files_of(work) == v1


def test_status_with_a_broken_weights_file(two_commits) -> None:
    """status is what a user runs to find out what is wrong: it reports the file, it does not fail."""
    work, _v1, _v2 = two_commits
    (work / "model.safetensors").write_bytes((work / "model.safetensors").read_bytes()[:1000])  # truncated
    st = json.loads(run_mv("status", "--json", cwd=work).stdout)
    assert st["modified"] == ["model.safetensors"]


def test_checkout_keeps_unrelated_local_edits(two_commits) -> None:
    work, v1, _v2 = two_commits
    # tokenizer.json is the same in both commits: a local edit to it survives a checkout.
    (work / "tokenizer.json").write_bytes(b"edited locally")
    (work / "untracked.txt").write_text("mine\n")
    run_mv("checkout", "v1.0.0", cwd=work)
    assert (work / "tokenizer.json").read_bytes() == b"edited locally"
    assert (work / "untracked.txt").read_text() == "mine\n"
    assert (work / "model.safetensors").read_bytes() == v1["model.safetensors"]


def test_checkout_paths(two_commits) -> None:
    work, v1, v2 = two_commits
    run_mv("checkout", "v1.0.0", "model.safetensors", cwd=work)
    now = files_of(work)
    assert now["model.safetensors"] == v1["model.safetensors"]
    assert now["config.json"] == v2["config.json"]
    st = json.loads(run_mv("status", "--json", cwd=work).stdout)
    assert st["branch"] == "main" and st["modified"] == ["model.safetensors"]
    # a folder path, from inside a subfolder
    run_mv("checkout", "v1.0.0", ".", cwd=work / "sub")
    assert (work / "sub" / "extra.txt").read_bytes() == v1["sub/extra.txt"]
    assert (work / "config.json").read_bytes() == v2["config.json"]


def test_export(two_commits, tmp_path: Path) -> None:
    work, v1, v2 = two_commits
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("do not touch")
    assert_one_line_error(run_mv("export", "v1.0.0", dest, cwd=work, check=False), str(dest))
    assert files_of(dest) == {"keep.txt": b"do not touch"}
    empty = tmp_path / "empty"
    empty.mkdir()
    run_mv("export", "v1.0.0", empty, cwd=work)
    assert files_of(empty) == v1
    run_mv("export", "HEAD", "relative-out", cwd=work / "sub")
    assert files_of(work / "sub" / "relative-out") == v2
    j = json.loads(run_mv("export", "--json", "v1.0.0", tmp_path / "j", cwd=work).stdout)
    assert j["files"] == len(v1) and j["bytes"] == sum(map(len, v1.values()))


def test_rev_parse(two_commits) -> None:
    work, _v1, _v2 = two_commits
    log = _log(work)
    head, parent = log[0]["id"], log[1]["id"]
    assert run_mv("rev-parse", "HEAD", cwd=work).stdout.strip() == head
    assert run_mv("rev-parse", "main", cwd=work).stdout.strip() == head
    assert run_mv("rev-parse", head[:8], cwd=work).stdout.strip() == head
    assert run_mv("rev-parse", head, cwd=work).stdout.strip() == head
    assert run_mv("rev-parse", "HEAD~1", cwd=work).stdout.strip() == parent
    assert run_mv("rev-parse", "HEAD^", cwd=work).stdout.strip() == parent
    assert run_mv("rev-parse", "main~1", cwd=work).stdout.strip() == parent
    assert run_mv("rev-parse", f"{head[:6]}^", cwd=work).stdout.strip() == parent
    assert run_mv("rev-parse", "v1.0.0", cwd=work).stdout.strip() == parent
    assert run_mv("rev-parse", "--short", "HEAD", cwd=work).stdout.strip() == head[:12]
    file_id = run_mv("rev-parse", "HEAD:model.safetensors", cwd=work).stdout.strip()
    assert HEX64.match(file_id)
    files = json.loads(run_mv("ls", "--json", "HEAD", cwd=work).stdout)["files"]
    assert file_id == next(f["id"] for f in files if f["path"] == "model.safetensors")
    assert_one_line_error(run_mv("rev-parse", "HEAD~2", cwd=work, check=False), "HEAD~2")


def test_ls_and_cat(two_commits) -> None:
    work, v1, v2 = two_commits
    text = run_mv("ls", "v1.0.0", cwd=work).stdout
    for p in ("model.safetensors", "config.json", "tokenizer.json", "sub/extra.txt"):
        assert p in text
    text = run_mv("ls", "v1.0.0:model.safetensors", cwd=work).stdout
    rows = {line.split()[-1]: line.split() for line in text.strip().splitlines()}
    assert rows["emb.weight"][:2] == ["F32", "100x64"]
    assert rows["head.weight"][:2] == ["BF16", "10x64"]
    assert rows["ln.weight"][:2] == ["F32", "64"]
    j = json.loads(run_mv("ls", "--json", "v1.0.0:model.safetensors", cwd=work).stdout)
    tensors = {t["name"]: t for t in j["tensors"]}
    assert tensors["emb.weight"]["shape"] == [100, 64] and tensors["emb.weight"]["nbytes"] == 100 * 64 * 4
    assert tensors["ln.weight"]["inline"] is True and tensors["emb.weight"]["inline"] is False
    j = json.loads(run_mv("ls", "--json", "HEAD:sub", cwd=work).stdout)
    assert [f["path"] for f in j["files"]] == ["sub/extra.txt"]

    assert run_mv("cat", "v1.0.0:config.json", cwd=work).stdout == v1["config.json"].decode()
    assert run_mv("cat", "HEAD:sub/extra.txt", cwd=work).stdout == v2["sub/extra.txt"].decode()
    raw = run_mv("cat", "v1.0.0:model.safetensors", cwd=work, text=False).stdout
    assert raw == v1["model.safetensors"]
    assert_one_line_error(run_mv("cat", "v1.0.0:nope.txt", cwd=work, check=False), "nope.txt")


def test_tags(two_commits) -> None:
    work, _v1, _v2 = two_commits
    head = _log(work)[0]["id"]
    run_mv("tag", "release", "-m", "first release", cwd=work)
    tag_obj = run_mv("rev-parse", "release", cwd=work).stdout.strip()
    assert HEX64.match(tag_obj) and tag_obj != head, "an annotated tag is an object of its own"
    assert run_mv("rev-parse", "release^0", cwd=work).stdout.strip() == head
    assert _log(work, "release")[0]["id"] == head
    listed = {t["name"]: t for t in json.loads(run_mv("tag", "-l", "--json", cwd=work).stdout)}
    assert listed["release"]["annotated"] and listed["release"]["message"] == "first release"
    assert listed["release"]["commit"] == head and not listed["v1.0.0"]["annotated"]
    shown = run_mv("show", "release", cwd=work).stdout
    assert "first release" in shown and head in shown

    assert_one_line_error(run_mv("tag", "v1.0.0", cwd=work, check=False), "v1.0.0")  # exists
    run_mv("tag", "-f", "v1.0.0", cwd=work)
    assert run_mv("rev-parse", "v1.0.0", cwd=work).stdout.strip() == head
    out = run_mv("tag", "-d", "v1.0.0", cwd=work).stdout
    assert "v1.0.0" in out
    assert run_mv("tag", "-l", cwd=work).stdout.split() == ["release"]
    assert_one_line_error(run_mv("rev-parse", "v1.0.0", cwd=work, check=False), "v1.0.0")
    assert_one_line_error(run_mv("tag", "-d", "v1.0.0", cwd=work, check=False), "v1.0.0")


def test_branch_and_switch(two_commits) -> None:
    work, _v1, v2 = two_commits
    run_mv("branch", "exp", cwd=work)
    run_mv("branch", "old", "v1.0.0", cwd=work)
    lines = run_mv("branch", cwd=work).stdout.splitlines()
    assert any(line.startswith("* main") for line in lines) and len(lines) == 3
    run_mv("switch", "exp", cwd=work)
    assert json.loads(run_mv("status", "--json", cwd=work).stdout)["branch"] == "exp"
    (work / "config.json").write_text('{"exp": true}\n')
    run_mv("commit", "-m", "on exp", cwd=work)
    assert run_mv("rev-parse", "exp", cwd=work).stdout.strip() != run_mv("rev-parse", "main", cwd=work).stdout.strip()
    run_mv("switch", "main", cwd=work)
    assert files_of(work) == v2
    run_mv("switch", "old", cwd=work)
    assert (work / "config.json").read_text() == json.dumps({"hidden": 64, "seed": 1}) + "\n"
    run_mv("switch", "-c", "fresh", cwd=work)
    branches = {b["name"]: b for b in json.loads(run_mv("branch", "--json", cwd=work).stdout)}
    assert branches["fresh"]["current"] and branches["fresh"]["id"] == branches["old"]["id"]
    assert_one_line_error(run_mv("switch", "missing", cwd=work, check=False), "missing")
    assert_one_line_error(run_mv("branch", "-d", "fresh", cwd=work, check=False), "fresh")  # current
    run_mv("switch", "main", cwd=work)
    run_mv("branch", "-d", "fresh", cwd=work)
    assert "fresh" not in run_mv("branch", cwd=work).stdout


def test_commit_paths(two_commits) -> None:
    work, _v1, v2 = two_commits
    (work / "config.json").write_text('{"changed": 1}\n')
    (work / "tokenizer.json").write_bytes(b"changed too")
    (work / "sub" / "extra.txt").write_text("changed in sub\n")
    run_mv("commit", "-m", "only config", "config.json", cwd=work)
    assert run_mv("cat", "HEAD:config.json", cwd=work).stdout == '{"changed": 1}\n'
    assert run_mv("cat", "HEAD:tokenizer.json", cwd=work, text=False).stdout == v2["tokenizer.json"]
    st = json.loads(run_mv("status", "--json", cwd=work).stdout)
    assert st["modified"] == ["sub/extra.txt", "tokenizer.json"]
    # a relative path from inside a subfolder
    run_mv("commit", "-m", "only sub", "extra.txt", cwd=work / "sub")
    assert run_mv("cat", "HEAD:sub/extra.txt", cwd=work).stdout == "changed in sub\n"
    assert json.loads(run_mv("status", "--json", cwd=work).stdout)["modified"] == ["tokenizer.json"]
    # a deleted path is removed from the tree
    (work / "sub" / "extra.txt").unlink()
    run_mv("commit", "-m", "drop sub", "sub", cwd=work)
    files = [f["path"] for f in json.loads(run_mv("ls", "--json", "HEAD", cwd=work).stdout)["files"]]
    assert "sub/extra.txt" not in files and "tokenizer.json" in files
    d = json.loads(run_mv("diff", "HEAD~1", "HEAD", "--json", cwd=work).stdout)
    assert [(f["path"], f["status"]) for f in d["files"]] == [("sub/extra.txt", "removed")]


def test_status_diff_and_show(two_commits) -> None:
    work, _v1, _v2 = two_commits
    assert "nothing to commit" in run_mv("status", cwd=work).stdout
    st = load_file(str(work / "model.safetensors"))
    st["ln.weight"] = st["ln.weight"] + 1
    save_st(work / "model.safetensors", st, metadata={"format": "pt"})
    (work / "new.txt").write_text("new\n")
    (work / "config.json").unlink()
    text = run_mv("status", cwd=work).stdout
    assert "M model.safetensors" in text and "A new.txt" in text and "D config.json" in text
    short = run_mv("status", "-s", cwd=work).stdout.strip().splitlines()
    assert short == ["D config.json", "M model.safetensors", "A new.txt"]
    d = json.loads(run_mv("diff", "--json", cwd=work).stdout)  # HEAD vs the folder
    assert d["new"] is None
    by_path = {f["path"]: f for f in d["files"]}
    assert by_path["config.json"]["status"] == "removed" and by_path["new.txt"]["status"] == "added"
    assert [t["name"] for t in by_path["model.safetensors"]["tensors"]] == ["ln.weight"]
    assert "no differences" in run_mv("diff", "HEAD", "HEAD", cwd=work).stdout
    shown = json.loads(run_mv("show", "--json", "HEAD", cwd=work).stdout)
    assert shown["commit"]["message"] == "two"
    assert {f["path"] for f in shown["diff"]["files"]} == {"model.safetensors", "config.json", "sub/extra.txt"}
    assert "one" in run_mv("show", "HEAD~1", cwd=work).stdout


def test_init_twice_and_subfolders(two_commits) -> None:
    work, _v1, _v2 = two_commits
    assert_one_line_error(run_mv("init", cwd=work, check=False), str(work))
    # commands work from any subfolder
    assert len(_log(work / "sub")) == 2
    out = run_mv("init", "--json", "nested-new", cwd=work.parent).stdout
    assert json.loads(out)["branch"] == "main" and (work.parent / "nested-new" / ".mv" / "HEAD").is_file()


def test_dash_C(two_commits, tmp_path: Path) -> None:
    work, _v1, _v2 = two_commits
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert len(json.loads(run_mv("-C", work, "log", "--json", cwd=elsewhere).stdout)) == 2
    (work / "config.json").write_text("{}\n")
    run_mv("-C", str(work), "commit", "-m", "via -C", cwd=elsewhere)
    assert _log(work)[0]["message"] == "via -C"
    run_mv("-C", work, "export", "HEAD", "exported", cwd=elsewhere)
    assert (work / "exported" / "config.json").read_text() == "{}\n", "-C makes relative paths relative to PATH"
    assert_one_line_error(run_mv("-C", tmp_path / "nope", "log", cwd=elsewhere, check=False), "nope")
    assert list(elsewhere.iterdir()) == []


# --- help, version, and the mv shim ------------------------------------------------------------------------------

SUBCOMMANDS = ["init", "commit", "status", "log", "show", "diff", "checkout", "switch", "export", "ls", "cat",
               "tag", "branch", "rev-parse", "stats"]


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_every_subcommand_has_help(cmd: str, tmp_path: Path) -> None:
    cp = run_mv(cmd, "--help", cwd=tmp_path)  # works outside a repository
    assert cp.stdout.startswith("Usage:") and cmd in cp.stdout.splitlines()[0]
    assert cp.stderr == ""


def test_top_level_help_and_version(tmp_path: Path) -> None:
    for flag in ("--help", "-h"):
        out = run_mv(flag, cwd=tmp_path).stdout
        for cmd in SUBCOMMANDS:
            assert cmd in out
    assert "0.1.0" in run_mv("--version", cwd=tmp_path).stdout
    assert run_mv("--help", cwd=tmp_path, prog="mvstore").stdout.startswith("Usage:")


def test_help_subcommand(tmp_path: Path) -> None:
    """``help`` is reserved (never forwarded to the system mv), so it must do something useful."""
    cp = run_mv("help", cwd=tmp_path, check=False)
    assert cp.returncode == 0, cp.stderr
    assert "Usage:" in cp.stdout and "commit" in cp.stdout


def test_mv_forwards_to_system_mv(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("payload")
    (tmp_path / "dir").mkdir()
    cp = run_mv("a.txt", "b.txt", cwd=tmp_path)
    assert cp.stdout == "" and cp.stderr == ""
    assert not (tmp_path / "a.txt").exists() and (tmp_path / "b.txt").read_text() == "payload"
    cp = run_mv("-v", "b.txt", "dir/", cwd=tmp_path)  # options of the system mv are passed unchanged
    assert "b.txt" in cp.stdout
    assert (tmp_path / "dir" / "b.txt").read_text() == "payload"
    cp = run_mv("missing.txt", "x.txt", cwd=tmp_path, check=False)
    assert cp.returncode != 0 and "missing.txt" in cp.stderr and "Traceback" not in cp.stderr
    # mv also works when the system mv is found only through PATH
    cp = run_mv("dir/b.txt", "c.txt", cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert (tmp_path / "c.txt").exists()
    # With the venv active our mv comes first on PATH; a plain `mv x y` must still move the file.
    path = f"{BIN_DIR}:/usr/local/bin:/usr/bin:/bin"
    assert shutil.which("mv", path=path) == MV
    cp = subprocess.run(["mv", "c.txt", "d.txt"], cwd=tmp_path, env=cli_env({"PATH": path}), capture_output=True,
                        text=True)
    assert cp.returncode == 0, cp.stderr
    assert (tmp_path / "d.txt").read_text() == "payload" and not (tmp_path / "c.txt").exists()


def test_mvstore_never_forwards(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("payload")
    cp = run_mv("a.txt", "b.txt", cwd=tmp_path, prog="mvstore", check=False)
    assert_one_line_error(cp, "a.txt")
    assert (tmp_path / "a.txt").read_text() == "payload" and not (tmp_path / "b.txt").exists()


def test_mv_subcommand_names_are_not_forwarded(tmp_path: Path) -> None:
    """A file literally named like a subcommand is ours, not the system mv's: no file is moved."""
    (tmp_path / "log").write_text("a file called log")
    cp = run_mv("log", "x", cwd=tmp_path, check=False)
    assert_one_line_error(cp)
    assert (tmp_path / "log").exists() and not (tmp_path / "x").exists()


def test_output_to_a_closed_pipe_is_quiet(two_commits) -> None:
    work, _v1, _v2 = two_commits
    import mvstore

    mvstore.Repo(work).commit("\n".join(f"line {i} " + "x" * 60 for i in range(10_000)), allow_empty=True)
    cp = subprocess.run(f"'{MV}' log | head -n 1", shell=True, cwd=work, capture_output=True, text=True, env=cli_env())
    assert cp.stdout.startswith("commit ")
    assert "Traceback" not in cp.stderr and "Exception" not in cp.stderr, cp.stderr


def _strict_json(text: str) -> object:
    def reject(const: str) -> object:
        raise AssertionError(f"{const} is not JSON (jq and other strict parsers reject it)")

    return json.loads(text, parse_constant=reject)


def test_diff_stats_json_is_strict_and_numbers_are_right(work: Path) -> None:
    """From all zeros (relative change undefined), to NaN, and a complex tensor changing only its imaginary part."""
    def write(k: int) -> None:
        save_st(work / "model.safetensors", {
            "zeros_then_ones": torch.zeros(8, 8) if k == 0 else torch.ones(8, 8),
            "nan": torch.zeros(8) if k == 0 else torch.full((8,), float("nan")),
            "complex": torch.complex(torch.ones(8), torch.zeros(8) if k == 0 else torch.ones(8)),
            "half": torch.ones(8).half() * (1 + k),
        })

    write(0)
    run_mv("init", cwd=work)
    run_mv("commit", "-m", "a", cwd=work)
    write(1)
    run_mv("commit", "-m", "b", cwd=work)
    cp = run_mv("diff", "HEAD~1", "HEAD", "--stats", "--json", cwd=work)
    assert cp.stderr == "", "a successful command prints nothing on stderr"
    d = _strict_json(cp.stdout)
    t = {x["name"]: x for x in d["files"][0]["tensors"]}
    assert set(t) == {"zeros_then_ones", "nan", "complex", "half"}
    assert t["half"]["rel_change"] == pytest.approx(1.0) and t["half"]["max_abs_diff"] == pytest.approx(1.0)
    assert t["zeros_then_ones"]["max_abs_diff"] == pytest.approx(1.0)
    assert t["complex"]["max_abs_diff"] == pytest.approx(1.0), "the imaginary part changed by 1"
    assert t["complex"]["rel_change"] == pytest.approx(1.0)
    text = run_mv("diff", "HEAD~1", "HEAD", "--stats", cwd=work)
    assert text.stderr == "" and "zeros_then_ones" in text.stdout


HEAVY = ("torch", "numpy", "safetensors", "fsspec", "s3fs", "gcsfs", "pyfastcdc")
PROBE = (
    f"import sys, atexit\nHEAVY = {HEAVY!r}\n"
    "atexit.register(lambda: print('LOADED', *[m for m in HEAVY if m in sys.modules], file=sys.stderr))\n"
    "sys.argv = ['mv'] + sys.argv[1:]\n"
    "from mvstore.cli import main\n"
    "main()\n"
)


def test_plain_commands_stay_light(two_commits, tmp_path: Path) -> None:
    """Start-up cost: no torch/numpy/safetensors/remote libraries on the ordinary CLI path."""
    work, _v1, _v2 = two_commits
    (work / "config.json").write_text('{"light": true}\n')
    for args in (["status"], ["commit", "-m", "light"], ["log"], ["rev-parse", "HEAD~1"], ["diff", "HEAD~1", "HEAD"],
                 ["ls", "HEAD:model.safetensors"], ["cat", "HEAD:config.json"], ["tag", "light"], ["stats"],
                 ["checkout", "HEAD~1"], ["export", "HEAD", str(tmp_path / "exp")], ["--help"]):
        cp = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=work, env=cli_env(), capture_output=True, text=True)
        assert cp.returncode == 0, (args, cp.stderr)
        loaded = cp.stderr.strip().splitlines()[-1].split()[1:]
        assert loaded == [], f"mv {' '.join(args)} imported {loaded}"


def test_bare_command_shows_the_commands(tmp_path: Path) -> None:
    for prog in ("mv", "mvstore"):
        cp = run_mv(cwd=tmp_path, prog=prog, check=False)
        assert "Traceback" not in cp.stderr
        out = cp.stdout + cp.stderr
        assert "commit" in out and "checkout" in out, f"`{prog}` alone should list what it can do: {out!r}"


def test_checkout_of_an_unknown_path_is_an_error(two_commits) -> None:
    work, _v1, v2 = two_commits
    cp = run_mv("checkout", "v1.0.0", "no-such-file.txt", cwd=work, check=False)
    assert_one_line_error(cp, "no-such-file.txt")
    assert files_of(work) == v2
