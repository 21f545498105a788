"""A repository: an object store, refs, config and a stat cache under ``.mv/``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from . import codec
from .codec import KIND_STRUCT
from .config import Config, identity
from .errors import InvalidObject, NotARepository, RepositoryExists
from .ids import ObjectId
from .objects import ChunkedBlob, Commit, SafetensorsManifest, StoredObject, Tag, Tree
from .paths import REPO_DIR
from .refs import HEADS, RefStore, write_atomic
from .store.local import LocalObjectStore

DEFAULT_BRANCH = "main"
REPO_FORMAT = "1"


class Repository:
    """Plumbing access to one repository. Porcelain lives in :mod:`mvstore.ops`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mvdir = root / REPO_DIR
        self.store = LocalObjectStore(self.mvdir / "objects", self.mvdir / "tmp")
        self.refs = RefStore(self.mvdir)
        self.config = Config(self.mvdir / "config")
        fmt = self.config.get("core", "format")
        if fmt != REPO_FORMAT:
            raise NotARepository(f"{self.mvdir}: unsupported repository format {fmt!r}")
        self._read_struct = lru_cache(maxsize=4096)(self._read_struct_uncached)

    # -- finding and creating -----------------------------------------------------------------------

    @classmethod
    def find(cls, start: str | os.PathLike[str] | None = None) -> Repository:
        """The repository at ``start`` or the nearest parent folder holding ``.mv``."""
        path = Path(start if start is not None else os.getcwd()).resolve()
        for candidate in (path, *path.parents):
            if (candidate / REPO_DIR / "HEAD").is_file():
                return cls(candidate)
        raise NotARepository(f"not an mvstore repository (or any parent): {path}")

    @classmethod
    def init(cls, path: str | os.PathLike[str], branch: str = DEFAULT_BRANCH) -> Repository:
        root = Path(path).resolve()
        mvdir = root / REPO_DIR
        if (mvdir / "HEAD").exists():
            raise RepositoryExists(f"{root} already holds an mvstore repository")
        for sub in ("objects", "tmp", "refs/heads", "refs/tags", "logs"):
            (mvdir / sub).mkdir(parents=True, exist_ok=True)
        cfg = Config(mvdir / "config")
        cfg.set("core", "format", REPO_FORMAT)
        cfg.save()
        write_atomic(mvdir / "HEAD", f"ref: {HEADS}{branch}\n".encode())  # HEAD last: marks it a repo
        return cls(root)

    # -- objects ------------------------------------------------------------------------------------

    def _read_struct_uncached(self, oid: ObjectId) -> StoredObject:
        raw = self.store.read(oid, KIND_STRUCT)
        return codec.decode_object(raw, oid.hex())

    def read_object(self, oid: ObjectId) -> StoredObject:
        """A verified, decoded structured object (cached: objects are immutable)."""
        return self._read_struct(oid)

    def _typed(self, oid: ObjectId, typ: type, name: str) -> StoredObject:
        obj = self.read_object(oid)
        if not isinstance(obj, typ):
            raise InvalidObject(f"object {oid.hex()} is a {type(obj).__name__.lower()}, expected a {name}")
        return obj

    def commit_object(self, oid: ObjectId) -> Commit:
        return self._typed(oid, Commit, "commit")  # type: ignore[return-value]

    def tree(self, oid: ObjectId) -> Tree:
        return self._typed(oid, Tree, "tree")  # type: ignore[return-value]

    def manifest(self, oid: ObjectId) -> SafetensorsManifest:
        return self._typed(oid, SafetensorsManifest, "safetensors manifest")  # type: ignore[return-value]

    def chunked(self, oid: ObjectId) -> ChunkedBlob:
        return self._typed(oid, ChunkedBlob, "chunked blob")  # type: ignore[return-value]

    def peel(self, oid: ObjectId) -> ObjectId:
        """Follow annotated tags to the commit they name."""
        for _ in range(16):
            obj = self.read_object(oid)
            if isinstance(obj, Tag):
                oid = obj.target
                continue
            if isinstance(obj, Commit):
                return oid
            raise InvalidObject(f"object {oid.hex()} is a {type(obj).__name__.lower()}, not a commit")
        raise InvalidObject(f"tag chain at {oid.hex()} is too deep")

    def shallow_commits(self) -> set[ObjectId]:
        """Commits whose parents were deliberately not fetched (``clone --rev``): history stops there."""
        try:
            text = (self.mvdir / "shallow").read_text("ascii")
        except (FileNotFoundError, UnicodeDecodeError):
            return set()
        out = set()
        for line in text.split():
            try:
                out.add(ObjectId.from_hex(line.strip()))
            except ValueError:
                continue
        return out

    def author(self) -> str:
        return identity(self.config)

    def stat_cache_path(self) -> Path:
        return self.mvdir / "index"
