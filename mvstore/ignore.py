"""Which files a snapshot includes: everything but ``.mv/``, ``.git/`` and ``.mvignore`` matches."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .paths import REPO_DIR

ALWAYS_IGNORED_DIRS = {REPO_DIR, ".git"}
IGNORE_FILE = ".mvignore"


class Ignore:
    def __init__(self, root: Path) -> None:
        self._spec: Any = None
        path = root / IGNORE_FILE
        if path.exists():
            import pathspec  # gitignore semantics are subtle; pathspec implements them fully

            self._spec = pathspec.GitIgnoreSpec.from_lines(path.read_text("utf-8").splitlines())

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        if self._spec is None:
            return False
        return bool(self._spec.match_file(rel + "/" if is_dir else rel))


def walk_files(root: Path, ignore: Ignore) -> Iterator[tuple[str, os.stat_result]]:
    """(posix relative path, stat) of every regular file, following file symlinks, sorted."""
    out: list[tuple[str, os.stat_result]] = []

    def visit(dirpath: str, prefix: str) -> None:
        try:
            it = list(os.scandir(dirpath))
        except PermissionError:
            raise
        for de in it:
            rel = prefix + de.name
            if de.is_dir(follow_symlinks=False):
                if (not prefix and de.name in ALWAYS_IGNORED_DIRS) or ignore.ignored(rel, True):
                    continue
                visit(de.path, rel + "/")
            elif de.is_file(follow_symlinks=True):
                if ignore.ignored(rel):
                    continue
                out.append((rel, de.stat(follow_symlinks=True)))

    visit(str(root), "")
    out.sort(key=lambda x: x[0])
    return iter(out)
