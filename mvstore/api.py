"""The Python API: :class:`Repo`, a thin typed facade over the operations in :mod:`mvstore.ops`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .ops import checkout as _checkout
from .ops import commit as _commit
from .ops import diff as _diff
from .ops import history as _history
from .ops import inspect as _inspect
from .ops import refs_ops as _refs
from .ops import stats as _stats
from .ops import status as _status
from .ops.snapshot import normalize_pathspecs
from .repo import Repository
from .revparse import resolve_commit, resolve_object

if TYPE_CHECKING:
    import torch

PathLike = str | os.PathLike[str]


class Repo:
    """A model repository. ``Repo(path)`` finds ``.mv`` at ``path`` or above it."""

    def __init__(self, path: PathLike = ".") -> None:
        self._repo = Repository.find(path)

    @classmethod
    def init(cls, path: PathLike = ".") -> Repo:
        Repository.init(path)
        return cls(path)

    @property
    def path(self) -> Path:
        return self._repo.root

    @property
    def repository(self) -> Repository:
        """The plumbing layer, for tools that need objects and refs directly."""
        return self._repo

    # -- snapshots -----------------------------------------------------------------------------------

    def commit(
        self,
        message: str = "",
        paths: list[str] | None = None,
        meta: Mapping[str, object] | None = None,
        allow_empty: bool = False,
    ) -> str:
        """Snapshot the folder (or only ``paths``, keeping the rest from HEAD); returns the commit id."""
        scope = normalize_pathspecs(self._repo, paths, self._repo.root)
        return _commit.commit(self._repo, message, scope, meta, allow_empty).id.hex()

    def save(
        self,
        state_dict: Mapping[str, torch.Tensor],
        path: str = "model.safetensors",
        message: str = "",
        meta: Mapping[str, object] | None = None,
    ) -> str:
        """Commit a state dict as a safetensors file straight from memory; returns the commit id."""
        from .ops import tensors

        return tensors.save(self._repo, state_dict, path, message, meta).hex()

    def checkout(
        self, rev: str, paths: list[str] | None = None, force: bool = False
    ) -> _checkout.CheckoutResult:
        scope = normalize_pathspecs(self._repo, paths, self._repo.root)
        return _checkout.checkout(self._repo, rev, scope, force)

    def switch(self, branch: str, create: bool = False, force: bool = False) -> _checkout.CheckoutResult:
        return _checkout.switch(self._repo, branch, create, force)

    def export(self, rev: str, dest: PathLike) -> Path:
        return _checkout.export(self._repo, rev, dest).dest

    def status(self) -> _status.StatusResult:
        return _status.status(self._repo)

    # -- history and refs -----------------------------------------------------------------------------

    def resolve(self, rev: str) -> str:
        """The full id a revision names: the pin."""
        return resolve_object(self._repo, rev).hex()

    def resolve_commit(self, rev: str) -> str:
        return resolve_commit(self._repo, rev).hex()

    def log(self, rev: str = "HEAD", limit: int | None = None) -> list[_history.LogEntry]:
        return _history.log(self._repo, rev, limit)

    def diff(self, a: str | None = None, b: str | None = None, stats: bool = False) -> _diff.DiffResult:
        return _diff.diff(self._repo, a, b, stats)

    def tag(self, name: str, rev: str = "HEAD", message: str | None = None, force: bool = False) -> str:
        return _refs.create_tag(self._repo, name, rev, message, force).id.hex()

    def tags(self) -> dict[str, str]:
        return {t.name: t.commit.hex() for t in _refs.list_tags(self._repo)}

    def branch(self, name: str, rev: str = "HEAD") -> str:
        return _refs.create_branch(self._repo, name, rev).id.hex()

    def branches(self) -> dict[str, str]:
        return {b.name: b.id.hex() for b in _refs.list_branches(self._repo)}

    def stats(self) -> _stats.StatsResult:
        return _stats.stats(self._repo)

    def read_file(self, rev: str, path: str) -> bytes:
        return _inspect.cat(self._repo, f"{rev}:{path}")

    # -- tensors --------------------------------------------------------------------------------------

    def load_state_dict(
        self, rev: str = "HEAD", file: str | None = None, device: str = "cpu"
    ) -> dict[str, torch.Tensor]:
        """All tensors of a revision's weights, from the store (zero-copy where possible), verified."""
        from .ops import tensors

        return tensors.load_state_dict(self._repo, rev, file, device)

    def tensor(
        self, name: str, rev: str = "HEAD", file: str | None = None, device: str = "cpu"
    ) -> torch.Tensor:
        """One tensor by name; no other tensor's bytes are read."""
        from .ops import tensors

        return tensors.load_state_dict(self._repo, rev, file, device, names=[name])[name]
