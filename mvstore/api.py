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

    from .ops.gc import GcResult
    from .ops.repack import RepackResult
    from .ops.repair import RepairResult
    from .ops.sync import TransferResult
    from .ops.verify import VerifyReport
    from .release.changes import Changelog, Suggestion
    from .release.checksums import ExportCheck
    from .release.convert import ConvertResult
    from .release.signing import KeyInfo, VerifyResult
    from .release.stages import StageResult, VersionStage
    from .release.validate import ValidationReport

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
        validate: bool = False,
    ) -> str:
        """Snapshot the folder (or only ``paths``, keeping the rest from HEAD); returns the commit id.

        With ``validate``, :meth:`validate` runs on the folder first and errors refuse the commit.
        """
        scope = normalize_pathspecs(self._repo, paths, self._repo.root)
        if validate:
            from .release.validate import validate_folder

            validate_folder(self._repo.root).raise_for_errors("the folder")
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

    def export(self, rev: str, dest: PathLike, manifest: bool = False) -> Path:
        """Materialize ``rev`` in ``dest``; ``manifest`` adds a ``MANIFEST.sha256`` of every file."""
        return _checkout.export(self._repo, rev, dest, manifest).dest

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

    def tag(
        self,
        name: str,
        rev: str = "HEAD",
        message: str | None = None,
        force: bool = False,
        sign: bool = False,
        key: PathLike | None = None,
    ) -> str:
        """Tag ``rev``; version-like names must be semver; ``sign`` signs with your Ed25519 key."""
        from .release.tagging import tag_version

        return tag_version(self._repo, name, rev, message, force, sign, key).info.id.hex()

    def bump(self, level: str, rev: str = "HEAD", message: str | None = None, sign: bool = False) -> str:
        """Tag ``rev`` with the next ``major``/``minor``/``patch`` (or ``auto``) version; returns its name."""
        from .release.tagging import bump_tag

        return bump_tag(self._repo, level, rev, message, sign).info.name

    # -- releases -------------------------------------------------------------------------------------

    def suggest_bump(self, old: str, new: str = "HEAD", dtype_major: bool = False) -> Suggestion:
        from .release.changes import compare

        return compare(self._repo, old, new, dtype_major).suggestion

    def changelog(self, old: str, new: str = "HEAD") -> Changelog:
        from .release.changes import changelog

        return changelog(self._repo, old, new)

    def validate(self, rev: str | None = "HEAD") -> ValidationReport:
        """HF-style artifact checks on ``rev`` (``None``: the work folder as it is)."""
        from .release.validate import validate_folder, validate_rev

        return validate_folder(self._repo.root) if rev is None else validate_rev(self._repo, rev)

    def stage(self, version: str, stage: str, why: str = "", force: bool = False) -> StageResult:
        """Record a lifecycle change (promoting to ``release`` requires validation to pass)."""
        from .release.stages import set_stage

        return set_stage(self._repo, version, stage, why, force)

    def stages(self) -> list[VersionStage]:
        from .release.stages import list_stages

        return list_stages(self._repo)

    def verify(self, rev: str, keyrings: list[str] | None = None, require_signature: bool = True) -> VerifyResult:
        """Check a signed tag against the trusted keys and re-hash every object below it."""
        from .release.signing import verify

        return verify(self._repo, rev, keyrings, require_signature)

    def trust_key(self, public_key: str, name: str) -> str:
        from .release.signing import trust_key

        return trust_key(self._repo, public_key, name)

    @staticmethod
    def generate_key(name: str = "default", directory: PathLike | None = None) -> KeyInfo:
        """A new Ed25519 signing key, written with mode 0600 outside any repository."""
        from .release.signing import generate_key

        return generate_key(name, directory)

    @staticmethod
    def verify_export(folder: PathLike) -> ExportCheck:
        from .release.checksums import verify_export

        return verify_export(folder)

    def convert(self, rev: str, path: str, out: str | None = None, message: str | None = None) -> ConvertResult:
        """Convert a pickled checkpoint to safetensors (``weights_only`` load; flat tensor dicts only)."""
        from .release.convert import convert_rev

        return convert_rev(self._repo, rev, path, out, message)

    def tags(self) -> dict[str, str]:
        return {t.name: t.commit.hex() for t in _refs.list_tags(self._repo)}

    def branch(self, name: str, rev: str = "HEAD") -> str:
        return _refs.create_branch(self._repo, name, rev).id.hex()

    def delete_branch(self, name: str) -> str:
        """Delete a branch (not the current one); returns the id it pointed at."""
        return _refs.delete_branch(self._repo, name).hex()

    def branches(self) -> dict[str, str]:
        return {b.name: b.id.hex() for b in _refs.list_branches(self._repo)}

    def stats(self) -> _stats.StatsResult:
        return _stats.stats(self._repo)

    def read_file(self, rev: str, path: str) -> bytes:
        return _inspect.cat(self._repo, f"{rev}:{path}")

    # -- remotes ---------------------------------------------------------------------------------------

    def add_remote(
        self, name: str, url: str, options: Mapping[str, object] | None = None, overwrite: bool = False
    ) -> None:
        """Remember ``url`` (any fsspec URL) as ``name``; ``options`` are fsspec storage options,
        never credentials (those come from each backend's own chain)."""
        from .remote.config import add_remote

        add_remote(self._repo.config, name, url, dict(options or {}), overwrite)

    def remotes(self) -> dict[str, str]:
        from .remote.config import list_remotes

        return {r.name: r.url for r in list_remotes(self._repo.config)}

    def push(
        self,
        remote: str | None = None,
        refs: list[str] | None = None,
        force: bool = False,
        compress: bool = True,
        set_upstream: bool = False,
    ) -> TransferResult:
        """Upload what the remote lacks, then move its refs by compare-and-swap (``mv push``).
        With no arguments: the current branch to its upstream."""
        from .ops import sync

        return sync.push(self._repo, remote, refs, force=force, compress=compress, set_upstream_branch=set_upstream)

    def fetch(self, remote: str = "origin", wants: list[str] | None = None) -> TransferResult:
        """Update ``refs/remotes/<remote>/*``; full ids in ``wants`` are fetched as pins, verified."""
        from .ops import sync

        return sync.fetch(self._repo, remote, wants)

    def pull(self, remote: str | None = None, branch: str | None = None) -> TransferResult:
        """Fetch, then fast-forward the current branch and its files."""
        from .ops import sync

        return sync.pull(self._repo, remote, branch)

    @classmethod
    def clone(
        cls,
        url: str,
        dest: PathLike,
        rev: str | None = None,
        no_checkout: bool = False,
        options: Mapping[str, object] | None = None,
    ) -> Repo:
        """A new repository at ``dest`` from ``url`` (only what ``rev`` needs, when given); on any
        failure nothing is left behind."""
        from .ops import sync

        repository, _ = sync.clone(url, dest, rev, no_checkout, dict(options or {}))
        return cls(repository.root)

    # -- upkeep ---------------------------------------------------------------------------------------

    def repack(self, depth: int = 4, delta: bool = True, dry_run: bool = False) -> RepackResult:
        """Compress history in place (zstd planes, XOR deltas against the next checkpoint); ids
        never change."""
        from .ops.repack import repack

        return repack(self._repo, depth, delta, dry_run)

    def fsck(self, rev: str | None = None, full: bool = False) -> VerifyReport:
        """``mv verify``: check objects, refs and reachability (``full`` re-hashes every data
        chunk). Damage is reported in the result, never raised."""
        from .ops.verify import verify

        return verify(self._repo, rev, full)

    def gc(
        self, prune: str = "2.weeks.ago", dry_run: bool = False, expire_reflog: str = "90.days.ago"
    ) -> GcResult:
        """Remove unreachable objects older than ``prune`` (a grace period protects writers in
        flight); reflog entries older than ``expire_reflog`` stop keeping objects alive."""
        from .ops.gc import gc

        return gc(self._repo, prune, dry_run, expire_reflog)

    def repair(self, remote: str | None = None, full: bool = False) -> RepairResult:
        """Quarantine damaged objects and fetch good copies from ``remote`` (``mv repair``)."""
        from .ops.repair import repair

        return repair(self._repo, remote, full)

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
