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

from typing import TYPE_CHECKING, Any

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
    "RevisionNotFound",
    "__version__",
]

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name == "Repo":
        from .api import Repo

        return Repo
    if name == "ObjectId":
        from .ids import ObjectId

        return ObjectId
    if name in __all__:
        from . import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'mvstore' has no attribute {name!r}")
