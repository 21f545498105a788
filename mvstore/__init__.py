"""mvstore: Git for model weights.

A content-addressed store for ML checkpoints: safetensors files are split per tensor, every chunk
is stored once by its blake3 hash, and every file rebuilds byte for byte.

    >>> import mvstore
    >>> repo = mvstore.Repo.init("my-model")          # doctest: +SKIP
    >>> pin = repo.commit("step 1000", meta={"step": 1000})  # doctest: +SKIP
    >>> sd = repo.load_state_dict(pin)                # doctest: +SKIP

Imports are lazy so that the ``mv`` command starts fast.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the fast status path ~3 ms

__version__ = "0.1.0"

__all__ = [
    "AmbiguousRevision",
    "CorruptObject",
    "DirtyWorktree",
    "InvalidSafetensors",
    "MvError",
    "NotARepository",
    "NothingToCommit",
    "ObjectId",
    "Repo",
    "RemoteModel",
    "load_state_dict",
    "open",
    "RevisionNotFound",
    "__version__",
]

if TYPE_CHECKING:
    from typing import Any

    import torch

    from .api import Repo
    from .errors import (
        AmbiguousRevision,
        CorruptObject,
        DirtyWorktree,
        InvalidSafetensors,
        MvError,
        NotARepository,
        NothingToCommit,
        RevisionNotFound,
    )
    from .ids import ObjectId
    from .remote.lazy import RemoteModel


def open(url: str, rev: str = "main", storage_options: dict[str, Any] | None = None) -> RemoteModel:  # noqa: A001
    """A revision of a remote repository (any fsspec URL), read lazily: only what you ask for travels.

    ``rev`` is a branch, a tag, or a full id — a pin, verified against every byte that arrives.
    """
    from .remote.lazy import RemoteModel

    return RemoteModel(url, rev, storage_options)


def load_state_dict(
    url: str,
    rev: str = "main",
    file: str | None = None,
    storage_options: dict[str, Any] | None = None,
    device: str = "cpu",
) -> dict[str, torch.Tensor]:
    """All weights of ``rev`` from a local repository path or a remote URL, verified against the pin."""
    import os

    if "://" not in url and os.path.isdir(os.path.join(url, ".mv")):
        from .api import Repo

        return Repo(url).load_state_dict(rev, file, device)
    return open(url, rev, storage_options).load_state_dict(file, device)


def __getattr__(name: str) -> Any:
    if name == "Repo":
        from .api import Repo

        return Repo
    if name == "RemoteModel":
        from .remote.lazy import RemoteModel

        return RemoteModel
    if name == "ObjectId":
        from .ids import ObjectId

        return ObjectId
    if name in __all__:
        from . import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'mvstore' has no attribute {name!r}")
