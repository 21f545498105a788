"""``mv repair``: put a damaged repository right from what can be trusted.

1. Objects an interrupted ``mv gc`` moved aside are put back.
2. ``verify`` (optionally ``--full``) lists what is missing or corrupt.
3. A ref file that is unreadable is restored from the newest entry of its reflog whose object is
   intact (the reflog records every value the ref ever had).
4. Corrupt object files are moved to ``.mv/quarantine/`` (kept for inspection, never read again),
   then every missing object — and whatever below it is missing too — is fetched from the remote,
   each verified against its id before it enters the store.
5. ``verify`` again: the result says what is still wrong.

Nothing is fetched from a remote the user did not name, except the current branch's upstream or
the only configured remote.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from .. import codec
from ..codec import KIND_STRUCT
from ..errors import MvError, UsageError
from ..ids import ObjectId
from ..objects import Commit, StageEvent, Tag
from ..refs import HEADS, STAGES, TAGS
from ..repo import Repository
from .verify import VerifyReport, scan_reflogs, scan_refs, verify


@dataclass
class RepairResult:
    remote: str | None
    before: VerifyReport
    after: VerifyReport
    restored_leftovers: int = 0
    refs_restored: list[tuple[str, str]] = field(default_factory=list)  # (ref, hex id)
    quarantined: list[str] = field(default_factory=list)
    fetched: int = 0
    fetched_bytes: int = 0
    unavailable: list[str] = field(default_factory=list)  # missing here and on the remote
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.after.ok

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "remote": self.remote,
            "problems_before": len(self.before.problems),
            "problems_after": [p.as_json() for p in self.after.problems],
            "restored_leftovers": self.restored_leftovers,
            "refs_restored": [{"ref": r, "id": h} for r, h in self.refs_restored],
            "quarantined": self.quarantined,
            "fetched": self.fetched,
            "fetched_bytes": self.fetched_bytes,
            "unavailable": self.unavailable,
            "seconds": round(self.seconds, 4),
        }


def default_remote(repo: Repository) -> str | None:
    """The current branch's upstream, else the only remote, else None."""
    from ..remote.config import get_upstream, list_remotes

    try:
        head = repo.refs.head()
        up = get_upstream(repo.config, head.branch) if head.branch else None
    except MvError:
        up = None
    if up is not None:
        return up[0]
    remotes = list_remotes(repo.config)
    return remotes[0].name if len(remotes) == 1 else None


def repair(repo: Repository, remote: str | None = None, full: bool = False) -> RepairResult:
    from .gc import _recover_leftovers

    t0 = time.perf_counter()
    restored = _recover_leftovers(repo, dry_run=False)
    before = verify(repo, full=full)
    result = RepairResult(remote, before, before, restored_leftovers=restored)
    result.refs_restored = _restore_refs(repo, dangling_too=False)
    if remote is None and (before.missing or before.corrupt):
        remote = default_remote(repo)
        result.remote = remote
    damaged = before.missing | before.corrupt
    if damaged and remote is not None:
        quarantine = repo.mvdir / "quarantine"
        for oid in sorted(before.corrupt):
            path = repo.store.path(oid)
            if path.exists():
                quarantine.mkdir(exist_ok=True)
                os.replace(path, quarantine / oid.hex())
                result.quarantined.append(oid.hex())
        _fetch_missing(repo, remote, sorted(damaged), result)
    elif damaged:
        result.unavailable = sorted(o.hex() for o in damaged)
    if damaged:
        result.refs_restored += _restore_refs(repo, dangling_too=True)
    if damaged or result.refs_restored or restored:
        result.after = verify(repo, full=full)
    result.seconds = time.perf_counter() - t0
    return result


def _fetch_missing(repo: Repository, remote: str, wanted: list[ObjectId], result: RepairResult) -> None:
    """Fetch ``wanted`` and anything missing below them: verified, in one transaction."""
    from ..remote.maintenance import inventory, read_objects
    from .sync import _layout, resolve_remote

    spec = resolve_remote(repo, remote)
    layout = _layout(repo, spec)
    layout.check()
    inv = inventory(layout)
    present = inv.locations()
    seen: set[ObjectId] = set()
    frontier = list(wanted)
    with repo.store.transaction(parents_first=True) as txn:  # children become visible first
        while frontier:
            batch = [o for o in dict.fromkeys(frontier) if o not in seen]
            seen.update(batch)
            frontier = []
            have = [o for o in batch if o in present]
            result.unavailable.extend(o.hex() for o in batch if o not in present)
            for oid, got in read_objects(layout, inv, have):
                if isinstance(got, MvError):
                    result.unavailable.append(oid.hex())
                    continue
                kind, raw = got
                txn.put(oid, raw, kind)
                result.fetched += 1
                result.fetched_bytes += len(raw)
                if kind != KIND_STRUCT:
                    continue
                try:
                    obj = codec.decode_object(raw, oid.hex())
                except MvError:
                    continue
                for child, _k in codec.referenced_ids(obj):
                    if child not in seen and not repo.store.freshen(child) and not txn.staged(child):
                        frontier.append(child)


def _restore_refs(repo: Repository, dangling_too: bool) -> list[tuple[str, str]]:
    """Rewrite each unreadable ref (and, with ``dangling_too``, each naming an object that is not
    there even after fetching — a flipped digit) from the newest intact value its reflog recorded."""
    from ..refs import write_atomic

    refs, _locks = scan_refs(repo)
    broken = []
    for r in refs:
        if r.name == "HEAD" or (r.error is not None and "invalid ref name" in r.error):
            continue
        if r.error is not None or (
            dangling_too and r.value is not None and not _usable(repo, r.name, r.value)
        ):
            broken.append(r)
    if not broken:
        return []
    entries, _bad = scan_reflogs(repo)
    out = []
    for r in broken:
        history = [e.new for e in entries if e.ref == r.name and e.new is not None and e.new != r.value]
        for candidate in reversed(history):
            if _usable(repo, r.name, candidate):
                path = repo.mvdir / r.name
                lock = path.with_name(path.name + ".lock")
                try:
                    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    raise UsageError(f"{lock} exists: another mv process is updating {r.name}") from None
                os.close(fd)
                try:
                    write_atomic(path, (candidate.hex() + "\n").encode())
                finally:
                    os.unlink(lock)
                repo.refs._log(r.name, None, candidate, "repair: restored from the reflog")
                out.append((r.name, candidate.hex()))
                break
    return out


def _usable(repo: Repository, ref: str, oid: ObjectId) -> bool:
    try:
        obj = repo.read_object(oid)
    except MvError:
        return False
    if ref.startswith(STAGES):
        return isinstance(obj, StageEvent)
    if ref.startswith(TAGS):
        return isinstance(obj, (Commit, Tag))
    return isinstance(obj, Commit) if ref.startswith(HEADS) or ref.startswith("refs/remotes/") else True
