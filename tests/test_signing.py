"""Signed tags: keys, trust, signatures that bind the whole tree, and every way to break them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from conftest import RepoState, assert_one_line_error, assert_unchanged, run_mv, save_st

import mvstore
from mvstore import codec
from mvstore.codec import KIND_STRUCT
from mvstore.errors import CorruptObject, InvalidObject, UsageError
from mvstore.ids import hash_bytes
from mvstore.objects import Tag, TagSignature
from mvstore.release.errors import KeyFileError, SignatureError, UntrustedKey
from mvstore.release.signing import generate_key, signer_for, trusted_keys, untrust_key


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "keys"
    monkeypatch.setenv("MV_KEY_DIR", str(d))
    return d


@pytest.fixture
def released(work: Path, keys: Path) -> Path:
    """A repository with a committed model, a trusted key and a signed tag v1.0.0."""
    save_st(work / "model.safetensors", {"w": torch.randn(256, 64), "b": torch.zeros(64)})
    (work / "config.json").write_text('{"architectures": ["BertModel"]}')
    repo = mvstore.Repo.init(work)
    repo.commit("one")
    run_mv("key", "gen", "--trust", "alice", cwd=work, env={"MV_KEY_DIR": str(keys)})
    run_mv("tag", "-s", "v1.0.0", "-m", "first release", cwd=work, env={"MV_KEY_DIR": str(keys)})
    return work


def env(keys: Path) -> dict[str, str]:
    return {"MV_KEY_DIR": str(keys)}


def test_key_gen_writes_private_key_0600_outside_repo(work: Path, keys: Path) -> None:
    mvstore.Repo.init(work)
    cp = run_mv("key", "gen", "--json", cwd=work, env=env(keys))
    out = json.loads(cp.stdout)
    key = Path(out["private_key"])
    assert key.parent == keys and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert out["public_key"].startswith("ed25519:") and len(out["public_key"]) == 8 + 64
    assert (keys / "default.pub").read_text().startswith(out["public_key"])
    assert "PRIVATE" not in (work / ".mv" / "config").read_text()
    # never overwritten, never inside a repository
    assert_one_line_error(run_mv("key", "gen", cwd=work, env=env(keys), check=False), "already exists")
    cp = run_mv("key", "gen", "--dir", str(work / "keys"), cwd=work, check=False)
    assert_one_line_error(cp, "inside the repository")
    assert not (work / "keys").exists()


def test_sign_and_verify(released: Path, keys: Path) -> None:
    cp = run_mv("verify", "v1.0.0", cwd=released)
    assert "Good signature on tag v1.0.0 by alice" in cp.stdout
    res = json.loads(run_mv("verify", "v1.0.0", "--json", cwd=released).stdout)
    assert res["signer_name"] == "alice" and res["objects"] >= 4 and res["bytes"] == 256 * 64 * 4
    repo = mvstore.Repo(released)
    tag = repo.repository.read_object(repo.repository.refs.read("refs/tags/v1.0.0"))  # type: ignore[arg-type]
    assert isinstance(tag, Tag) and tag.signature is not None and tag.message == "first release"
    assert repo.verify("v1.0.0").signer_name == "alice"


def test_signature_covers_canonical_bytes_without_signature(released: Path) -> None:
    repo = mvstore.Repo(released).repository
    oid = repo.refs.read("refs/tags/v1.0.0")
    assert oid is not None
    raw = repo.store.read(oid, KIND_STRUCT)
    m = codec.unpack(raw, "t")
    assert m["v"] == 2 and set(m["signature"]) == {"alg", "key", "sig"}
    del m["signature"]
    signed = codec.pack(m)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    tag = repo.read_object(oid)
    assert isinstance(tag, Tag) and tag.signature is not None
    Ed25519PublicKey.from_public_bytes(tag.signature.key).verify(tag.signature.sig, signed)
    assert codec.tag_signing_bytes(tag.unsigned()) == signed


def test_untrusted_key(released: Path, keys: Path, tmp_path: Path) -> None:
    other = generate_key("mallory", tmp_path / "mallory")
    run_mv("tag", "-s", "--key", str(other.path), "v1.0.1", cwd=released)
    cp = run_mv("verify", "v1.0.1", cwd=released, check=False)
    assert_one_line_error(cp, "v1.0.1", "not a trusted key", other.public_key)
    # trusted through a keyring file instead of the config
    ring = tmp_path / "ring.txt"
    ring.write_text(f"# team keys\n{other.public_key} mallory-ci\n")
    assert "mallory-ci" in run_mv("verify", "v1.0.1", "--keyring", str(ring), cwd=released).stdout
    with pytest.raises(UntrustedKey):
        mvstore.Repo(released).verify("v1.0.1")


def test_tampered_chunk_under_signed_tag(released: Path) -> None:
    repo = mvstore.Repo(released)
    m = repo.repository.manifest(
        repo.repository.tree(
            repo.repository.commit_object(
                repo.repository.peel(repo.repository.refs.read("refs/tags/v1.0.0"))
            ).tree
        )
        .by_path()["model.safetensors"]
        .id
    )  # type: ignore[arg-type]
    chunk = next(t.chunks[0].id for t in m.tensors if t.chunks)
    path = repo.repository.store.path(chunk)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    cp = run_mv("verify", "v1.0.0", cwd=released, check=False)
    assert_one_line_error(cp, chunk.hex(), "do not match its id")
    with pytest.raises(CorruptObject):
        mvstore.Repo(released).verify("v1.0.0")


def test_tampered_tag_object(released: Path) -> None:
    repo = mvstore.Repo(released).repository
    oid = repo.refs.read("refs/tags/v1.0.0")
    assert oid is not None
    path = repo.store.path(oid)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes().replace(b"first release", b"final release"))
    cp = run_mv("verify", "v1.0.0", cwd=released, check=False)
    assert_one_line_error(cp, oid.hex(), "do not match its id")


def _store_tag(work: Path, tag: Tag) -> str:
    """Write a (forged) tag object and point refs/tags/<name> at it, as an attacker could."""
    repo = mvstore.Repo(work).repository
    raw = codec.encode_object(tag)
    oid = hash_bytes(raw)
    with repo.store.transaction() as txn:
        txn.put(oid, raw, KIND_STRUCT)
    return oid.hex()


def test_altered_signed_tag_is_a_bad_signature(released: Path, keys: Path) -> None:
    repo = mvstore.Repo(released).repository
    tag = repo.read_object(repo.refs.read("refs/tags/v1.0.0"))  # type: ignore[arg-type]
    assert isinstance(tag, Tag)
    forged = Tag(
        tag.target, "commit", "v1.0.0", tag.tagger, tag.time, tag.tz_offset, "changed", tag.signature
    )
    oid = _store_tag(released, forged)
    (released / ".mv/refs/tags/v1.0.0").write_text(oid + "\n")
    cp = run_mv("verify", "v1.0.0", cwd=released, check=False)
    assert_one_line_error(cp, "BAD signature")


def test_signed_tag_replayed_under_another_name(released: Path) -> None:
    oid = (released / ".mv/refs/tags/v1.0.0").read_text()
    (released / ".mv/refs/tags/v2.0.0").write_text(oid)
    cp = run_mv("verify", "v2.0.0", cwd=released, check=False)
    assert_one_line_error(cp, "reused under another name")


def test_unsigned_tag_and_plain_commits(released: Path) -> None:
    run_mv("tag", "v1.0.2", "-m", "annotated, unsigned", cwd=released)
    run_mv("tag", "v1.0.3", cwd=released)
    for name in ("v1.0.2", "v1.0.3", "HEAD"):
        if name != "HEAD":  # `mv verify` (the fsck of issue 6) requires signatures of tags only
            cp = run_mv("verify", name, cwd=released, check=False)
            assert_one_line_error(cp, "not", "signed")
        with pytest.raises(SignatureError):
            mvstore.Repo(released).verify(name)
    assert "match their ids" in run_mv("verify", "HEAD", cwd=released).stdout
    assert "match their ids" in run_mv("verify", "HEAD", "--unsigned", "--history", cwd=released).stdout


def test_key_file_problems(work: Path, keys: Path, tmp_path: Path) -> None:
    repo = mvstore.Repo.init(work)
    (work / "a.txt").write_text("a")
    repo.commit("a")
    before = RepoState.of(work)
    cp = run_mv("tag", "-s", "v1.0.0", cwd=work, env=env(keys), check=False)
    assert_one_line_error(cp, "no signing key", "mv key gen")
    info = generate_key("loose", tmp_path / "k")
    os.chmod(info.path, 0o644)
    cp = run_mv("tag", "-s", "--key", str(info.path), "v1.0.0", cwd=work, check=False)
    assert_one_line_error(cp, "too open")
    bad = tmp_path / "k" / "bad.key"
    bad.write_text("not a key")
    os.chmod(bad, 0o600)
    with pytest.raises(KeyFileError):
        signer_for(bad)
    assert_unchanged(work, before)


def test_trust_list_untrust(work: Path, keys: Path) -> None:
    mvstore.Repo.init(work)
    pub = generate_key("k1").public_key
    run_mv("key", "trust", pub, "bob", cwd=work)
    out = json.loads(run_mv("key", "list", "--json", cwd=work).stdout)
    assert out == [{"name": "bob", "public_key": pub}]
    assert_one_line_error(
        run_mv("key", "trust", "ed25519:abcd", "eve", cwd=work, check=False), "not an Ed25519"
    )
    run_mv("key", "untrust", "bob", cwd=work)
    assert trusted_keys(mvstore.Repo(work).repository) == {}
    with pytest.raises(UsageError):
        untrust_key(mvstore.Repo(work).repository, "bob")


def test_tag_codec_versions() -> None:
    """A signature means v2; v1 tags may not carry one and v2 tags must; fields are strict."""
    oid = hash_bytes(b"x")
    sig = TagSignature(key=b"k" * 32, sig=b"s" * 64)
    signed = Tag(oid, "commit", "v1.0.0", "A <a@b>", 1, 0, "m", sig)
    m = codec._to_map(signed)
    assert m["v"] == 2 and codec.decode_object(codec.pack(m), "t") == signed
    unsigned = codec._to_map(signed.unsigned())
    assert unsigned["v"] == 1 and "signature" not in unsigned
    for bad in (
        unsigned | {"signature": m["signature"]},
        {k: v for k, v in m.items() if k != "signature"},
        m | {"signature": m["signature"] | {"extra": 1}},
        m | {"signature": {"alg": "rsa", "key": b"k" * 32, "sig": b"s" * 64}},
        m | {"signature": {"alg": "ed25519", "key": b"k" * 31, "sig": b"s" * 64}},
        unsigned | {"v": 3},
    ):
        with pytest.raises(InvalidObject):
            codec.decode_object(codec.pack(bad), "t")


def test_verify_remote_checks_tag_signatures(released: Path, keys: Path, tmp_path: Path) -> None:
    """`mv verify --remote R TAG` is the check a server runs before it pulls a release: the tag's
    signature (against the local trusted keys), its name binding and unsigned tags, as locally."""
    remote = tmp_path / "remote"
    other = generate_key("mallory", tmp_path / "mallory")
    run_mv("tag", "-s", "--key", str(other.path), "v1.0.1", cwd=released)
    run_mv("tag", "v1.0.2", "-m", "unsigned", cwd=released)
    run_mv("remote", "add", "origin", str(remote), cwd=released)
    run_mv("push", "origin", "main", "v1.0.0", "v1.0.1", "v1.0.2", cwd=released)
    res = json.loads(run_mv("verify", "--remote", "origin", "v1.0.0", "--json", cwd=released).stdout)
    assert res["signer_name"] == "alice" and res["ok"]
    cp = run_mv("verify", "--remote", "origin", "v1.0.1", cwd=released, check=False)
    assert cp.returncode == 1
    assert_one_line_error(cp, "v1.0.1", "not a trusted key", other.public_key)
    cp = run_mv("verify", "--remote", "origin", "v1.0.2", cwd=released, check=False)
    assert cp.returncode == 1 and "signature" in cp.stdout
    assert run_mv("verify", "--remote", "origin", "v1.0.2", "--unsigned", cwd=released).returncode == 0
    # a signed tag replayed under another name on the remote
    (remote / "refs" / "tags" / "v9.0.0").write_text((remote / "refs" / "tags" / "v1.0.0").read_text())
    cp = run_mv("verify", "--remote", "origin", "v9.0.0", cwd=released, check=False)
    assert_one_line_error(cp, "reused under another name")


def test_verify_remote_tag_rehashes_the_release(released: Path, keys: Path, tmp_path: Path) -> None:
    """As locally, a release's files are re-hashed on the remote even without --full (a branch is
    checked for presence only): a flipped byte in one of its chunks is found."""
    remote = tmp_path / "remote"
    save_st(released / "model.safetensors", {"w": torch.randn(1024, 1024), "b": torch.zeros(64)})
    run_mv("commit", "-m", "big", cwd=released)
    run_mv("tag", "-s", "v1.1.0", "-m", "big release", cwd=released)
    run_mv("remote", "add", "origin", str(remote), cwd=released)
    run_mv("push", "origin", "main", "v1.1.0", cwd=released)
    assert run_mv("verify", "--remote", "origin", "v1.1.0", cwd=released).returncode == 0
    loose = [p for p in (remote / "objects").rglob("*") if p.is_file()]
    assert loose, "the 4 MiB tensor travels as a loose object"
    data = bytearray(loose[0].read_bytes())
    data[len(data) // 2] ^= 0x40
    loose[0].write_bytes(bytes(data))
    assert run_mv("verify", "--remote", "origin", "main", cwd=released).returncode == 0  # presence only
    cp = run_mv("verify", "--remote", "origin", "v1.1.0", cwd=released, check=False)
    assert cp.returncode == 1, cp.stdout
    res = json.loads(run_mv("verify", "--remote", "origin", "v1.1.0", "--json", cwd=released, check=False).stdout)
    assert not res["ok"] and res["signer_name"] == "alice"
    assert [p["code"] for p in res["problems"]] == ["corrupt"], res["problems"]
