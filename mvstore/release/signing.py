"""Ed25519 signing keys, trusted keys, signed tags and ``mv verify``.

A signed tag is a tag object (``v: 2``) whose ``signature`` covers its own canonical encoding
without that field (:func:`mvstore.codec.tag_signing_bytes`). The tag names a commit by id, the
commit names its tree by id, the tree names every manifest and chunk by id — so one signature
binds every byte of the release. :func:`verify` checks the signature, that the key is trusted,
and then re-hashes every object below the tag.

Private keys live outside the repository (``~/.config/mvstore/keys/`` by default, mode 0600) and
are never written into ``.mv/config``; the config only ever holds *public* keys that are trusted
(``[trusted-keys]``) and, optionally, the *path* of the signing key (``user.signingkey``).
``cryptography`` is imported only when a key is used, so ``mv status`` never pays for it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..codec import tag_signing_bytes
from ..errors import UsageError
from ..ids import ObjectId
from ..objects import Commit, Tag, TagSignature
from ..paths import REPO_DIR
from ..refs import TAGS, check_ref_name
from ..repo import Repository
from .errors import KeyFileError, SignatureError, UntrustedKey
from .integrity import verify_closure

if TYPE_CHECKING:
    from ..config import Config

KEY_PREFIX = "ed25519:"
TRUST_SECTION = "trusted-keys"
DEFAULT_KEY_NAME = "default"


def key_dir() -> Path:
    """Where keys go by default: ``$MV_KEY_DIR``, else ``$XDG_CONFIG_HOME/mvstore/keys``."""
    env = os.environ.get("MV_KEY_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "mvstore" / "keys"


def public_key_text(raw: bytes) -> str:
    return KEY_PREFIX + raw.hex()


def parse_public_key(text: str) -> bytes:
    """``ed25519:<64 hex>`` → the 32 raw bytes."""
    body = text.strip()
    if body.startswith(KEY_PREFIX):
        body = body[len(KEY_PREFIX) :]
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UsageError(f"not an Ed25519 public key: {text[:80]!r} (expected ed25519:<64 hex digits>)")
    return raw


def _inside_repository(path: Path) -> Path | None:
    for candidate in (path, *path.parents):
        if (candidate / REPO_DIR / "HEAD").is_file():
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class KeyInfo:
    path: Path  # the private key file
    public_key: str  # ed25519:<hex>


def generate_key(name: str = DEFAULT_KEY_NAME, directory: str | os.PathLike[str] | None = None) -> KeyInfo:
    """A new Ed25519 key: ``<dir>/<name>.key`` (PKCS#8 PEM, 0600) and ``<name>.pub``; never overwrites."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    check_ref_name(name, "key")
    if "/" in name:
        raise UsageError(f"key name {name!r} must not contain '/'")
    d = Path(directory).expanduser().absolute() if directory is not None else key_dir()
    repo_root = _inside_repository(d)
    if repo_root is not None:
        raise UsageError(
            f"{d} is inside the repository at {repo_root}: a private key there could be committed; "
            "choose a folder outside it (--dir)"
        )
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = d / f"{name}.key"
    if path.exists():
        raise KeyFileError(f"{path} already exists; choose another --name or delete it first")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    raw_pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    tmp = d / f".{name}.key.tmp-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if the key appeared meanwhile: never overwrite a key
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; choose another --name or delete it first") from None
    finally:
        os.unlink(tmp)
    pub_text = public_key_text(raw_pub)
    (d / f"{name}.pub").write_text(f"{pub_text} {name}\n", encoding="ascii")
    return KeyInfo(path, pub_text)


def default_key_path(config: Config | None) -> Path:
    """``user.signingkey`` from the repo config, ``$MV_SIGNING_KEY``, or ``<key dir>/default.key``."""
    configured = config.get("user", "signingkey") if config is not None else None
    env = os.environ.get("MV_SIGNING_KEY")
    if configured:
        return Path(configured).expanduser()
    if env:
        return Path(env).expanduser()
    return key_dir() / f"{DEFAULT_KEY_NAME}.key"


def load_private_key(path: str | os.PathLike[str]) -> Any:
    """An Ed25519 private key from a PEM file that only its owner can read (like ssh insists)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    p = Path(path)
    try:
        st = p.stat()
        data = p.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(
            f"{p}: no signing key there (create one with 'mv key gen', or pass --key)"
        ) from None
    except OSError as e:
        raise KeyFileError(f"{p}: cannot read the signing key ({e.strerror})") from None
    if st.st_mode & 0o077:
        raise KeyFileError(f"{p}: permissions {st.st_mode & 0o777:04o} are too open; run 'chmod 600 {p}'")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{p}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{p}: not an Ed25519 key")
    return key


def public_key_of(private_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    raw: bytes = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return raw


def signer_for(key_path: str | os.PathLike[str]) -> Any:
    """A function that signs a tag with the key at ``key_path`` (loaded now, so errors come first)."""
    key = load_private_key(key_path)
    pub = public_key_of(key)

    def sign(tag: Tag) -> Tag:
        unsigned = Tag(
            tag.target, tag.target_type, tag.name, tag.tagger, tag.time, tag.tz_offset, tag.message
        )
        sig = key.sign(tag_signing_bytes(unsigned))
        return Tag(
            unsigned.target,
            unsigned.target_type,
            unsigned.name,
            unsigned.tagger,
            unsigned.time,
            unsigned.tz_offset,
            unsigned.message,
            TagSignature(key=pub, sig=sig),
        )

    return sign


# -- trust -------------------------------------------------------------------------------------------


def trusted_keys(repo: Repository, keyrings: list[str] | None = None) -> dict[bytes, str]:
    """Raw public key → name, from ``[trusted-keys]`` in ``.mv/config`` and keyring files.

    A keyring file has one ``ed25519:<hex> [name]`` per line; ``#`` starts a comment. The
    ``trust.keyring`` config value and ``$MV_TRUSTED_KEYS`` name one such file each.
    """
    out: dict[bytes, str] = {}
    for name, value in repo.config.items(TRUST_SECTION):
        out[parse_public_key(value)] = name
    files = list(keyrings or [])
    for extra in (repo.config.get("trust", "keyring"), os.environ.get("MV_TRUSTED_KEYS")):
        if extra:
            files.append(extra)
    for f in files:
        path = Path(f).expanduser()
        try:
            lines = path.read_text("utf-8").splitlines()
        except OSError as e:
            raise KeyFileError(f"{path}: cannot read the keyring ({e.strerror})") from None
        for n, line in enumerate(lines, 1):
            body = line.split("#", 1)[0].strip()
            if not body:
                continue
            parts = body.split(None, 1)
            try:
                raw = parse_public_key(parts[0])
            except UsageError:
                raise KeyFileError(f"{path}:{n}: not an ed25519:<hex> public key") from None
            out[raw] = parts[1] if len(parts) > 1 else path.name
    return out


def trust_key(repo: Repository, public_key: str, name: str) -> str:
    """Add a public key to ``[trusted-keys]`` in the repo config (the public half only, ever)."""
    raw = parse_public_key(public_key)
    check_ref_name(name, "key")
    if any(c in name for c in "=:[]#;"):
        raise UsageError(f"key name {name!r} must not contain = : [ ] # ;")
    repo.config.set(TRUST_SECTION, name, public_key_text(raw))
    repo.config.save()
    return public_key_text(raw)


def untrust_key(repo: Repository, name: str) -> None:
    keep = repo.config.items(TRUST_SECTION)
    if name not in dict(keep):
        raise UsageError(f"no trusted key named {name!r}")
    repo.config.remove_section(TRUST_SECTION)
    for n, value in keep:
        if n != name:
            repo.config.set(TRUST_SECTION, n, value)
    repo.config.save()


# -- verify ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyResult:
    rev: str
    tag: str | None
    tag_id: ObjectId | None
    commit: ObjectId
    signer: str | None  # ed25519:<hex>
    signer_name: str | None
    objects: int
    bytes: int


def check_signature(tag: Tag, where: str) -> None:
    """The signature is well-formed and verifies (trust is checked separately)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    sig = tag.signature
    if sig is None:
        raise SignatureError(f"{where} is not signed (sign it with 'mv tag -s')")
    try:
        Ed25519PublicKey.from_public_bytes(sig.key).verify(sig.sig, tag_signing_bytes(tag.unsigned()))
    except (InvalidSignature, ValueError):
        raise SignatureError(f"{where}: BAD signature — the tag was altered after it was signed") from None


def verify(
    repo: Repository,
    rev: str,
    keyrings: list[str] | None = None,
    require_signature: bool = True,
    history: bool = False,
) -> VerifyResult:
    """Check the signature of tag ``rev`` and its trust, then re-hash every object below it.

    With ``require_signature=False`` any revision is accepted and only the hashes are checked.
    """
    from ..revparse import resolve_object

    oid = resolve_object(repo, rev)
    obj = repo.read_object(oid)  # re-hashed on read: a tampered tag object fails here
    tag_name: str | None = None
    signer = signer_name = None
    if isinstance(obj, Tag):
        tag_name = obj.name
        ref_name = rev[len(TAGS) :] if rev.startswith(TAGS) else rev
        if _valid_tag_ref(ref_name) and repo.refs.read(TAGS + ref_name) == oid and obj.name != ref_name:
            raise SignatureError(
                f"tag {ref_name!r} holds a tag object named {obj.name!r}: a signed tag reused under another name"
            )
        if obj.signature is not None or require_signature:
            check_signature(obj, f"tag {obj.name}")
            assert obj.signature is not None
            trusted = trusted_keys(repo, keyrings)
            signer = public_key_text(obj.signature.key)
            if obj.signature.key not in trusted:
                raise UntrustedKey(
                    f"tag {obj.name} is signed by {signer}, which is not a trusted key "
                    "(trust it with 'mv key trust KEY NAME' or pass --keyring FILE)"
                )
            signer_name = trusted[obj.signature.key]
    elif require_signature:
        raise SignatureError(f"{rev} is not a signed tag (use --unsigned to check object hashes only)")
    commit = repo.peel(oid)
    if not isinstance(repo.read_object(commit), Commit):
        raise SignatureError(f"{rev} does not name a commit")
    objects, nbytes = verify_closure(repo, commit, history)
    return VerifyResult(
        rev,
        tag_name,
        oid if tag_name else None,
        commit,
        signer,
        signer_name,
        objects + bool(tag_name),
        nbytes,
    )


def _valid_tag_ref(name: str) -> bool:
    try:
        check_ref_name(name, "tag")
        return True
    except ValueError:
        return False
