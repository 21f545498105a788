"""Read a model straight from a remote, fetching only what is asked for.

``open(url, rev)`` fetches the commit, its tree and the safetensors manifests (small structured
objects); ``tensor(name)`` then fetches just that tensor's chunks — by range from packs, or one GET
per large chunk. Everything lands, verified, in a local cache repository (``$MVSTORE_CACHE`` or
``~/.cache/mvstore``), so a second read costs no request.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..codec import KIND_DATA, KIND_STRUCT
from ..errors import RevisionNotFound
from ..ids import ObjectId, hash_bytes
from ..objects import Commit, SafetensorsManifest, Tag, Tree
from ..refs import HEADS, TAGS
from ..repo import Repository
from .layout import RemoteLayout, is_full_hex

if TYPE_CHECKING:
    import torch


def cache_root() -> Path:
    return Path(os.environ.get("MVSTORE_CACHE") or Path.home() / ".cache" / "mvstore")


class RemoteModel:
    """One pinned revision of a remote repository."""

    def __init__(self, url: str, rev: str = "main", storage_options: dict[str, Any] | None = None) -> None:
        from ..ops.sync import open_backend

        self.url = url
        key = hash_bytes(url.encode()).hex()[:24]
        root = cache_root() / "remotes" / key
        self.cache = Repository(root) if (root / ".mv" / "HEAD").exists() else Repository.init(root)
        self.layout = RemoteLayout(open_backend(url, storage_options or {}), self.cache.mvdir / "idx")
        self.layout.check()
        self.commit_id = self._resolve(rev)
        self._fetch_structure()

    @property
    def requests(self) -> int:
        return self.layout.requests

    def _resolve(self, rev: str) -> ObjectId:
        if is_full_hex(rev):
            return ObjectId.from_hex(rev)
        refs = self.layout.refs()
        found = refs.get(TAGS + rev) or refs.get(HEADS + rev) or refs.get(rev)
        if found is None:
            raise RevisionNotFound(f"{rev}: no such branch or tag on {self.url} (pin a full id)")
        return found

    def _fetch(self, ids: list[ObjectId]) -> None:
        missing = [o for o in dict.fromkeys(ids) if not self.cache.store.has(o)]
        if not missing:
            return
        with self.cache.store.transaction() as txn:
            for oid, kind, raw in self.layout.download(missing):
                txn.put(oid, raw, kind)

    def _fetch_structure(self) -> None:
        """Commit (peeling tags), tree and manifests: small objects, a few requests."""
        oid = self.commit_id
        for _ in range(16):
            self._fetch([oid])
            obj = self.cache.read_object(oid)
            if isinstance(obj, Tag):
                oid = obj.target
                continue
            if not isinstance(obj, Commit):
                raise RevisionNotFound(f"{self.commit_id.hex()} is not a commit on {self.url}")
            break
        self.commit_id = oid
        commit = self.cache.commit_object(oid)
        self._fetch([commit.tree])
        tree: Tree = self.cache.tree(commit.tree)
        self._fetch([e.id for e in tree.entries if e.id is not None and e.kind in ("safetensors", "gguf", "chunked")])
        self.tree = tree

    def files(self) -> list[str]:
        return [e.path for e in self.tree.entries]

    def _manifests(self, file: str | None) -> list[SafetensorsManifest]:
        from ..ops.tensors import weight_files

        by_path = self.tree.by_path()
        needed = []
        for path in weight_files(self.cache, self.tree, file):
            entry = by_path[path]
            assert entry.id is not None
            needed.append(self.cache.manifest(entry.id))
        return needed

    def tensor_names(self, file: str | None = None) -> list[str]:
        return [t.name for m in self._manifests(file) for t in m.tensors]

    def _ensure_chunks(self, names: list[str] | None, file: str | None) -> None:
        want: list[ObjectId] = []
        for m in self._manifests(file):
            for t in m.tensors:
                if names is None or t.name in names:
                    want.extend(c.id for c in t.chunks)
        self._fetch(want)

    def _ensure_blobs(self) -> None:
        """Blobs a weight index needs (model.safetensors.index.json)."""
        ids = [
            e.id
            for e in self.tree.entries
            if e.kind == "blob" and e.id is not None and e.path.endswith(".json")
        ]
        self._fetch(ids)
        for e in self.tree.entries:
            if e.kind == "chunked" and e.id is not None:
                self._fetch(
                    [c.id for c in self.cache.chunked(e.id).chunks] if e.path.endswith(".json") else []
                )

    def tensor(self, name: str, file: str | None = None, device: str = "cpu") -> torch.Tensor:
        """One tensor; only its own chunks are downloaded (and verified)."""
        from ..ops.tensors import load_state_dict

        self._ensure_blobs()
        self._ensure_chunks([name], file)
        return load_state_dict(self.cache, self.commit_id.hex(), file, device, names=[name])[name]

    def load_state_dict(self, file: str | None = None, device: str = "cpu") -> dict[str, torch.Tensor]:
        from ..ops.tensors import load_state_dict

        self._ensure_blobs()
        self._ensure_chunks(None, file)
        return load_state_dict(self.cache, self.commit_id.hex(), file, device)


__all__ = ["KIND_DATA", "KIND_STRUCT", "RemoteModel", "cache_root"]
