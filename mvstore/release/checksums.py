"""``MANIFEST.sha256``: the SHA-256 and size of every exported file, and checking a folder against it.

SHA-256 is what the Hub (LFS pointers) and most download tools check, so the file is written in
``sha256sum`` format — ``sha256sum -c MANIFEST.sha256`` works on it — with each file's size on
a ``#`` comment line (which ``sha256sum`` skips) so that ``mv verify-export`` can also report a
truncated file as such without hashing it::

    # MANIFEST.sha256 written by mvstore; check with: mv verify-export DIR  (or sha256sum -c)
    # rev <commit id>
    # size <bytes> <path>
    <sha256 hex>  <path>
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidPath, UsageError
from ..ingest import default_workers
from ..paths import check_tree_path
from .errors import ChecksumMismatch

MANIFEST_NAME = "MANIFEST.sha256"
_READ = 1 << 20


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(_READ)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])  # hashlib releases the GIL on large updates: threads help
            size += n
    return h.hexdigest(), size


def _hash_all(root: Path, paths: list[str]) -> dict[str, tuple[str, int]]:
    with ThreadPoolExecutor(default_workers()) as pool:
        return dict(zip(paths, pool.map(lambda p: sha256_file(root / p), paths), strict=True))


def _files(root: Path) -> list[str]:
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/")
            if rel != MANIFEST_NAME:
                out.append(rel)
    return sorted(out)


def render_manifest(sums: dict[str, tuple[str, int]], rev: str | None) -> bytes:
    lines = [f"# {MANIFEST_NAME} written by mvstore; check with: mv verify-export DIR  (or sha256sum -c)"]
    if rev:
        lines.append(f"# rev {rev}")
    lines += [f"# size {size} {path}" for path, (_h, size) in sorted(sums.items())]
    lines += [f"{digest}  {path}" for path, (digest, _s) in sorted(sums.items())]
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_manifest(root: Path, paths: list[str], rev: str | None) -> int:
    """Hash ``paths`` under ``root`` (as written: what a downloader will see) and write the manifest."""
    if MANIFEST_NAME in paths:
        raise UsageError(f"the revision already has a file named {MANIFEST_NAME}; not overwriting it")
    sums = _hash_all(root, paths)
    (root / MANIFEST_NAME).write_bytes(render_manifest(sums, rev))
    return len(sums)


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    path: str
    sha256: str
    size: int | None


def read_manifest(folder: Path) -> tuple[list[ManifestEntry], str | None]:
    path = folder / MANIFEST_NAME
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ChecksumMismatch(
            f"{folder}: no {MANIFEST_NAME} (export with 'mv export REV DEST --manifest')"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ChecksumMismatch(f"{path}: cannot read it ({e})") from None
    sizes: dict[str, int] = {}
    sums: dict[str, str] = {}
    rev = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line[1:].strip().split(" ", 2)
            if parts[0] == "size" and len(parts) == 3 and parts[1].isdigit():
                sizes[parts[2]] = int(parts[1])
            elif parts[0] == "rev" and len(parts) == 2:
                rev = parts[1]
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ChecksumMismatch(f"{path}:{n}: not a '<sha256>  <path>' line")
        try:
            check_tree_path(rel)
        except InvalidPath:
            raise ChecksumMismatch(f"{path}:{n}: unsafe path {rel[:80]!r}") from None
        if rel in sums:
            raise ChecksumMismatch(f"{path}:{n}: {rel!r} is listed twice")
        sums[rel] = digest
    return [ManifestEntry(p, sums[p], sizes.get(p)) for p in sorted(sums)], rev


@dataclass(frozen=True, slots=True)
class ExportCheck:
    folder: Path
    rev: str | None
    files: int
    bytes: int
    problems: tuple[tuple[str, str], ...]  # (path, what is wrong)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_export(folder: str | os.PathLike[str], allow_extra: bool = False) -> ExportCheck:
    """Every listed file exists with its size and SHA-256; no unlisted file (unless ``allow_extra``)."""
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder")
    entries, rev = read_manifest(root)
    problems: list[tuple[str, str]] = []
    present = set(_files(root))
    to_hash = []
    for e in entries:
        p = root / e.path
        if e.path not in present:
            problems.append((e.path, "missing"))
        elif e.size is not None and p.stat().st_size != e.size:
            problems.append((e.path, f"size {p.stat().st_size}, expected {e.size}"))
        else:
            to_hash.append(e.path)
    sums = _hash_all(root, to_hash)
    want = {e.path: e.sha256 for e in entries}
    for rel in to_hash:
        if sums[rel][0] != want[rel]:
            problems.append((rel, "sha256 differs"))
    if not allow_extra:
        problems += [(rel, "not in the manifest") for rel in sorted(present - set(want))]
    total = sum(size for _d, size in sums.values())
    return ExportCheck(root, rev, len(entries), total, tuple(sorted(problems)))
