"""Remote maintenance primitives: an inventory of what a remote holds, tolerant readers for verify,
pack bookkeeping and deletion with a last-moment re-check for gc, and the freshening that a push
does for objects it reuses (docs/format.md, "Remote garbage collection").

The orchestration (walks, reports) lives in :mod:`mvstore.ops.verify` and :mod:`mvstore.ops.gc`;
this module only knows names, listings and stored-object envelopes.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..errors import CorruptObject, MvError, ObjectNotFound
from ..ids import ObjectId
from .backend import Listed, LocalBackend
from .layout import PackEntry, RemoteLayout, loose_name

_LOOSE = re.compile(r"objects/([0-9a-f]{2})/([0-9a-f]{62})")
_PACK = re.compile(r"packs/([0-9a-f]{64})\.(pack|idx)")
_LOCAL_TMP = re.compile(r"\..+\.tmp-[0-9a-f]{12}")


@dataclass
class Inventory:
    """Everything on a remote, from two listings (with sizes and mtimes) and the pack indexes."""

    loose: dict[ObjectId, Listed] = field(default_factory=dict)
    packs: dict[str, Listed] = field(default_factory=dict)  # "packs/<hex>.pack"
    idx: dict[str, Listed] = field(default_factory=dict)  # "packs/<hex>.idx"
    rows: dict[str, list[tuple[ObjectId, PackEntry]]] = field(default_factory=dict)  # by .pack name
    bad_idx: dict[str, str] = field(default_factory=dict)  # .idx name → why it cannot be read
    other: list[Listed] = field(default_factory=list)
    _locations: dict[ObjectId, PackEntry | str] | None = None

    def locations(self) -> dict[ObjectId, PackEntry | str]:
        """Where each object can be read (the first readable pack, else its loose name); cached."""
        if self._locations is not None:
            return self._locations
        out: dict[ObjectId, PackEntry | str] = {}
        for pack, rows in self.rows.items():
            if pack in self.packs:
                for o, e in rows:
                    out.setdefault(o, e)
        for o in self.loose:
            out.setdefault(o, loose_name(o))
        self._locations = out
        return out

    def container_mtime(self, pack: str) -> float:
        """A pack's age counts from the newer of its two files (a push touches the pack)."""
        times = [x.mtime for x in (self.packs.get(pack), self.idx.get(pack[: -len(".pack")] + ".idx")) if x]
        return max(times) if times else time.time()


def inventory(layout: RemoteLayout) -> Inventory:
    inv = Inventory()
    for item in layout.backend.list_with_mtime("objects/"):
        m = _LOOSE.fullmatch(item.name)
        if m:
            inv.loose[ObjectId(bytes.fromhex(m.group(1) + m.group(2)))] = item
        else:
            inv.other.append(item)
    layout.requests += 1
    for item in layout.backend.list_with_mtime("packs/"):
        m = _PACK.fullmatch(item.name)
        if not m:
            inv.other.append(item)
        elif m.group(2) == "pack":
            inv.packs[item.name] = item
        else:
            inv.idx[item.name] = item
    layout.requests += 1
    names = sorted(inv.idx)
    raws = layout.backend.read_many(names) if names else {}  # one batched read, not one per index
    layout.requests += 1 if names else 0
    for name in names:
        raw = raws.get(name)
        if raw is None:
            inv.bad_idx[name] = f"{name} vanished while we listed"
            continue
        try:
            rows = layout.index_rows(name, raw)
        except MvError as e:
            inv.bad_idx[name] = str(e)
            continue
        inv.rows[name[: -len(".idx")] + ".pack"] = rows
    return inv


# -- reading, tolerant of damage ---------------------------------------------------------------------


def read_objects(
    layout: RemoteLayout, inv: Inventory, ids: list[ObjectId]
) -> Iterator[tuple[ObjectId, tuple[int, bytes] | MvError]]:
    """(id, (kind, raw) or the error) for each id, every object verified against its id: one
    ranged read per pack, loose objects in batches of at most 256 names or 64 MiB."""
    locations = inv.locations()
    by_pack: dict[str, list[tuple[ObjectId, PackEntry]]] = {}
    loose: list[ObjectId] = []
    for oid in ids:
        loc = locations.get(oid)
        if loc is None:
            yield oid, ObjectNotFound(f"object {oid.hex()} is not on the remote {layout.backend.url}")
        elif isinstance(loc, str):
            loose.append(oid)
        else:
            by_pack.setdefault(loc.pack, []).append((oid, loc))
    for pack, items in by_pack.items():
        items.sort(key=lambda x: x[1].offset)
        try:
            datas = layout.backend.read_ranges(pack, [(e.offset, e.offset + e.length) for _o, e in items])
            layout.requests += 1
        except MvError as err:
            for oid, _e in items:
                yield oid, err
            continue
        for (oid, e), data in zip(items, datas, strict=True):
            if len(data) != e.length:
                yield oid, CorruptObject(f"object {oid.hex()}: {pack} is truncated")
                continue
            yield oid, _verified(layout, oid, data)
    for batch in _loose_batches(inv, loose):
        names = {loose_name(o): o for o in batch}
        try:
            got = layout.backend.read_many(list(names))
            layout.requests += 1
        except MvError as err:
            for o in batch:
                yield o, err
            continue
        for name, o in names.items():
            if name not in got:
                yield o, ObjectNotFound(f"object {o.hex()} vanished from the remote {layout.backend.url}")
            else:
                yield o, _verified(layout, o, got[name])


def _loose_batches(inv: Inventory, ids: list[ObjectId]) -> Iterator[list[ObjectId]]:
    batch: list[ObjectId] = []
    size = 0
    for oid in ids:
        batch.append(oid)
        size += inv.loose[oid].size
        if size >= 64 << 20 or len(batch) >= 256:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _verified(layout: RemoteLayout, oid: ObjectId, data: bytes) -> tuple[int, bytes] | MvError:
    try:
        return layout.verify_stored(oid, data)
    except MvError as e:
        return e


def structural_problems(inv: Inventory, url: str) -> list[tuple[str, str]]:
    """(name, problem) for what a listing alone shows: indexes without packs, rows past a pack's end."""
    out = [(n, f"{url}/{n}: unreadable pack index ({why})") for n, why in inv.bad_idx.items()]
    for pack, rows in inv.rows.items():
        listed = inv.packs.get(pack)
        if listed is None:
            out.append((pack, f"{url}/{pack} is missing but its index lists {len(rows)} objects"))
            continue
        end = max((e.offset + e.length for _o, e in rows), default=0)
        if end > listed.size:
            out.append((pack, f"{url}/{pack} is truncated: {listed.size} bytes, its index needs {end}"))
    return out


# -- garbage collection ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Victim:
    names: tuple[str, ...]  # deleted in this order (an index before its pack)
    bytes: int
    objects: int


def fresh_stats(layout: RemoteLayout, victims: list[Victim], cutoff: float) -> set[str]:
    """Names among ``victims`` that became recent since the listing (one ``stat`` each)."""
    out = set()
    for v in victims:
        for n in v.names:
            s = layout.backend.stat(n)
            layout.requests += 1
            if s is not None and s.mtime >= cutoff:
                out.add(n)
    return out


def local_temp_files(layout: RemoteLayout) -> list[tuple[str, int, float]]:
    """Temp files of interrupted writes on a local-folder remote (invisible to listings)."""
    backend = layout.backend
    if not isinstance(backend, LocalBackend):
        return []
    out = []
    for dirpath, _dirs, files in os.walk(backend.root):
        for f in files:
            if _LOCAL_TMP.fullmatch(f):
                p = os.path.join(dirpath, f)
                try:
                    st = os.stat(p)
                except FileNotFoundError:
                    continue
                out.append((p, st.st_size, st.st_mtime))
    return out


def local_ref_locks(layout: RemoteLayout) -> list[tuple[str, bytes, float]]:
    """(path, contents, mtime) of each ``<ref>.lock`` on a local-folder remote: the value a push in
    flight is about to publish (a gc root), or what a killed push left (reported by verify)."""
    backend = layout.backend
    if not isinstance(backend, LocalBackend):
        return []
    out = []
    for lock in (backend.root / "refs").rglob("*.lock"):
        try:
            out.append((str(lock), lock.read_bytes()[:200], lock.stat().st_mtime))
        except OSError:
            continue
    return out


# -- push: freshen what is reused -------------------------------------------------------------------


def freshen_reused(layout: RemoteLayout, reused: Iterable[ObjectId]) -> int:
    """Make the containers of objects a push relies on without uploading them recent.

    A push skips objects the remote already has. Those outside the closure of the remote's refs
    may be garbage that a concurrent ``mv gc --remote`` is about to delete (an interrupted push's
    objects, history that a force-push dropped): touching their pack or loose file puts them inside
    gc's grace period. Returns the number of files touched (usually 0).
    """
    idx = layout.index()
    names: set[str] = set()
    for oid in reused:
        e = idx.get(oid)
        names.add(e.pack if e is not None else loose_name(oid))
    if names:
        layout.backend.touch(sorted(names))
        layout.requests += len(names)
    return len(names)
