"""Validation of paths that come from trees, command lines and remotes.

A tree is data from a possibly hostile source: a path in it must never escape the work folder.
"""

from __future__ import annotations

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
