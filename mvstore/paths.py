"""Validation of paths that come from trees, command lines and remotes.

A tree is data from a possibly hostile source: a path in it must never escape the work folder.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import InvalidPath

MAX_PATH_BYTES = 4096
REPO_DIR = ".mv"
#: Never written by checkout: our own repository, and git's (a hostile tree could plant hooks).
RESERVED_TOP = {REPO_DIR, ".git"}


def check_tree_path(path: str) -> str:
    """A relative POSIX path with no ``.``/``..``/empty parts, no backslash or control chars."""
    if not path or len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidPath(f"invalid path in tree: {path[:80]!r}")
    if path.startswith("/") or "\\" in path or any(ord(c) < 32 or c == "\x7f" for c in path):
        raise InvalidPath(f"invalid path in tree: {path[:80]!r}")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or parts[0].lower() in RESERVED_TOP:
        raise InvalidPath(f"invalid path in tree: {path[:80]!r}")
    return path


def file_folder_clash(paths: Iterable[str]) -> str | None:
    """A path that is also another path's folder (``a`` and ``a/b``), else None: no checkout could
    write such a tree, so writers refuse it and the tree decoder rejects it."""
    files = set(paths)
    for path in files:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                return "/".join(parts[:i])
    return None
