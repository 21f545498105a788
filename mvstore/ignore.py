"""Which files a snapshot includes: everything but ``.mv/``, ``.git/`` and ``.mvignore`` matches.

Kept free of ``pathlib``/``re``/``typing`` imports: ``mv status``'s fast path loads this module,
and every millisecond of start-up shows in a shell prompt.
"""

from __future__ import annotations

import os

from .paths import REPO_DIR

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

ALWAYS_IGNORED_DIRS = {REPO_DIR, ".git"}
IGNORE_FILE = ".mvignore"
_HEX = frozenset("0123456789abcdef")


def is_checkout_tmp(name: str) -> bool:
    """Checkout's own temp files (``.<name>.mvtmp-<8 hex>``, ops/materialize.py): a checkout killed
    mid-way can leave one behind, and it must never be committed. ``mv gc`` removes old ones."""
    head, sep, tail = name.rpartition(".mvtmp-")
    return bool(sep) and len(head) > 1 and head[0] == "." and len(tail) == 8 and set(tail) <= _HEX


class Ignore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._spec: Any = None
        path = os.path.join(root, IGNORE_FILE)
        if os.path.exists(path):
            import pathspec  # gitignore semantics are subtle; pathspec implements them fully

            with open(path, encoding="utf-8") as f:
                self._spec = pathspec.GitIgnoreSpec.from_lines(f.read().splitlines())

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        if self._spec is None:
            return False
        return bool(self._spec.match_file(rel + "/" if is_dir else rel))


def walk_files(root: str | os.PathLike[str], ignore: Ignore) -> Iterator[tuple[str, os.stat_result]]:
    """(posix relative path, stat) of every regular file, following file symlinks, sorted."""
    out: list[tuple[str, os.stat_result]] = []

    def visit(dirpath: str, prefix: str) -> None:
        for de in list(os.scandir(dirpath)):
            rel = prefix + de.name
            if de.is_dir(follow_symlinks=False):
                if (not prefix and de.name in ALWAYS_IGNORED_DIRS) or ignore.ignored(rel, True):
                    continue
                visit(de.path, rel + "/")
            elif de.is_file(follow_symlinks=True):
                if ignore.ignored(rel) or is_checkout_tmp(de.name):
                    continue
                out.append((rel, de.stat(follow_symlinks=True)))

    visit(os.fspath(root), "")
    out.sort(key=lambda x: x[0])
    return iter(out)
