"""``mv checkout``, ``mv switch`` and ``mv export``: materialize a tree, never losing work.

Checkout refuses (without ``force``) to overwrite or delete a file whose content differs both from
HEAD and from the target: that is uncommitted work. Files are replaced atomically one by one, and
HEAD moves only after every file is in place.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import DirtyWorktree, InvalidPath, InvalidRefName, RevisionNotFound, UsageError
from ..ids import ObjectId
from ..ingest import default_workers
from ..objects import Tree, TreeEntry
from ..paths import check_tree_path
from ..refs import HEADS, check_ref_name
from ..repo import Repository
from ..revparse import resolve_commit
from ..statcache import FileStat, StatCache, now_ns
from .materialize import write_entry
from .snapshot import in_scope
from .status import head_tree, worktree_entries


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    id: ObjectId
    branch: str | None
    written: int
    deleted: int
    written_bytes: int


def _safe_dest(root: Path, rel: str) -> Path:
    """Refuse tree paths that would land outside ``root`` (including via a symlinked folder)."""
    check_tree_path(rel)
    dest = root / rel
    parent = dest.parent.resolve()
    if parent != root.resolve() and root.resolve() not in parent.parents:
        raise InvalidPath(f"{rel}: would be written outside {root} (through a symlink)")
    if dest.is_symlink():
        dest.unlink()
    return dest


def checkout(
    repo: Repository, rev: str, scope: list[str] | None = None, force: bool = False
) -> CheckoutResult:
    target_id = resolve_commit(repo, rev)
    target = repo.tree(repo.commit_object(target_id).tree)
    current_head = head_tree(repo)
    res = _apply(repo, repo.root, target, current_head, scope, force)
    branch = None
    if scope is None and rev in ("HEAD", "@"):
        branch = repo.refs.head().branch  # re-checking out HEAD (e.g. with --force) keeps the branch
    elif scope is None:
        if _is_branch(repo, rev):
            branch = rev
            repo.refs.set_head(rev)
        else:
            repo.refs.set_head(None, target_id)
    else:
        branch = repo.refs.head().branch
    return CheckoutResult(target_id, branch, res[0], res[1], res[2])


def update_worktree(
    repo: Repository, target_id: ObjectId, from_empty: bool = False, force: bool = False
) -> None:
    """Make the folder match ``target_id`` without moving HEAD (clone, pull).

    ``from_empty`` treats the folder as holding nothing yet (a fresh clone), so every file is written.
    """
    target = repo.tree(repo.commit_object(target_id).tree)
    base = Tree(()) if from_empty else head_tree(repo)
    _apply(repo, repo.root, target, base, None, force)


def _is_branch(repo: Repository, name: str) -> bool:
    try:
        return repo.refs.read(HEADS + name) is not None
    except InvalidRefName:
        return False


def switch(repo: Repository, name: str, create: bool = False, force: bool = False) -> CheckoutResult:
    if create:
        from .refs_ops import create_branch

        create_branch(repo, name, "HEAD")
    check_ref_name(name, "branch")
    if repo.refs.read(HEADS + name) is None:
        raise RevisionNotFound(f"no branch named {name!r} (use --create to make one)")
    return checkout(repo, name, None, force)


def _apply(
    repo: Repository, root: Path, target: Tree, base: Tree, scope: list[str] | None, force: bool
) -> tuple[int, int, int]:
    want = {e.path: e for e in target.entries if in_scope(e.path, scope)}
    have_base = {e.path: e for e in base.entries if in_scope(e.path, scope)}
    current, _ = worktree_entries(repo, scope)
    for s in scope or ():
        if not any(in_scope(p, [s]) for p in (*want, *have_base, *current)):
            raise RevisionNotFound(f"{s}: no such file or folder in the revision or the work folder")
    to_write: list[TreeEntry] = []
    to_delete: list[str] = []
    conflicts: list[str] = []
    for path, entry in want.items():
        cur = current.get(path)
        if entry.same_content(cur):
            continue
        if scope is None and not force and entry.same_content(have_base.get(path)):
            continue  # unchanged between HEAD and target: local edits (or deletions) carry over
        dirty = cur is not None and not cur.same_content(have_base.get(path))
        if dirty:
            conflicts.append(path)
        to_write.append(entry)
    for path, entry in have_base.items():
        if path in want:
            continue
        cur = current.get(path)
        if cur is None:
            continue
        if not cur.same_content(entry):
            conflicts.append(path)
        to_delete.append(path)
    # What stays after the deletions decides whether a file/folder swap is blocked by local data.
    remaining = set(current) - set(to_delete)
    for entry in to_write:
        p = entry.path
        parts = p.split("/")
        if any("/".join(parts[:i]) in remaining for i in range(1, len(parts))):
            conflicts.append(p)  # an untracked or modified file stands where a folder must go
        elif (root / p).is_dir() and any(r.startswith(p + "/") for r in remaining):
            conflicts.append(p)  # a folder with files we would not delete stands where a file must go
    if conflicts and not force:
        shown = ", ".join(sorted(set(conflicts))[:5]) + (" …" if len(set(conflicts)) > 5 else "")
        raise DirtyWorktree(
            f"uncommitted changes would be overwritten: {shown} (commit them, or use --force)"
        )
    cache = StatCache(repo.stat_cache_path())
    # Deletions first, so that a file can become a folder (and back) in one checkout.
    for path in to_delete:
        dest = _safe_dest(root, path)
        try:
            dest.unlink()
        except (FileNotFoundError, NotADirectoryError):
            pass
        except IsADirectoryError:
            shutil.rmtree(dest)
        cache.forget(path)
        _prune_empty_dirs(root, dest.parent)
    written_bytes = 0
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(default_workers()) as pool:
        for entry in to_write:
            dest = _safe_dest(root, entry.path)  # refuses a symlinked folder before anything moves
            _clear_the_way(root, entry.path)
            write_entry(repo, entry, dest, pool)
            # We know these bytes: stamp the entry after the write, so the file turns trusted once
            # the racy window has passed instead of being re-hashed by the next status.
            cache.record(entry, FileStat.of(os.stat(dest)), now_ns())
            written_bytes += entry.size
    cache.save()
    return len(to_write), len(to_delete), written_bytes


def _clear_the_way(root: Path, rel: str) -> None:
    """Remove a file standing where a parent folder must be, or a folder where the file must be
    (only reached when the caller checked it holds nothing uncommitted, or with --force)."""
    parts = rel.split("/")
    for i in range(1, len(parts)):
        p = root.joinpath(*parts[:i])
        if p.is_symlink() or p.is_file():
            p.unlink()
            break
    dest = root / rel
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)


def _prune_empty_dirs(root: Path, d: Path) -> None:
    root = root.resolve()
    d = d.resolve()
    while d != root and root in d.parents:
        try:
            d.rmdir()
        except OSError:
            return
        d = d.parent


@dataclass(frozen=True, slots=True)
class ExportResult:
    id: ObjectId
    dest: Path
    files: int
    bytes: int


def export(repo: Repository, rev: str, dest: str | os.PathLike[str], manifest: bool = False) -> ExportResult:
    """Materialize ``rev`` into a new (or empty) folder; built beside it and renamed into place.

    With ``manifest``, a ``MANIFEST.sha256`` of the written files goes in too (before the rename,
    so the folder never appears without it).
    """
    target_id = resolve_commit(repo, rev)
    tree = repo.tree(repo.commit_object(target_id).tree)
    out = Path(dest).absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out}: destination exists and is not an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.mvtmp-{secrets.token_hex(4)}")
    staging.mkdir()
    from concurrent.futures import ThreadPoolExecutor

    try:
        with ThreadPoolExecutor(default_workers()) as pool:
            for entry in tree.entries:
                write_entry(repo, entry, _safe_dest(staging, entry.path), pool)
        if manifest:
            from ..release.checksums import write_manifest

            write_manifest(staging, [e.path for e in tree.entries], target_id.hex())
        os.replace(staging, out)  # replaces an empty folder atomically on POSIX
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(target_id, out, len(tree.entries), tree.size)
