"""The release workflow: versions, stages, changelogs, bump suggestions, validation, checksum
manifests and pickle conversion — through the CLI (real subprocesses) and the Python API."""

from __future__ import annotations

import json
import pickle
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import RepoState, assert_one_line_error, assert_unchanged, copy_tree, run_mv, save_st

import mvstore
from mvstore import codec
from mvstore.codec import KIND_STRUCT
from mvstore.errors import RefExists
from mvstore.objects import StageEvent
from mvstore.release.convert import check_torch_version, safetensors_name
from mvstore.release.errors import InvalidStage, InvalidVersion, UnsafePickle, ValidationFailed
from mvstore.release.semver import next_version, parse_version, version_sort_key

NEW_COMMANDS = ["stage", "changelog", "bump-suggest", "validate", "verify", "verify-export", "key", "convert"]


def model(
    work: Path,
    tensors: dict | None = None,
    *,
    config: dict | str | None = None,
    tokenizer: bool = True,
    readme: bool = True,
) -> Path:
    """A small HF-style folder: config.json, model.safetensors, tokenizer, README."""
    g = torch.Generator().manual_seed(0)
    tensors = (
        tensors if tensors is not None else {"emb": torch.randn(32, 16, generator=g), "b": torch.zeros(16)}
    )
    save_st(work / "model.safetensors", tensors)
    cfg = config if config is not None else {"architectures": ["BertModel"], "hidden_size": 16}
    (work / "config.json").write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    if tokenizer:
        (work / "tokenizer.json").write_text('{"model": {"vocab": {}}}')
    if readme:
        (work / "README.md").write_text("# tiny model\n")
    return work


@pytest.fixture
def tagged(work: Path) -> Path:
    """v1.0.0 at the first commit of a valid model; HEAD is a fine-tune of it (not tagged)."""
    repo = mvstore.Repo.init(model(work))
    repo.commit("base", meta={"acc": 0.5})
    repo.tag("v1.0.0")
    emb = torch.randn(32, 16, generator=torch.Generator().manual_seed(1))
    save_st(work / "model.safetensors", {"emb": emb, "b": torch.zeros(16)})
    repo.commit("fine-tune", meta={"acc": 0.6, "step": 100})
    return work


def test_every_command_has_help(tmp_path: Path) -> None:
    for name in NEW_COMMANDS + ["tag", "commit", "export", "log"]:
        cp = run_mv(name, "--help", cwd=tmp_path)
        assert "Usage:" in cp.stdout
    assert "--sign" in run_mv("tag", "--help", cwd=tmp_path).stdout
    assert "Exit codes" in run_mv("validate", "--help", cwd=tmp_path).stdout
    for sub in ("gen", "trust", "untrust", "list"):
        assert "Usage:" in run_mv("key", sub, "--help", cwd=tmp_path).stdout


# --- semantic versions ----------------------------------------------------------------------------------


def test_semver_parse_and_precedence() -> None:
    for ok in (
        "v1.2.0",
        "1.2.0",
        "v0.0.0",
        "v10.20.30",
        "v1.0.0-rc.1",
        "v1.0.0-alpha-a.b-c",
        "v1.0.0+build.5",
        "v1.0.0-0.3.7+exp.sha.5114f85",
    ):
        assert str(parse_version(ok)) == ok
    for bad in (
        "v1",
        "v1.2",
        "v1.2.3.4",
        "v01.2.3",
        "v1.02.3",
        "v1.2.3-",
        "v1.2.3-01",
        "v1.2.3+",
        "v1.2.3-a..b",
        "1.2.x",
        "v-1.2.3",
    ):
        with pytest.raises(InvalidVersion):
            parse_version(bad)
    spec = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
    ]
    assert sorted(reversed(spec), key=version_sort_key) == spec
    assert sorted(["best", "v2.0.0", "v1.10.0", "v1.9.0"], key=version_sort_key) == [
        "v1.9.0",
        "v1.10.0",
        "v2.0.0",
        "best",
    ]


def test_bump_rules() -> None:
    assert str(next_version([], "major")) == "v1.0.0"
    assert str(next_version([], "minor")) == "v0.1.0"
    assert str(next_version(["v1.2.3", "v1.10.0", "best"], "patch")) == "v1.10.1"
    assert str(next_version(["1.2.3"], "minor")) == "1.3.0"  # keeps the prefix style
    assert str(next_version(["v2.0.0-rc.1", "v1.9.0"], "major")) == "v2.0.0"
    assert str(next_version(["v1.3.0-rc.1"], "patch")) == "v1.3.0"
    assert str(next_version(["v1.3.1-rc.1"], "minor")) == "v1.4.0"


def test_tag_validates_semver_and_is_immutable(tagged: Path) -> None:
    before = RepoState.of(tagged)
    for bad in ("v1.2", "1.0", "v1.0.0.0", "v01.0.0"):
        assert_one_line_error(run_mv("tag", bad, cwd=tagged, check=False), "invalid semantic version", bad)
    assert_one_line_error(
        run_mv("tag", "v1.0.0", "-m", "again", cwd=tagged, check=False), "already exists", "--force"
    )
    assert_unchanged(tagged, before)
    with pytest.raises(InvalidVersion):
        mvstore.Repo(tagged).tag("v2")
    with pytest.raises(RefExists):
        mvstore.Repo(tagged).tag("v1.0.0")
    run_mv("tag", "best", cwd=tagged)  # not version-like: an ordinary tag
    # moving a version tag needs --force and is recorded in its (synced) stage history
    out = run_mv("tag", "--force", "v1.0.0", "HEAD", cwd=tagged).stdout
    assert "moved from" in out
    hist = json.loads(run_mv("stage", "v1.0.0", "--history", "--json", cwd=tagged).stdout)
    assert len(hist) == 1 and "tag moved from" in hist[0]["why"] and hist[0]["stage"] == "checkpoint"


def test_tag_bump_and_sort(tagged: Path) -> None:
    out = run_mv("tag", "--bump", "auto", "--json", cwd=tagged).stdout
    res = json.loads(out)
    assert res["name"] == "v1.1.0" and res["reasons"][0]["level"] == "minor"
    run_mv("tag", "--bump", "major", "HEAD~1", cwd=tagged)
    run_mv("tag", "v2.0.0-rc.1", "HEAD~1", cwd=tagged)
    run_mv("tag", "v1.10.0", cwd=tagged)
    names = run_mv("tag", "-l", "--sort=version", cwd=tagged).stdout.split()
    assert names == ["v1.0.0", "v1.1.0", "v1.10.0", "v2.0.0-rc.1", "v2.0.0"]
    assert mvstore.Repo(tagged).bump("patch") == "v2.0.1"
    cp = run_mv("tag", "--bump", "auto", cwd=tagged, check=False)
    assert_one_line_error(cp, "nothing changed since v2.0.1")


# --- lifecycle stages -----------------------------------------------------------------------------------


def test_stages_lifecycle(tagged: Path) -> None:
    run_mv("tag", "v1.1.0", cwd=tagged)
    run_mv("stage", "v1.0.0", "candidate", "-m", "eval ok", cwd=tagged)
    out = run_mv("stage", "v1.0.0", "release", "-m", "ship it", cwd=tagged).stdout
    assert "candidate → release" in out
    run_mv("stage", "v1.1.0", "candidate", cwd=tagged)
    rows = json.loads(run_mv("stage", "-l", "--json", cwd=tagged).stdout)
    assert [(r["version"], r["stage"]) for r in rows] == [("v1.0.0", "release"), ("v1.1.0", "candidate")]
    assert rows[0]["who"] == "Test User <test@example.com>" and rows[0]["why"] == "ship it"
    # history: who, when, why, newest first, chained
    hist = json.loads(run_mv("stage", "v1.0.0", "--history", "--json", cwd=tagged).stdout)
    assert [h["stage"] for h in hist] == ["release", "candidate"] and hist[0]["previous"] == hist[1]["event"]
    # log --stage release shows exactly the released commit
    log = json.loads(run_mv("log", "--stage", "release", "--json", cwd=tagged).stdout)
    assert [e["id"] for e in log] == [mvstore.Repo(tagged).resolve_commit("v1.0.0")]
    assert "release: v1.0.0" in log[0]["refs"]
    # backwards needs --force; forward is free
    before = RepoState.of(tagged)
    assert_one_line_error(run_mv("stage", "v1.0.0", "candidate", cwd=tagged, check=False), "--force")
    assert_one_line_error(run_mv("stage", "v1.0.0", "release", cwd=tagged, check=False), "already at stage")
    assert_unchanged(tagged, before)
    run_mv("stage", "v1.0.0", "deprecated", "-m", "superseded by v1.1.0", cwd=tagged)
    run_mv("stage", "v1.0.0", "candidate", "--force", cwd=tagged)
    assert mvstore.Repo(tagged).stages()[0].stage == "candidate"


def test_stage_events_are_objects_that_sync(tagged: Path) -> None:
    repo = mvstore.Repo(tagged)
    res = repo.stage("v1.0.0", "candidate", "why")
    raw = repo.repository.store.read(res.event, KIND_STRUCT)
    ev = codec.decode_object(raw, "e")
    assert isinstance(ev, StageEvent) and ev.target == res.commit and ev.previous is None
    res2 = repo.stage("v1.0.0", "release")
    ev2 = repo.repository.read_object(res2.event)
    assert isinstance(ev2, StageEvent) and ev2.previous == res.event
    assert codec.referenced_ids(ev2) == [(res.commit, KIND_STRUCT), (res.event, KIND_STRUCT)]
    assert (tagged / ".mv/refs/stages/v1.0.0").read_text().strip() == res2.event.hex()
    from mvstore.release.stages import is_later_event

    assert is_later_event(repo.repository, res.event, res2.event)
    assert not is_later_event(repo.repository, res2.event, res.event)
    bad = codec._to_map(ev2) | {"stage": "shipped"}
    with pytest.raises(mvstore.CorruptObject):
        codec.decode_object(codec.pack(bad), "e")


def test_stage_bad_input(tagged: Path) -> None:
    before = RepoState.of(tagged)
    cp = run_mv("stage", "v1.0.0", "relase", cwd=tagged, check=False)
    assert_one_line_error(cp, "unknown stage 'relase'", "checkpoint, candidate, release")
    assert_one_line_error(
        run_mv("stage", "v1.0", "release", cwd=tagged, check=False), "invalid semantic version"
    )
    assert_one_line_error(
        run_mv("stage", "v9.0.0", "release", cwd=tagged, check=False), "no tag named 'v9.0.0'"
    )
    with pytest.raises(InvalidStage):
        mvstore.Repo(tagged).stage("v1.0.0", "gold")
    assert_unchanged(tagged, before)


def test_promoting_an_invalid_version_is_refused(work: Path) -> None:
    repo = mvstore.Repo.init(model(work))
    (work / "config.json").unlink()
    repo.commit("no config")
    repo.tag("v0.1.0")
    run_mv("stage", "v0.1.0", "candidate", cwd=work)  # only release requires validation
    before = RepoState.of(work)
    cp = run_mv("stage", "v0.1.0", "release", cwd=work, check=False)
    assert cp.returncode == 4
    assert_one_line_error(cp, "v0.1.0", "fails validation", "config.json is missing")
    with pytest.raises(ValidationFailed):
        repo.stage("v0.1.0", "release")
    assert_unchanged(work, before)
    run_mv("stage", "v0.1.0", "release", "--no-validate", cwd=work)


# --- changelog and bump suggestions ----------------------------------------------------------------------


def test_changelog(tagged: Path) -> None:
    run_mv("tag", "v1.1.0", cwd=tagged)
    md = run_mv("changelog", "v1.0.0", "v1.1.0", cwd=tagged).stdout
    assert "Suggested bump: **minor**" in md and "## Commits (1)" in md and "fine-tune" in md
    assert "changed `emb` F32[32x16], relative change" in md
    assert "`acc`: 0.5 → 0.6" in md and "`step`: — → 100" in md
    doc = json.loads(run_mv("changelog", "v1.0.0", "v1.1.0", "--format", "json", cwd=tagged).stdout)
    assert doc["suggested_bump"] == "minor" and doc["to"]["commit"] == mvstore.Repo(tagged).resolve_commit(
        "v1.1.0"
    )
    (t,) = doc["tensors"]
    assert t["name"] == "emb" and t["status"] == "changed" and t["rel_change"] > 0.5
    assert [(f["path"], f["status"]) for f in doc["files"]] == [("model.safetensors", "modified")]
    assert {m["key"] for m in doc["meta"]} == {"acc", "step"}
    assert_one_line_error(run_mv("changelog", "v1.0.0", "v7.0.0", cwd=tagged, check=False), "v7.0.0")


BUMP_CASES = {
    "tensor added": ({"emb": (32, 16), "b": (16,), "extra": (4,)}, None, None, "major"),
    "tensor removed": ({"emb": (32, 16)}, None, None, "major"),
    "shape changed": ({"emb": (40, 16), "b": (16,)}, None, None, "major"),
    "dtype changed": ({"emb": (32, 16, "f16"), "b": (16,)}, None, None, "minor"),
    "dtype changed, --dtype-major": ({"emb": (32, 16, "f16"), "b": (16,)}, None, None, "major!"),
    "weights changed": ({"emb": (32, 16, "new"), "b": (16,)}, None, None, "minor"),
    "tokenizer changed": (None, "tokenizer.json", '{"model": {"vocab": {"a": 1}}}', "major"),
    "config only": (
        None,
        "config.json",
        '{"architectures": ["BertModel"], "hidden_size": 16, "x": 1}',
        "patch",
    ),
    "readme only": (None, "README.md", "# better card\n", "patch"),
    "adapter only": (None, "adapter_model.safetensors", None, "patch"),
    "nothing": (None, None, None, "none"),
}


@pytest.mark.parametrize("case", sorted(BUMP_CASES))
def test_bump_suggest(work: Path, case: str) -> None:
    layout, path, content, want = BUMP_CASES[case]
    repo = mvstore.Repo.init(model(work))
    repo.commit("base")
    base = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    if layout is not None:
        tensors = {}
        for name, spec in layout.items():
            shape = tuple(d for d in spec if isinstance(d, int))
            t = base.clone() if name == "emb" and shape == (32, 16) else torch.ones(shape)
            if "f16" in spec:
                t = t.half()
            if "new" in spec:
                t = t + 1
            if name == "b":
                t = torch.zeros(16)
            tensors[name] = t
        save_st(work / "model.safetensors", tensors)
    if path == "adapter_model.safetensors":
        save_st(work / path, {"lora_A": torch.ones(4, 16)})
        (work / "adapter_config.json").write_text("{}")
    elif path is not None:
        (work / path).write_text(content)
    repo.commit("change", allow_empty=True)
    dtype_major = want.endswith("!")
    args = ["bump-suggest", "HEAD~1", "HEAD", "--json"] + (["--dtype-major"] if dtype_major else [])
    res = json.loads(run_mv(*args, cwd=work).stdout)
    assert res["bump"] == want.rstrip("!"), res
    if want != "none":
        assert res["reasons"], res
    assert repo.suggest_bump("HEAD~1", dtype_major=dtype_major).bump == want.rstrip("!")


def test_sharding_change_is_not_a_tensor_change(work: Path) -> None:
    """Moving tensors between shards (same names, same bytes) is a patch, not a major."""
    repo = mvstore.Repo.init(model(work))
    repo.commit("single")
    from safetensors.torch import load_file

    sd = load_file(str(work / "model.safetensors"))
    (work / "model.safetensors").unlink()
    save_st(work / "model-00001-of-00002.safetensors", {"emb": sd["emb"]})
    save_st(work / "model-00002-of-00002.safetensors", {"b": sd["b"]})
    index = {
        "metadata": {"total_size": 32 * 16 * 4 + 16 * 4},
        "weight_map": {"emb": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"},
    }
    (work / "model.safetensors.index.json").write_text(json.dumps(index))
    repo.commit("sharded")
    assert repo.suggest_bump("HEAD~1").bump == "patch"
    report = repo.validate()
    assert report.weights == "sharded" and report.findings == ()


# --- validation -----------------------------------------------------------------------------------------


def test_validate_real_minilm_is_clean(minilm_dir: Path, work: Path) -> None:
    copy_tree(minilm_dir, work)
    mvstore.Repo.init(work).commit("minilm")
    cp = run_mv("validate", cwd=work)
    assert cp.returncode == 0 and "0 errors, 0 warnings" in cp.stdout


def _validate(work: Path, *extra: str) -> tuple[int, dict]:
    cp = run_mv("validate", "--folder", "--json", *extra, cwd=work, check=False)
    return cp.returncode, json.loads(cp.stdout)


def _codes(doc: dict) -> set[tuple[str, str]]:
    return {(f["level"], f["code"]) for f in doc["findings"]}


def test_validate_findings_and_exit_codes(work: Path) -> None:
    mvstore.Repo.init(model(work))
    assert _validate(work)[0] == 0
    (work / "README.md").unlink()
    (work / "tokenizer.json").unlink()
    code, doc = _validate(work)
    assert code == 3 and _codes(doc) == {("warning", "model-card-missing"), ("warning", "tokenizer-missing")}
    assert _validate(work, "--strict")[0] == 4
    (work / "config.json").write_text("{not json")
    code, doc = _validate(work)
    assert code == 4 and ("error", "json-invalid") in _codes(doc)
    (work / "config.json").unlink()
    code, doc = _validate(work)
    assert code == 4 and ("error", "config-missing") in _codes(doc)
    (work / "model.safetensors").write_bytes(b"\x10" + bytes(7) + b"{}")
    code, doc = _validate(work)
    assert ("error", "safetensors-invalid") in _codes(doc)
    (work / "model.safetensors").unlink()
    code, doc = _validate(work)
    assert ("error", "weights-missing") in _codes(doc) and doc["weights"] == "none"


def test_validate_generative_model_wants_generation_config(work: Path) -> None:
    model(work, config={"architectures": ["LlamaForCausalLM"]})
    mvstore.Repo.init(work)
    code, doc = _validate(work)
    assert code == 3 and _codes(doc) == {("warning", "generation-config-missing")}
    (work / "generation_config.json").write_text("{}")
    assert _validate(work)[0] == 0


def test_validate_sharded_index_errors(work: Path) -> None:
    mvstore.Repo.init(work)
    (work / "config.json").write_text("{}")
    (work / "tokenizer.json").write_text("{}")
    (work / "README.md").write_text("x")
    save_st(work / "model-00001-of-00002.safetensors", {"a": torch.ones(4), "extra": torch.ones(2)})
    save_st(work / "model-00002-of-00002.safetensors", {"b": torch.ones(4)})
    wm = {
        "a": "model-00001-of-00002.safetensors",
        "b": "model-00002-of-00002.safetensors",
        "ghost": "model-00002-of-00002.safetensors",
        "c": "model-00003-of-00003.safetensors",
    }
    (work / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 1}, "weight_map": wm})
    )
    code, doc = _validate(work)
    assert code == 4
    assert _codes(doc) == {
        ("error", "index-missing-shard"),
        ("error", "index-missing-tensor"),
        ("warning", "index-unlisted-tensor"),
    }
    msgs = " ".join(f["message"] for f in doc["findings"])
    assert "'ghost'" in msgs and "model-00003-of-00003.safetensors" in msgs and "'extra'" in msgs
    (work / "model.safetensors.index.json").unlink()
    code, doc = _validate(work)
    assert ("error", "shard-without-index") in _codes(doc)


def test_validate_adapter_and_pickles(work: Path) -> None:
    mvstore.Repo.init(work)
    save_st(work / "adapter_model.safetensors", {"lora_A": torch.ones(4, 8)})
    (work / "README.md").write_text("x")
    code, doc = _validate(work)
    assert code == 4 and _codes(doc) == {("error", "adapter-config-missing")}
    (work / "adapter_config.json").write_text('{"base_model_name_or_path": "x"}')
    code, doc = _validate(work)
    assert code == 0 and doc["weights"] == "adapter"
    torch.save({"w": torch.ones(2)}, work / "pytorch_model.bin")
    (work / "config.json").write_text("{}")
    code, doc = _validate(work)
    assert ("warning", "pickle-weights") in _codes(doc)


def test_commit_validate_refuses_and_changes_nothing(work: Path) -> None:
    repo = mvstore.Repo.init(model(work))
    repo.commit("good", validate=True)
    (work / "config.json").write_text("[1, 2")
    before = RepoState.of(work)
    cp = run_mv("commit", "-m", "broken", "--validate", cwd=work, check=False)
    assert cp.returncode == 4
    assert_one_line_error(cp, "the folder fails validation", "config.json", "not valid JSON")
    with pytest.raises(ValidationFailed):
        repo.commit("broken", validate=True)
    assert_unchanged(work, before)
    (work / "config.json").write_text("{}")
    (work / "README.md").unlink()
    cp = run_mv("commit", "-m", "ok", "--validate", cwd=work)
    assert "warning: no model card" in cp.stderr


# --- checksum manifests -----------------------------------------------------------------------------------


def test_export_manifest_and_verify_export(tagged: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    run_mv("export", "v1.0.0", str(dest), "--manifest", cwd=tagged)
    text = (dest / "MANIFEST.sha256").read_text()
    assert f"# rev {mvstore.Repo(tagged).resolve_commit('v1.0.0')}" in text
    assert "# size " in text and "  model.safetensors\n" in text
    assert (
        subprocess.run(
            ["sha256sum", "--strict", "-c", "MANIFEST.sha256"], cwd=dest, capture_output=True
        ).returncode
        == 0
    )
    out = json.loads(run_mv("verify-export", str(dest), "--json", cwd=tmp_path).stdout)
    assert out["ok"] and out["files"] == 4 and out["rev"]
    assert mvstore.Repo.verify_export(dest).ok
    # tampering: a flipped byte, a truncated file, a missing file, an extra file
    f = dest / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 1
    f.write_bytes(bytes(data))
    assert_one_line_error(
        run_mv("verify-export", str(dest), cwd=tmp_path, check=False), "model.safetensors (sha256 differs)"
    )
    (dest / "config.json").write_text("{}")
    (dest / "README.md").unlink()
    (dest / "notes.txt").write_text("extra")
    cp = run_mv("verify-export", str(dest), "--json", cwd=tmp_path, check=False)
    problems = {p["path"]: p["problem"] for p in json.loads(cp.stdout)["problems"]}
    assert cp.returncode == 1 and set(problems) == {
        "model.safetensors",
        "config.json",
        "README.md",
        "notes.txt",
    }
    assert problems["README.md"] == "missing" and problems["config.json"].startswith("size ")
    assert problems["notes.txt"] == "not in the manifest"
    assert_one_line_error(
        run_mv("verify-export", str(tmp_path), cwd=tmp_path, check=False), "no MANIFEST.sha256"
    )


def test_manifest_bad_input(tagged: Path, tmp_path: Path) -> None:
    d = tmp_path / "evil"
    d.mkdir()
    (d / "MANIFEST.sha256").write_text(("0" * 64) + "  ../../etc/passwd\n")
    assert_one_line_error(run_mv("verify-export", str(d), cwd=tmp_path, check=False), "unsafe path")
    (d / "MANIFEST.sha256").write_text("garbage line\n")
    assert_one_line_error(
        run_mv("verify-export", str(d), cwd=tmp_path, check=False), "not a '<sha256>  <path>' line"
    )
    # a revision that already holds MANIFEST.sha256: refused, nothing left behind
    (tagged / "MANIFEST.sha256").write_text("mine\n")
    mvstore.Repo(tagged).commit("has a manifest")
    cp = run_mv("export", "HEAD", str(tmp_path / "x"), "--manifest", cwd=tagged, check=False)
    assert_one_line_error(cp, "MANIFEST.sha256")
    assert not (tmp_path / "x").exists() and not [p for p in tmp_path.iterdir() if "mvtmp" in p.name]


# --- pickles ------------------------------------------------------------------------------------------


class Evil:
    """A custom class: weights_only must refuse to even construct it."""

    def __init__(self) -> None:
        self.payload = "not a tensor"


class RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (open, (self.marker, "w"))


def test_torch_version_gate() -> None:
    for old in ("2.5.1", "2.6.0", "2.9.1+cpu", "1.13.0", "garbage"):
        with pytest.raises(UnsafePickle, match="too old"):
            check_torch_version(old)
    for ok in ("2.10.0", "2.13.0+cpu", "3.0.0a0"):
        check_torch_version(ok)
    check_torch_version(torch.__version__)
    assert safetensors_name("pytorch_model.bin") == "model.safetensors"
    assert safetensors_name("sub/pytorch_model-00001-of-00002.bin") == "sub/model-00001-of-00002.safetensors"
    assert safetensors_name("ckpt/step.pt") == "ckpt/step.safetensors"


@pytest.fixture
def pickled(work: Path) -> Path:
    repo = mvstore.Repo.init(model(work))
    (work / "model.safetensors").unlink()
    torch.save(
        {"emb": torch.randn(64, 16), "tied": torch.ones(3).expand(2, 3), "n": torch.tensor(7)},
        work / "pytorch_model.bin",
    )
    repo.commit("pickled weights")
    return work


def test_convert_commits_safetensors(pickled: Path) -> None:
    original = torch.load(pickled / "pytorch_model.bin", weights_only=True)
    out = json.loads(run_mv("convert", "HEAD", "pytorch_model.bin", "--json", cwd=pickled).stdout)
    assert out["dest"] == "model.safetensors" and out["tensors"] == 3
    repo = mvstore.Repo(pickled)
    files = {
        e.path: e.kind
        for e in repo.repository.tree(
            repo.repository.commit_object(repo.repository.peel(repo.repository.refs.head().id)).tree
        ).entries
    }  # type: ignore[arg-type]
    assert files.get("model.safetensors") == "safetensors" and "pytorch_model.bin" not in files
    assert (pickled / "model.safetensors").exists() and not (pickled / "pytorch_model.bin").exists()
    assert repo.status().clean
    from safetensors.torch import load_file

    sd = load_file(str(pickled / "model.safetensors"))
    assert sd.keys() == original.keys() and all(torch.equal(sd[k], original[k]) for k in sd)
    assert repo.validate().weights == "safetensors"


@pytest.mark.parametrize("kind", ["custom class", "code execution", "nested", "non-tensor value", "list"])
def test_convert_refuses_arbitrary_pickles(work: Path, tmp_path: Path, kind: str) -> None:
    repo = mvstore.Repo.init(model(work))
    (work / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    path = work / "pytorch_model.bin"
    if kind == "custom class":
        torch.save({"w": torch.zeros(2), "evil": Evil()}, path)
    elif kind == "code execution":
        path.write_bytes(pickle.dumps({"w": RunsCode(str(marker))}, protocol=2))
    elif kind == "nested":
        torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, path)
    elif kind == "non-tensor value":
        torch.save({"w": torch.zeros(2), "step": 10}, path)
    else:
        torch.save([torch.zeros(2)], path)
    repo.commit("pickle")  # stored as an opaque blob: committing never unpickles
    assert not marker.exists()
    before = RepoState.of(work)
    with pytest.raises(UnsafePickle):
        repo.convert("HEAD", "pytorch_model.bin")
    assert_unchanged(work, before)
    assert not marker.exists() and path.exists() and not (work / "model.safetensors").exists()
    if kind in ("custom class", "code execution"):
        cp = run_mv("convert", "HEAD", "pytorch_model.bin", cwd=work, check=False)
        assert_one_line_error(
            cp, "pytorch_model.bin", "refusing to load" if kind == "custom class" else "pytorch_model.bin"
        )
        assert_unchanged(work, before)
        assert not marker.exists()


def test_commit_convert_pickles(pickled: Path) -> None:
    (pickled / "pytorch_model.bin").rename(pickled / "pytorch_model-00001-of-00001.bin")
    (pickled / "training_args.bin").write_bytes(pickle.dumps({"lr": 1e-3}))  # not weights: left alone
    cp = run_mv("commit", "-m", "convert", "--convert-pickles", cwd=pickled)
    assert "converted pytorch_model-00001-of-00001.bin → model-00001-of-00001.safetensors" in cp.stderr
    assert (pickled / "model-00001-of-00001.safetensors").exists()
    assert (
        not (pickled / "pytorch_model-00001-of-00001.bin").exists()
        and (pickled / "training_args.bin").exists()
    )
    assert mvstore.Repo(pickled).status().clean
    # a refused pickle: the commit fails and the folder is exactly as it was
    torch.save({"w": torch.zeros(2), "evil": Evil()}, pickled / "extra.pt")
    before = RepoState.of(pickled)
    names = sorted(p.name for p in pickled.iterdir())
    cp = run_mv("commit", "-m", "bad", "--convert-pickles", cwd=pickled, check=False)
    assert_one_line_error(cp, "extra.pt", "refusing to load")
    assert_unchanged(pickled, before)
    assert sorted(p.name for p in pickled.iterdir()) == names
