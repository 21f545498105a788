"""``mv gc``: remove unreachable objects and leftover temp files older than a grace period.

Safety against concurrent writers, without a lock (docs/format.md, "Garbage collection"):

* **Roots** are every ref file (any namespace, so refs added by later features are kept), ``HEAD``,
  the ids inside ``<ref>.lock`` files (a ref update in flight), and every reflog entry younger than
  the reflog expiry. gc refuses to run when a ref or a reachable structured object is unreadable:
  it could not know what that object protects.
* **The grace period**: an unreachable object whose mtime is newer than the cutoff is kept, *and so
  is everything it references* (git's "recent objects" rule). A commit in progress writes new
  objects (fresh mtimes) and *freshens* every existing object it reuses (``os.utime``, see
  :meth:`LocalObjectStore.freshen`) before it moves its ref, so nothing it is about to reference can
  be old and unreachable at the same time — unless it stalls for longer than the grace period.
* **Rename, re-check, delete**: a victim is first renamed aside (``<name>.gc-<tag>``), then its
  mtime is read again *from the renamed inode*. A writer that freshened it in between is seen
  (the object is put back, with its closure protected); a writer that comes after the rename finds
  it missing and writes it again. Structured objects are swept before data objects, so the closure
  of a structure put back this way is protected before any chunk is considered. An interrupted gc
  leaves ``.gc-`` files that the next gc (or ``mv repair``) puts back before doing anything else.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .. import codec
from ..codec import KIND_DATA, KIND_STRUCT
from ..errors import CorruptObject, MvError, ObjectNotFound, UsageError
from ..ids import HEX_LEN, ObjectId
from ..ignore import is_checkout_tmp
from ..objects import Commit, StoredObject
from ..remote.layout import RemoteLayout
from ..remote.maintenance import Inventory, Victim
from ..repo import Repository
from .verify import GC_LEFTOVER, scan_reflogs, scan_refs

DEFAULT_PRUNE = "2.weeks.ago"
DEFAULT_REFLOG_EXPIRE = "90.days.ago"

_UNITS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "year": 365 * 86400,
}
_SHORT_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_REL = re.compile(r"(\d+)[. ]?([a-z]+?)s?(?:[. ]ago)?")
_SHORT = re.compile(r"(\d+)([smhdw])")
_ATOMIC_TMP = re.compile(r"\..+\.tmp\d+")


class GcRefused(MvError):
    """gc will not run: a damaged repository (it could not tell what is reachable)."""


def parse_expiry(spec: str, now: float | None = None) -> float | None:
    """A cutoff time from git-style text: ``2.weeks.ago``, ``90.days``, ``now``, ``never``,
    ``2w`` / ``3d`` / ``12h``, ``@<unix seconds>``, or an ISO date. None means never."""
    now = time.time() if now is None else now
    text = spec.strip().lower()
    if text in ("never", "false"):
        return None
    if text in ("now", "all"):
        return now
    if text.startswith("@") and text[1:].isdigit():
        return float(text[1:])
    m = _SHORT.fullmatch(text)
    if m:
        return now - int(m.group(1)) * _SHORT_UNITS[m.group(2)]
    m = _REL.fullmatch(text)
    if m and m.group(2) in _UNITS:
        return now - int(m.group(1)) * _UNITS[m.group(2)]
    try:
        when = dt.datetime.fromisoformat(spec.strip())
    except ValueError:
        raise UsageError(
            f"cannot read the time {spec!r} (try 2.weeks.ago, 3.days.ago, 1.hour.ago, now, never, 2024-01-31)"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # a bare date is local time, as in git
    return when.timestamp()


@dataclass
class GcResult:
    dry_run: bool
    prune: str
    cutoff: float | None
    reachable: int = 0
    removed_objects: int = 0
    removed_bytes: int = 0
    kept_recent: int = 0  # unreachable, but newer than the grace period (or referenced by such)
    kept_recent_bytes: int = 0
    removed_tmp: int = 0
    removed_tmp_bytes: int = 0
    restored: int = 0  # objects put back (an interrupted gc, or freshened by a writer mid-gc)
    expired_reflog_entries: int = 0
    removed: list[tuple[str, int]] = field(default_factory=list)  # (hex id, bytes)
    tmp_files: list[tuple[str, int]] = field(default_factory=list)  # (path, bytes)
    seconds: float = 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "prune": self.prune,
            "cutoff": self.cutoff,
            "reachable": self.reachable,
            "removed_objects": self.removed_objects,
            "removed_bytes": self.removed_bytes,
            "kept_recent": self.kept_recent,
            "kept_recent_bytes": self.kept_recent_bytes,
            "removed_tmp": self.removed_tmp,
            "removed_tmp_bytes": self.removed_tmp_bytes,
            "restored": self.restored,
            "expired_reflog_entries": self.expired_reflog_entries,
            "removed": [{"id": h, "bytes": n} for h, n in self.removed],
            "tmp_files": [{"path": p, "bytes": n} for p, n in self.tmp_files],
            "seconds": round(self.seconds, 4),
        }


# -- marking ----------------------------------------------------------------------------------------


ReadBatch = Callable[[list[ObjectId]], Iterator[tuple[ObjectId, StoredObject | MvError]]]


class _Marker:
    """Reachability from ids, reading each structured object once (``codec.referenced_ids``)."""

    def __init__(
        self,
        read_batch: ReadBatch,
        shallow: set[ObjectId],
        strict: bool,
        what: str,
        delta_base: Callable[[ObjectId], ObjectId | None] | None = None,
    ) -> None:
        self.read_batch = read_batch
        self.delta_base = delta_base  # a data object stored as a delta needs its base (mv repack)
        self.shallow = shallow
        self.strict = strict  # refs' closures must be readable; recent objects' need not be
        self.what = what  # "repository" or a remote URL, for messages
        self.marked: set[ObjectId] = set()

    def mark(self, roots: Iterable[tuple[ObjectId, int, str]]) -> None:
        frontier = list(roots)
        while frontier:
            structs: dict[ObjectId, str] = {}
            bases: list[tuple[ObjectId, int, str]] = []
            for oid, kind, where in frontier:
                if oid in self.marked:
                    continue
                self.marked.add(oid)
                if kind == KIND_STRUCT:
                    structs[oid] = where
                elif self.delta_base is not None:
                    base = self.delta_base(oid)
                    if base is not None and base not in self.marked:
                        bases.append((base, KIND_DATA, f"delta base of {oid.hex()[:12]}"))
            frontier = bases
            ids = list(structs)
            for start in range(0, len(ids), 512):
                for oid, got in self.read_batch(ids[start : start + 512]):
                    if isinstance(got, MvError):
                        if self.strict:
                            raise GcRefused(
                                f"{got} (reached from {structs[oid]}): gc does not run on a damaged "
                                f"{self.what}; see 'mv verify' and 'mv repair'"
                            )
                        continue
                    children = codec.referenced_ids(got)
                    if oid in self.shallow and isinstance(got, Commit):
                        children = [(got.tree, KIND_STRUCT)]
                    here = f"{type(got).__name__.lower()} {oid.hex()[:12]}"
                    frontier.extend((c, k, here) for c, k in children if c not in self.marked)


def _local_base(repo: Repository) -> Callable[[ObjectId], ObjectId | None]:
    def base(oid: ObjectId) -> ObjectId | None:
        try:
            return repo.store.delta_base(oid)
        except (MvError, OSError):
            return None  # missing or unreadable: nothing below it to keep

    return base


def _local_reader(repo: Repository) -> ReadBatch:
    def read(ids: list[ObjectId]) -> Iterator[tuple[ObjectId, StoredObject | MvError]]:
        for oid in ids:
            try:
                yield oid, codec.decode_object(repo.store.read(oid, KIND_STRUCT), oid.hex())
            except MvError as e:
                yield oid, e
            except OSError as e:
                yield oid, CorruptObject(f"object {oid.hex()}: cannot be read ({e.strerror or e})")

    return read


def _roots(repo: Repository, reflog_cutoff: float | None) -> list[tuple[ObjectId, int, str]]:
    refs, locks = scan_refs(repo)
    bad = [r for r in refs if r.error is not None]
    if bad:
        raise GcRefused(
            f"{bad[0].error}: gc cannot tell what it protects; fix or remove it first (see 'mv repair')"
        )
    out = [(r.value, KIND_STRUCT, r.name) for r in refs if r.value is not None]
    for lock in locks:  # a ref update in flight: the id it is about to publish is a root too
        try:
            text = lock.read_text("ascii").strip()
            if len(text) == HEX_LEN:
                out.append((ObjectId.from_hex(text), KIND_STRUCT, str(lock)))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
    entries, _bad = scan_reflogs(repo)
    for e in entries:
        if reflog_cutoff is not None and e.time < reflog_cutoff:
            continue
        for oid in (e.old, e.new):
            if oid is not None:
                out.append((oid, KIND_STRUCT, f"reflog of {e.ref}"))
    return out


# -- reflog expiry ----------------------------------------------------------------------------------


def _expire_reflogs(repo: Repository, cutoff: float, dry_run: bool) -> int:
    """Drop reflog lines older than ``cutoff``, each log under its ref's lock (skipped if held)."""
    from ..refs import write_atomic

    base = repo.mvdir / "logs"
    if not base.is_dir():
        return 0
    dropped = 0
    for dirpath, _dirs, files in os.walk(base):
        for f in files:
            log = Path(dirpath) / f
            rel = log.relative_to(base).as_posix()
            try:
                lines = log.read_text("utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            keep = []
            for line in lines:
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[2].isdigit() and int(parts[2]) < cutoff:
                    continue
                keep.append(line)  # a line that does not parse is kept: never destroy what we can't read
            if len(keep) == len(lines):
                continue
            if dry_run:
                dropped += len(lines) - len(keep)
                continue
            ref_path = repo.mvdir / rel
            lock = ref_path.with_name(ref_path.name + ".lock")
            try:
                lock.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except (FileExistsError, OSError):
                continue  # the ref is being updated (or the lock is stale): keep this log as it is
            try:
                os.close(fd)
                current = log.read_text("utf-8").splitlines()  # re-read under the lock
                kept = [ln for ln in current if not _older(ln, cutoff)]
                write_atomic(log, ("\n".join(kept) + "\n").encode() if kept else b"")
                dropped += len(current) - len(kept)
            finally:
                try:
                    os.unlink(lock)
                except FileNotFoundError:
                    pass
    return dropped


def _older(line: str, cutoff: float) -> bool:
    parts = line.split(" ", 3)
    return len(parts) >= 3 and parts[2].isdigit() and int(parts[2]) < cutoff


# -- sweeping ---------------------------------------------------------------------------------------


def _recover_leftovers(repo: Repository, dry_run: bool) -> int:
    """Put back objects that an interrupted gc had renamed aside, when the original is missing."""
    root = repo.store.root
    restored = 0
    if not root.is_dir():
        return 0
    for fan in os.listdir(root):
        d = root / fan
        try:
            names = [n for n in os.listdir(d) if GC_LEFTOVER in n]
        except (NotADirectoryError, FileNotFoundError):
            continue
        for name in names:
            aside = d / name
            final = d / name.split(GC_LEFTOVER, 1)[0]
            if dry_run:
                restored += not final.exists()
                continue
            try:
                os.link(aside, final)
                restored += 1
            except FileExistsError:
                pass
            except FileNotFoundError:
                continue
            try:
                os.unlink(aside)
            except FileNotFoundError:
                pass
    return restored


def _remove_with_recheck(path: Path, cutoff: float, tag: str) -> bool | None:
    """Delete ``path`` unless a writer freshened it meanwhile.

    True: removed; False: put back (it was freshened); None: it was already gone.
    """
    aside = path.with_name(path.name + GC_LEFTOVER + tag)
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return None
    try:
        fresh = os.stat(aside).st_mtime >= cutoff
    except FileNotFoundError:  # another gc put it back or removed it
        return None
    if fresh:
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # the writer wrote it again: same id, same bytes
        os.unlink(aside)
        return False
    os.unlink(aside)
    return True


def _clean_tmp(repo: Repository, cutoff: float, dry_run: bool, result: GcResult) -> None:
    """Temp files of interrupted writes: ``.mv/tmp/*``, atomic-write leftovers, checkout temps."""
    victims: list[Path] = []
    tmp = repo.mvdir / "tmp"
    if tmp.is_dir():
        victims.extend(Path(de.path) for de in os.scandir(tmp))
    for dirpath, dirs, files in os.walk(repo.mvdir):
        if Path(dirpath) == repo.mvdir:
            dirs[:] = [d for d in dirs if d not in ("objects", "tmp")]
        victims.extend(Path(dirpath) / f for f in files if _ATOMIC_TMP.fullmatch(f))
    for dirpath, dirs, files in os.walk(repo.root):
        if Path(dirpath) == repo.root:
            dirs[:] = [d for d in dirs if d not in (".mv", ".git")]
        victims.extend(Path(dirpath) / f for f in files if is_checkout_tmp(f))
    for v in victims:
        try:
            st = os.lstat(v)
        except FileNotFoundError:
            continue
        if st.st_mtime >= cutoff or not os.path.isfile(v):
            continue
        if not dry_run:
            try:
                os.unlink(v)
            except FileNotFoundError:
                continue
        result.removed_tmp += 1
        result.removed_tmp_bytes += st.st_size
        result.tmp_files.append((str(v), st.st_size))


def gc(
    repo: Repository,
    prune: str = DEFAULT_PRUNE,
    dry_run: bool = False,
    expire_reflog: str = DEFAULT_REFLOG_EXPIRE,
    now: float | None = None,
) -> GcResult:
    t0 = time.perf_counter()
    now = time.time() if now is None else now
    cutoff = parse_expiry(prune, now)
    reflog_cutoff = parse_expiry(expire_reflog, now)
    result = GcResult(dry_run, prune, cutoff)
    result.restored = _recover_leftovers(repo, dry_run)
    if reflog_cutoff is not None:
        result.expired_reflog_entries = _expire_reflogs(repo, reflog_cutoff, dry_run)
    shallow = repo.shallow_commits()
    marker = _Marker(
        _local_reader(repo), shallow, strict=True, what="repository", delta_base=_local_base(repo)
    )
    # After expiry the logs hold exactly the entries that still protect objects (a log whose lock
    # was held kept all of its lines); a dry run expired nothing, so it filters by time instead.
    marker.mark(_roots(repo, reflog_cutoff if dry_run else None))
    reachable = set(marker.marked)
    result.reachable = len(reachable)
    if cutoff is None:
        result.seconds = time.perf_counter() - t0
        return result
    # Unreachable objects: recent ones are kept with everything they reference.
    unreachable: dict[ObjectId, tuple[int, float]] = {}
    for oid, size, mtime in repo.store.scan():
        if oid not in reachable:
            unreachable[oid] = (size, mtime)
    recent = _Marker(
        _local_reader(repo), shallow, strict=False, what="repository", delta_base=_local_base(repo)
    )
    recent.marked = set(reachable)
    info = {oid: _info(repo, oid) for oid in unreachable}
    recent.mark(
        (oid, info[oid][0], "a recent object") for oid, (_s, mtime) in unreachable.items() if mtime >= cutoff
    )
    protected = recent.marked
    victims = {oid: v for oid, v in unreachable.items() if oid not in protected}
    for oid, (size, _m) in unreachable.items():
        if oid in protected:
            result.kept_recent += 1
            result.kept_recent_bytes += size
    # Structured objects first, then deltas deepest first: one put back by a writer protects what
    # it needs (its closure, its base) before those are considered. Within a group, deletions run
    # on threads: an unlink can cost milliseconds (online discard) and they overlap well.
    groups: dict[tuple[bool, int], list[ObjectId]] = {}
    for oid in victims:
        kind, depth = info[oid]
        groups.setdefault((kind != KIND_STRUCT, -depth), []).append(oid)
    tag = secrets.token_hex(4)
    with ThreadPoolExecutor(8) as pool:
        for key in sorted(groups):
            todo = sorted((o for o in groups[key] if o not in recent.marked), key=bytes)
            if dry_run:
                outcomes: Iterable[bool | None] = [True] * len(todo)
            else:
                outcomes = pool.map(lambda o: _remove_with_recheck(repo.store.path(o), cutoff, tag), todo)
            for oid, outcome in zip(todo, outcomes, strict=True):
                size = victims[oid][0]
                if outcome is True:
                    result.removed_objects += 1
                    result.removed_bytes += size
                    result.removed.append((oid.hex(), size))
                elif outcome is False:  # a writer freshened it meanwhile: keep what it needs too
                    result.restored += 1
                    result.kept_recent += 1
                    result.kept_recent_bytes += size
                    recent.mark([(oid, info[oid][0], "an object freshened during gc")])
    _clean_tmp(repo, cutoff, dry_run, result)
    result.seconds = time.perf_counter() - t0
    return result


def _info(repo: Repository, oid: ObjectId) -> tuple[int, int]:
    """(kind, delta depth) of a local object from its envelope header (one ``pread``)."""
    from ..codec import ENVELOPE_SIZE, delta_base, parse_envelope

    try:
        fd = os.open(repo.store.path(oid), os.O_RDONLY)
        try:
            head = os.pread(fd, ENVELOPE_SIZE + 4096, 0)
        finally:
            os.close(fd)
        env = parse_envelope(head, oid.hex())
        found = delta_base(env, oid.hex())
        return env.kind, found[1] if found else 0
    except (MvError, OSError):
        return KIND_DATA, 0  # unreadable: it has no children we could follow


# -- remotes ----------------------------------------------------------------------------------------


@dataclass
class RemoteGcResult:
    remote: str
    dry_run: bool
    prune: str
    cutoff: float | None
    reachable: int = 0
    removed_objects: int = 0  # loose objects, plus the objects inside removed packs
    removed_packs: int = 0
    removed_bytes: int = 0
    kept_recent: int = 0  # files (loose objects or packs) kept only because they are recent
    kept_recent_bytes: int = 0
    kept_partly_live_packs: int = 0  # packs holding some reachable objects (not repacked)
    removed_tmp: int = 0
    removed_tmp_bytes: int = 0
    removed: list[tuple[str, int]] = field(default_factory=list)  # (name on the remote, bytes)
    requests: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "remote": self.remote,
            "dry_run": self.dry_run,
            "prune": self.prune,
            "cutoff": self.cutoff,
            "reachable": self.reachable,
            "removed_objects": self.removed_objects,
            "removed_packs": self.removed_packs,
            "removed_bytes": self.removed_bytes,
            "kept_recent": self.kept_recent,
            "kept_recent_bytes": self.kept_recent_bytes,
            "kept_partly_live_packs": self.kept_partly_live_packs,
            "removed_tmp": self.removed_tmp,
            "removed_tmp_bytes": self.removed_tmp_bytes,
            "removed": [{"name": n, "bytes": b} for n, b in self.removed],
            "requests": self.requests,
            "seconds": round(self.seconds, 4),
        }


def _remote_reader(repo: Repository | None, layout: RemoteLayout, inv: Inventory) -> ReadBatch:
    """Structured objects for marking: the local copy when there is one (same id, same bytes; it
    saves a download), else the remote's, verified."""
    from ..remote.maintenance import read_objects

    local = _local_reader(repo) if repo is not None else None

    def read(ids: list[ObjectId]) -> Iterator[tuple[ObjectId, StoredObject | MvError]]:
        remote_ids = []
        locations = inv.locations()
        for oid in ids:
            if oid not in locations:
                yield oid, ObjectNotFound(f"object {oid.hex()} is not on the remote {layout.backend.url}")
            elif local is not None and repo is not None and repo.store.has(oid):
                got = next(local([oid]))[1]
                if isinstance(got, MvError):
                    remote_ids.append(oid)  # a damaged local copy: use the remote's
                else:
                    yield oid, got
            else:
                remote_ids.append(oid)
        for oid, res in read_objects(layout, inv, remote_ids):
            if isinstance(res, MvError):
                yield oid, res
                continue
            kind, raw = res
            if kind != KIND_STRUCT:
                yield (
                    oid,
                    CorruptObject(f"object {oid.hex()} on the remote is a data object, expected a structure"),
                )
                continue
            try:
                yield oid, codec.decode_object(raw, oid.hex())
            except MvError as e:
                yield oid, e

    return read


def remote_refs_strict(layout: RemoteLayout) -> dict[str, ObjectId]:
    """Every ref file on the remote (any namespace); gc refuses if one cannot be read."""
    from ..refs import check_ref_name

    names = [n for n in layout.backend.list("refs/") if not n.endswith(".lock")]
    layout.requests += 1
    data = layout.backend.read_many(names) if names else {}
    layout.requests += 1 if names else 0
    out: dict[str, ObjectId] = {}
    for n in names:
        try:
            check_ref_name(n[len("refs/") :])
        except MvError:
            raise GcRefused(f"{layout.backend.url}/{n}: not a valid ref name; remove it first") from None
        raw = data.get(n)
        if raw is None:
            continue  # deleted while we listed
        try:
            out[n] = ObjectId.from_hex(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise GcRefused(f"{layout.backend.url}/{n} is corrupt: gc cannot tell what it protects") from None
    return out


def gc_remote(
    repo: Repository | None,
    layout: RemoteLayout,
    prune: str = DEFAULT_PRUNE,
    dry_run: bool = False,
    now: float | None = None,
) -> RemoteGcResult:
    """Remove unreachable loose objects and packs of which no object is reachable, older than the
    grace period (listing times: S3 LastModified, GCS updated, file mtime). Packs that are partly
    live are kept as they are (no repacking)."""
    from ..remote.maintenance import fresh_stats, inventory, local_ref_locks, local_temp_files

    t0 = time.perf_counter()
    now = time.time() if now is None else now
    cutoff = parse_expiry(prune, now)
    result = RemoteGcResult(layout.backend.url, dry_run, prune, cutoff)
    layout.check()
    inv = inventory(layout)
    refs = remote_refs_strict(layout)
    for path, content, _mtime in local_ref_locks(layout):  # a ref update in flight: a root too
        try:
            refs[path] = ObjectId.from_hex(content.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            continue
    reader = _remote_reader(repo, layout, inv)
    marker = _Marker(reader, set(), strict=True, what=f"remote {layout.backend.url}")
    marker.mark((oid, KIND_STRUCT, name) for name, oid in refs.items())
    result.reachable = len(marker.marked)
    if cutoff is None:
        result.requests = layout.requests
        result.seconds = time.perf_counter() - t0
        return result
    protected = _Marker(reader, set(), strict=False, what=f"remote {layout.backend.url}")
    protected.marked = set(marker.marked)

    def protect_recent(names: set[str] | None) -> None:
        """Keep every recent file's objects and their closures (``names``: only those files)."""
        roots: list[tuple[ObjectId, int, str]] = []
        for oid, item in inv.loose.items():
            if (names is None and item.mtime >= cutoff) or (names is not None and item.name in names):
                roots.append((oid, _remote_kind(layout, inv, oid), item.name))
        for pack, rows in inv.rows.items():
            fresh = inv.container_mtime(pack) >= cutoff if names is None else pack in names
            if fresh:
                roots.extend((o, e.kind, pack) for o, e in rows)
        protected.mark(roots)

    protect_recent(None)

    def victims() -> list[Victim]:
        out: list[Victim] = []
        for oid, item in inv.loose.items():
            if oid not in protected.marked:
                out.append(Victim((item.name,), item.size, 1))
        for pack, rows in inv.rows.items():
            if pack not in inv.packs:
                continue  # an index without its pack: damage for verify / repair, not garbage
            if any(o in protected.marked for o, _e in rows):
                continue
            idx_name = pack[: -len(".pack")] + ".idx"
            size = inv.packs[pack].size + (inv.idx[idx_name].size if idx_name in inv.idx else 0)
            out.append(Victim((idx_name, pack), size, len(rows)))
        for pack, item in inv.packs.items():
            orphan = pack not in inv.rows and pack[: -len(".pack")] + ".idx" not in inv.bad_idx
            if orphan and item.mtime < cutoff:
                out.append(Victim((pack,), item.size, 0))  # an interrupted push's pack
        return out

    for pack, rows in inv.rows.items():
        live = [o in marker.marked for o, _e in rows]
        if pack in inv.packs and any(live) and not all(live):
            result.kept_partly_live_packs += 1
    candidates = victims()
    # Everything unreachable but not a victim is kept because it is recent (or referenced by such).
    unreachable_files = {n for v in _all_unreachable(inv, marker.marked) for n in v.names}
    victim_files = {n for v in candidates for n in v.names}
    for name in unreachable_files - victim_files:
        result.kept_recent += 1
        result.kept_recent_bytes += _size_of(inv, name)
    if not dry_run:
        # A last look before deleting: a push may have touched (reused) one since the listing.
        fresh = fresh_stats(layout, candidates, cutoff)
        if fresh:
            protect_recent(fresh)
            candidates = [v for v in victims() if not (set(v.names) & fresh)]
    for v in candidates:
        if not dry_run:
            for n in v.names:
                layout.backend.delete(n)
                layout.requests += 1
        result.removed_bytes += v.bytes
        result.removed_objects += v.objects
        result.removed_packs += any(n.endswith(".pack") for n in v.names)
        result.removed.extend((n, _size_of(inv, n)) for n in v.names)
    for path, size, mtime in local_temp_files(layout):
        if mtime < cutoff:
            if not dry_run:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    continue
            result.removed_tmp += 1
            result.removed_tmp_bytes += size
    result.requests = layout.requests
    result.seconds = time.perf_counter() - t0
    return result


def _all_unreachable(inv: Inventory, reachable: set[ObjectId]) -> Iterator[Victim]:
    for oid, item in inv.loose.items():
        if oid not in reachable:
            yield Victim((item.name,), item.size, 1)
    for pack, rows in inv.rows.items():
        if pack in inv.packs and not any(o in reachable for o, _e in rows):
            yield Victim((pack,), inv.packs[pack].size, len(rows))
    for pack, item in inv.packs.items():
        if pack not in inv.rows:
            yield Victim((pack,), item.size, 0)


def _size_of(inv: Inventory, name: str) -> int:
    for table in (inv.packs, inv.idx):
        if name in table:
            return table[name].size
    m = re.fullmatch(r"objects/([0-9a-f]{2})/([0-9a-f]{62})", name)
    if m:
        item = inv.loose.get(ObjectId(bytes.fromhex(m.group(1) + m.group(2))))
        if item is not None:
            return item.size
    return 0


def _remote_kind(layout: RemoteLayout, inv: Inventory, oid: ObjectId) -> int:
    """The kind of a loose remote object, from its 16-byte envelope header (one ranged read)."""
    from ..codec import ENVELOPE_SIZE, parse_envelope
    from ..remote.layout import loose_name

    try:
        head = layout.backend.read_ranges(loose_name(oid), [(0, ENVELOPE_SIZE)])[0]
        layout.requests += 1
        return parse_envelope(head, oid.hex()).kind
    except MvError:
        return KIND_DATA
