"""The layout of a remote repository, on top of any :class:`~mvstore.remote.backend.Backend`.

```
mvstore.json              marker: {"mvstore": 1}; a remote without it is refused
refs/heads/<b>, refs/tags/<t>   "<64 hex>\\n", moved only by create-only / compare-and-swap writes
objects/ab/cdef…          large objects, one per name (stored-object envelope, maybe compressed)
packs/<hex>.pack          small objects concatenated (restic-style), readable by range
packs/<hex>.idx           canonical msgpack index of a pack: [[id, offset, length, kind], …]
```

Small objects (most tensors are a few KiB) go into packs so the number of requests grows with the
changed bytes, not with the count of tiny objects. A pack is written before its index; readers only
use packs that have an index, so an interrupted push leaves at most an unreferenced pack. Objects
always go up before refs move.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import codec
from ..errors import CorruptObject, InvalidRefName, ObjectNotFound
from ..ids import HEX_LEN, ObjectId, hash_bytes
from ..refs import HEADS, STAGES, TAGS, check_ref_name
from .backend import Backend, RemoteError

MARKER = "mvstore.json"
LOOSE_MIN_BYTES = 1 << 20  # encoded objects at least this big are stored one per name
PACK_TARGET_BYTES = 32 << 20


@dataclass(frozen=True, slots=True)
class PackEntry:
    pack: str
    offset: int
    length: int
    kind: int


def loose_name(oid: ObjectId) -> str:
    h = oid.hex()
    return f"objects/{h[:2]}/{h[2:]}"


class RemoteLayout:
    def __init__(self, backend: Backend, cache_dir: Path | None) -> None:
        self.backend = backend
        self.cache_dir = cache_dir  # where immutable pack indexes are cached between runs
        self._index: dict[ObjectId, PackEntry] | None = None
        self.requests = 0
        self.bytes_in = 0  # object bytes downloaded (as stored on the remote, i.e. encoded)
        self._lock = threading.Lock()

    # -- marker -------------------------------------------------------------------------------------

    def check(self, create: bool = False) -> None:
        """Refuse a URL that is not an mvstore remote; ``create`` initializes an empty one."""
        try:
            doc = json.loads(self.backend.read(MARKER))
            self.requests += 1
        except ObjectNotFound:
            if not create:
                raise RemoteError(f"{self.backend.url}: not an mvstore remote (no {MARKER})") from None
            if self.backend.list("refs/") or self.backend.list("objects/"):
                raise RemoteError(
                    f"{self.backend.url}: holds other data and no {MARKER}; refusing to write"
                ) from None
            self.backend.create(MARKER, json.dumps({"mvstore": 1}).encode())
            return
        except ValueError:
            raise RemoteError(f"{self.backend.url}: {MARKER} is not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("mvstore") != 1:
            raise RemoteError(f"{self.backend.url}: unsupported remote format {doc!r:.80}")

    # -- refs ---------------------------------------------------------------------------------------

    def refs(self) -> dict[str, ObjectId]:
        """Every branch and tag on the remote (two requests: a listing and a batched read)."""
        names = [n for n in self.backend.list("refs/") if n.startswith((HEADS, TAGS, STAGES))]
        self.requests += 1
        valid = []
        for n in names:
            try:
                check_ref_name(n[len("refs/") :])
                valid.append(n)
            except InvalidRefName:
                continue  # a hostile or foreign name is ignored, never used as a path
        data = self.backend.read_many(valid) if valid else {}
        self.requests += 1 if valid else 0
        out = {}
        for n, raw in data.items():
            try:
                out[n] = ObjectId.from_hex(raw.decode("ascii").strip())
            except (UnicodeDecodeError, ValueError):
                raise RemoteError(f"{self.backend.url}: ref {n} is corrupt") from None
        return out

    # -- pack index ---------------------------------------------------------------------------------

    def index(self, refresh: bool = False) -> dict[ObjectId, PackEntry]:
        """Where every packed object is: one listing plus the indexes not cached locally yet."""
        if self._index is not None and not refresh:
            return self._index
        idx_names = [n for n in self.backend.list("packs/") if n.endswith(".idx")]
        self.requests += 1
        out: dict[ObjectId, PackEntry] = {}
        missing = []
        for n in idx_names:
            cached = self._cached_idx(n)
            if cached is None:
                missing.append(n)
            else:
                self._merge_idx(out, n, cached)
        if missing:
            fetched = self.backend.read_many(missing)
            self.requests += 1
            for n, raw in fetched.items():
                self._merge_idx(out, n, raw)
                self._cache_idx(n, raw)
        self._index = out
        return out

    def _cached_idx(self, name: str) -> bytes | None:
        if self.cache_dir is None:
            return None
        try:
            return (self.cache_dir / name.replace("/", "_")).read_bytes()
        except FileNotFoundError:
            return None

    def _cache_idx(self, name: str, raw: bytes) -> None:
        if self.cache_dir is None:
            return
        from ..refs import write_atomic

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        try:
            write_atomic(self.cache_dir / name.replace("/", "_"), raw)
        except OSError:
            pass

    def _merge_idx(self, out: dict[ObjectId, PackEntry], name: str, raw: bytes) -> None:
        for oid, entry in self.index_rows(name, raw):
            out.setdefault(oid, entry)

    def pack_indexes(self, names: list[str]) -> dict[str, list[tuple[ObjectId, PackEntry]]]:
        """Every row of each named ``.idx`` (duplicates across packs included), cache first."""
        out: dict[str, list[tuple[ObjectId, PackEntry]]] = {}
        missing = []
        for n in names:
            cached = self._cached_idx(n)
            if cached is None:
                missing.append(n)
            else:
                out[n] = self.index_rows(n, cached)
        if missing:
            fetched = self.backend.read_many(missing)
            self.requests += 1
            for n, raw in fetched.items():
                out[n] = self.index_rows(n, raw)
                self._cache_idx(n, raw)
        return out

    def index_rows(self, name: str, raw: bytes) -> list[tuple[ObjectId, PackEntry]]:
        """The rows of one pack index, validated (CorruptObject if it is not one)."""
        pack = name[: -len(".idx")] + ".pack"
        rows_out: list[tuple[ObjectId, PackEntry]] = []
        doc = codec.unpack(raw, name)
        if not isinstance(doc, dict) or doc.get("v") != 1 or doc.get("type") != "packidx":
            raise CorruptObject(f"{self.backend.url}/{name}: not a pack index")
        rows = doc.get("objects")
        if not isinstance(rows, list):
            raise CorruptObject(f"{self.backend.url}/{name}: not a pack index")
        for row in rows:
            if not (isinstance(row, list) and len(row) == 4 and all(type(x) is int for x in row[1:])):
                raise CorruptObject(f"{self.backend.url}/{name}: bad index row")
            oid, off, length, kind = row
            if not isinstance(oid, bytes) or len(oid) != 32 or off < 0 or length <= 0:
                raise CorruptObject(f"{self.backend.url}/{name}: bad index row")
            rows_out.append((ObjectId(oid), PackEntry(pack, off, length, kind)))
        return rows_out

    # -- presence -----------------------------------------------------------------------------------

    def missing(
        self, candidates: Iterable[tuple[ObjectId, int]], big: set[ObjectId]
    ) -> list[tuple[ObjectId, int]]:
        """Which candidates the remote lacks: packed ones from the index, big ones by a batched check."""
        idx = self.index()
        todo = [(o, k) for o, k in candidates if o not in idx]
        loose_check = [loose_name(o) for o, _ in todo if o in big]
        present = self.backend.exists_many(loose_check) if loose_check else set()
        self.requests += 1 if loose_check else 0
        return [(o, k) for o, k in todo if loose_name(o) not in present]

    # -- upload -------------------------------------------------------------------------------------

    def upload(
        self, encoded: Iterator[tuple[ObjectId, int, bytes]], batch_bytes: int = 128 << 20
    ) -> tuple[int, int]:
        """Send encoded objects: big ones loose, small ones in packs; indexes after their packs."""
        sent_objects = sent_bytes = 0
        batch: dict[str, bytes] = {}
        batch_size = 0
        pack: list[tuple[ObjectId, int, bytes]] = []
        pack_size = 0
        pending_idx: dict[str, bytes] = {}

        def flush_batch() -> None:
            nonlocal batch, batch_size, pending_idx
            if batch:
                self.backend.write_many(batch)
                self.requests += 1
            if pending_idx:  # indexes only after the packs they describe are stored
                self.backend.write_many(pending_idx)
                self.requests += 1
            batch, batch_size, pending_idx = {}, 0, {}

        def seal_pack() -> None:
            nonlocal pack, pack_size, batch_size
            if not pack:
                return
            body = b"".join(e for _, _, e in pack)
            rows, off = [], 0
            for oid, kind, e in pack:
                rows.append([bytes(oid), off, len(e), kind])
                off += len(e)
            name = f"packs/{hash_bytes(body).hex()}"
            batch[name + ".pack"] = body
            idx = codec.pack({"v": 1, "type": "packidx", "objects": rows})
            pending_idx[name + ".idx"] = idx
            batch_size += len(body)
            pack, pack_size = [], 0

        for oid, kind, env in encoded:
            sent_objects += 1
            sent_bytes += len(env)
            if len(env) >= LOOSE_MIN_BYTES:
                batch[loose_name(oid)] = env
                batch_size += len(env)
            else:
                pack.append((oid, kind, env))
                pack_size += len(env)
                if pack_size >= PACK_TARGET_BYTES:
                    seal_pack()
            if batch_size >= batch_bytes:
                flush_batch()
        seal_pack()
        flush_batch()
        self._index = None
        return sent_objects, sent_bytes

    # -- download -----------------------------------------------------------------------------------

    def download(self, wanted: list[ObjectId]) -> Iterator[tuple[ObjectId, int, bytes]]:
        """(id, kind, raw) for each wanted object, every one verified against its id."""
        idx = self.index()
        by_pack: dict[str, list[tuple[ObjectId, PackEntry]]] = {}
        loose: list[ObjectId] = []
        for oid in wanted:
            e = idx.get(oid)
            if e is None:
                loose.append(oid)
            else:
                by_pack.setdefault(e.pack, []).append((oid, e))
        from concurrent.futures import ThreadPoolExecutor

        def check(item: tuple[ObjectId, bytes]) -> tuple[ObjectId, int, bytes]:
            return item[0], *self._verify(*item)

        # Decoding (zstd, plane merge) and hashing release the GIL: verify on a small pool.
        with ThreadPoolExecutor(2) as pool:
            for pack, items in by_pack.items():
                items.sort(key=lambda x: x[1].offset)
                datas = self.backend.read_ranges(pack, [(e.offset, e.offset + e.length) for _, e in items])
                self.requests += 1
                yield from pool.map(check, [(oid, d) for (oid, _e), d in zip(items, datas, strict=True)])
            for start in range(0, len(loose), 32):  # 32 loose objects ≤ 128 MiB in memory at once
                names = {loose_name(o): o for o in loose[start : start + 32]}
                got = self.backend.read_many(list(names))
                self.requests += 1
                for name, oid in names.items():
                    if name not in got:
                        raise ObjectNotFound(f"object {oid.hex()} is not on the remote {self.backend.url}")
                yield from pool.map(check, [(oid, got[name]) for name, oid in names.items()])

    def verify_stored(self, oid: ObjectId, data: bytes) -> tuple[int, bytes]:
        """(kind, raw) of one stored-object envelope, checked against ``oid`` (CorruptObject)."""
        return self._verify(oid, data)

    def _verify(self, oid: ObjectId, data: bytes) -> tuple[int, bytes]:
        with self._lock:
            self.bytes_in += len(data)
        what = f"{oid.hex()} from {self.backend.url}"
        env = codec.parse_envelope(data[: codec.ENVELOPE_SIZE + 65536], what)
        raw = bytes(codec.decode_payload(env, memoryview(data)[env.payload_offset :], what))
        if hash_bytes(raw) != oid:
            raise CorruptObject(
                f"object {oid.hex()} from {self.backend.url} does not match its id (corrupt or tampered)"
            )
        return env.kind, raw


def is_full_hex(text: str) -> bool:
    return len(text) == HEX_LEN and all(c in "0123456789abcdef" for c in text)
