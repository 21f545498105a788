"""``mv verify``: an fsck that reads every reachable object once and says exactly what is wrong.

What is checked (docs/format.md, "Verifying a repository"):

* every ref file (``HEAD``, ``refs/**``) holds a full id of an object of the right type (a branch or
  remote-tracking ref names a commit, a tag a commit or tag object, a stage ref a stage event);
* every object reachable from the refs, ``HEAD`` and the reflogs is present; every *structured*
  object (commit, tree, manifest, tag, stage event) is read once, re-hashed and fully validated
  (canonical encoding, fields, a safetensors / GGUF manifest against its own header) and its edges
  are type-checked (a tree entry's manifest has the entry's size, a chunk is a data object…);
* every *data* object (tensor chunk, blob, CDC chunk) has a sound envelope of the kind and raw size
  its referrer records. ``--full`` also re-hashes every data object. The default trusts the bytes
  of a well-formed, correctly sized chunk because every read re-hashes anyway (a checkout or a
  load can never return wrong bytes): the default pass is for finding damage quickly, ``--full``
  for proving there is none;
* objects that nothing reaches are listed as *dangling* (harmless; ``mv gc`` removes them).

A revision limits the walk to what it reaches (itself and its history). A tag is also checked as
a release (mvstore.release.signing): its signature must verify against a trusted key unless
``require_signature`` is off, and the files of the tagged commit are always re-hashed, because a
signature over one id is worth exactly as much as the bytes below that id.

The walk is generic over where objects come from, so ``mvstore.remote.maintenance`` verifies a
remote with the same rules (see :class:`Walker`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import codec
from ..codec import ENVELOPE_SIZE, KIND_DATA, KIND_STRUCT, parse_envelope
from ..errors import CorruptObject, InvalidRefName, MvError, ObjectNotFound
from ..ids import HEX_LEN, ObjectId
from ..objects import (
    ChunkedBlob,
    Commit,
    GGUFManifest,
    SafetensorsManifest,
    StageEvent,
    StoredObject,
    Tag,
    Tree,
)
from ..refs import HEADS, REMOTES, STAGES, TAGS, check_ref_name
from ..repo import Repository

#: Exit codes of ``mv verify`` (documented in its --help and the README).
EXIT_CLEAN = 0
EXIT_PROBLEMS = 1
EXIT_COULD_NOT_RUN = 2

#: A ``<ref>.lock`` older than this is reported (it blocks every update of that ref).
STALE_LOCK_SECONDS = 600

GC_LEFTOVER = ".gc-"  # objects/ab/<62 hex>.gc-<tag>: an object mv gc moved aside (ops/gc.py)


class VerifyFailed(MvError):
    """``mv verify`` found problems (exit code 1)."""

    exit_code = EXIT_PROBLEMS


class CouldNotVerify(MvError):
    """``mv verify`` could not run: not a repository, unknown revision, unreachable remote (exit 2)."""

    exit_code = EXIT_COULD_NOT_RUN


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong. ``code``: missing, corrupt, invalid, type, size, ref, signature."""

    code: str
    object: str | None  # hex id of the object at fault, if any
    where: str  # how the walk got there ("refs/heads/main", "tree 3f9a1c…: model.safetensors")
    message: str

    def line(self) -> str:
        return f"{self.message} (reached from {self.where})" if self.where else self.message

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "object": self.object, "where": self.where, "message": self.message}


@dataclass
class VerifyReport:
    scope: str  # "repository", a revision, or a remote URL
    full: bool
    refs: int = 0
    commits: int = 0
    structs: int = 0
    data_objects: int = 0
    data_bytes: int = 0  # raw bytes of every reachable data object
    hashed_bytes: int = 0  # of which re-hashed in this run
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dangling: list[tuple[str, str]] = field(default_factory=list)  # (hex id, "data" | "struct" | "?")
    missing: set[ObjectId] = field(default_factory=set)
    corrupt: set[ObjectId] = field(default_factory=set)
    seconds: float = 0.0
    # REV mode, and the signed-tag checks of the release workflow
    commit: ObjectId | None = None
    tag: str | None = None
    tag_id: ObjectId | None = None
    signer: str | None = None
    signer_name: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def objects(self) -> int:
        return self.structs + self.data_objects

    def problem(self, code: str, oid: ObjectId | None, where: str, message: str) -> None:
        self.problems.append(Problem(code, oid.hex() if oid is not None else None, where, message))
        if oid is not None:
            (self.missing if code == "missing" else self.corrupt).add(oid)

    def summary(self) -> str:
        """The one line ``mv verify`` prints on stderr when it fails."""
        if not self.problems:
            return "no problems"
        first = self.problems[0].line()
        if len(self.problems) == 1:
            return first
        return f"{len(self.problems)} problems found; the first: {first}"

    def raise_if_problems(self) -> None:
        if self.problems:
            raise VerifyFailed(self.summary())

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "scope": self.scope,
            "full": self.full,
            "rev": self.scope if self.commit is not None else None,
            "commit": self.commit.hex() if self.commit else None,
            "tag": self.tag,
            "tag_id": self.tag_id.hex() if self.tag_id else None,
            "signed_by": self.signer,
            "signer_name": self.signer_name,
            "objects": self.objects,
            "bytes": self.hashed_bytes,
            "refs": self.refs,
            "commits": self.commits,
            "structs": self.structs,
            "data_objects": self.data_objects,
            "data_bytes": self.data_bytes,
            "hashed_bytes": self.hashed_bytes,
            "problems": [p.as_json() for p in self.problems],
            "warnings": self.warnings,
            "dangling": [{"id": h, "kind": k} for h, k in self.dangling],
            "seconds": round(self.seconds, 4),
        }


# -- the walk ---------------------------------------------------------------------------------------

#: What an edge expects to find (checked after decoding); None accepts any structured object.
_EXPECT: dict[str, tuple[type, ...] | None] = {
    "commit": (Commit,),
    "tree": (Tree,),
    "chunked": (ChunkedBlob,),
    "safetensors": (SafetensorsManifest,),
    "gguf": (GGUFManifest,),
    "tag": (Tag,),
    "stage": (StageEvent,),
    "commit-or-tag": (Commit, Tag),
    "any": None,
}
_ENTRY_EXPECT = {"chunked": "chunked", "safetensors": "safetensors", "gguf": "gguf"}

StructReader = Callable[[list[ObjectId]], Iterator[tuple[ObjectId, bytes | MvError]]]
#: A data check yields (bytes re-hashed, the delta base the object needs or None) or the error.
DataResult = tuple[int, ObjectId | None]
DataChecker = Callable[[list[tuple[ObjectId, int, bool]]], Iterator[tuple[ObjectId, DataResult | MvError]]]


@dataclass(frozen=True, slots=True)
class _Edge:
    oid: ObjectId
    expect: str  # a key of _EXPECT, or "data"
    size: int | None  # expected size (data raw size, or a manifest's file size); None: unknown
    where: str
    full: bool = False  # re-hash data below this edge even without --full (a tagged snapshot)


def _short(oid: ObjectId) -> str:
    return oid.hex()[:12]


def _name(obj: StoredObject) -> str:
    return _name_of(type(obj))


class Walker:
    """Reachability with checks: each structured object is read (and re-hashed) exactly once.

    ``read_structs`` yields the verified raw bytes of a batch of ids (or the error for each);
    ``check_data`` checks a batch of (id, expected raw size, re-hash?) and yields bytes hashed or
    the error. Local and remote verification differ only in these two functions.
    """

    def __init__(
        self,
        report: VerifyReport,
        read_structs: StructReader,
        check_data: DataChecker,
        shallow: set[ObjectId] | None = None,
        batch: int = 256,
    ) -> None:
        self.report = report
        self.read_structs = read_structs
        self.check_data = check_data
        self.shallow = shallow or set()
        self.batch = batch
        self.structs: dict[ObjectId, StoredObject | None] = {}  # None: unreadable
        self.sizes: dict[ObjectId, int] = {}  # file size of chunked blobs / manifests
        self.data: dict[ObjectId, tuple[int | None, bool, str]] = {}  # id → (size, full, where)

    @property
    def reached(self) -> set[ObjectId]:
        return set(self.structs) | set(self.data)

    def walk(self, roots: Iterable[_Edge]) -> None:
        frontier = list(roots)
        while frontier:
            todo: dict[ObjectId, list[_Edge]] = {}
            for e in frontier:
                if e.expect == "data":
                    self._data_edge(e)
                elif e.oid in self.structs:
                    self._check_edge(e, self.structs[e.oid])
                else:
                    todo.setdefault(e.oid, []).append(e)
            frontier = []
            ids = list(todo)
            for start in range(0, len(ids), self.batch):
                for oid, got in self.read_structs(ids[start : start + self.batch]):
                    edges = todo[oid]
                    if isinstance(got, MvError):
                        self.structs[oid] = None
                        self._read_error(oid, got, edges[0].where)
                        continue
                    try:
                        obj = codec.decode_object(got, oid.hex())
                    except CorruptObject as err:
                        self.structs[oid] = None
                        self.report.problem("invalid", oid, edges[0].where, str(err))
                        continue
                    self._register(oid, obj)
                    ok = True
                    for edge in edges:
                        ok = self._check_edge(edge, obj) and ok
                    if ok:
                        frontier.extend(self.children(oid, obj, any(edge.full for edge in edges)))

    def read_one(self, oid: ObjectId, where: str) -> StoredObject | None:
        """Read and register one root object outside a walk (None when it is unreadable)."""
        for _oid, got in self.read_structs([oid]):
            if isinstance(got, MvError):
                self.structs[oid] = None
                self._read_error(oid, got, where)
                return None
            try:
                obj = codec.decode_object(got, oid.hex())
            except CorruptObject as e:
                self.structs[oid] = None
                self.report.problem("invalid", oid, where, str(e))
                return None
            self._register(oid, obj)
            return obj
        return None

    def _register(self, oid: ObjectId, obj: StoredObject) -> None:
        self.structs[oid] = obj
        self.report.structs += 1
        if isinstance(obj, Commit):
            self.report.commits += 1
        if isinstance(obj, (ChunkedBlob, SafetensorsManifest, GGUFManifest)):
            self.sizes[oid] = obj.size

    def _read_error(self, oid: ObjectId, err: MvError, where: str) -> None:
        code = "missing" if isinstance(err, ObjectNotFound) else "corrupt"
        msg = f"object {oid.hex()} is missing" if code == "missing" else str(err)
        self.report.problem(code, oid, where, msg)

    def _check_edge(self, e: _Edge, obj: StoredObject | None) -> bool:
        if obj is None:
            return False  # already reported when it was read
        want = _EXPECT[e.expect]
        if want is not None and not isinstance(obj, want):
            expected = " or ".join(_name_of(t) for t in want)
            self.report.problem(
                "type", e.oid, e.where, f"object {e.oid.hex()} is a {_name(obj)}, expected a {expected}"
            )
            return False
        if e.size is not None and e.oid in self.sizes and self.sizes[e.oid] != e.size:
            self.report.problem(
                "size",
                e.oid,
                e.where,
                f"object {e.oid.hex()} describes {self.sizes[e.oid]} bytes, its tree entry says {e.size}",
            )
            return False
        if isinstance(obj, Tag) and obj.target_type != "commit":
            self.report.problem(
                "invalid", e.oid, e.where, f"tag {e.oid.hex()} has unknown target type {obj.target_type!r}"
            )
            return False
        return True

    def _data_edge(self, e: _Edge) -> None:
        if e.oid in self.structs:
            self.report.problem(
                "type", e.oid, e.where, f"object {e.oid.hex()} is referenced both as data and as a structure"
            )
            return
        prev = self.data.get(e.oid)
        if prev is None:
            self.data[e.oid] = (e.size, e.full, e.where)
            return
        size, full, where = prev
        if size is not None and e.size is not None and size != e.size:
            self.report.problem(
                "size", e.oid, e.where, f"data object {e.oid.hex()} is listed with sizes {size} and {e.size}"
            )
        self.data[e.oid] = (size if size is not None else e.size, full or e.full, where)

    def children(self, oid: ObjectId, obj: StoredObject, full: bool) -> list[_Edge]:
        out: list[_Edge] = []
        if isinstance(obj, Commit):
            where = f"commit {_short(oid)}"
            out.append(_Edge(obj.tree, "tree", None, where, full))
            if oid not in self.shallow:
                # the history is not the tagged snapshot: its data is re-hashed only with --full
                out.extend(_Edge(p, "commit", None, f"parent of {where}") for p in obj.parents)
        elif isinstance(obj, Tree):
            for en in obj.entries:
                where = f"tree {_short(oid)}: {en.path}"
                if en.id is None:
                    continue
                if en.kind == "blob":
                    out.append(_Edge(en.id, "data", en.size, where, full))
                else:
                    out.append(_Edge(en.id, _ENTRY_EXPECT.get(en.kind, "any"), en.size, where, full))
        elif isinstance(obj, ChunkedBlob):
            where = f"chunked blob {_short(oid)}"
            out.extend(_Edge(c.id, "data", c.size, where, full) for c in obj.chunks)
        elif isinstance(obj, (SafetensorsManifest, GGUFManifest)):
            for t in obj.tensors:
                where = f"manifest {_short(oid)}: tensor {t.name[:80]}"
                out.extend(_Edge(c.id, "data", c.size, where, full) for c in t.chunks)
        elif isinstance(obj, Tag):
            out.append(_Edge(obj.target, "commit", None, f"tag {_short(oid)}", full))
        elif isinstance(obj, StageEvent):
            where = f"stage event {_short(oid)}"
            out.append(_Edge(obj.target, "commit", None, where))
            if obj.previous is not None:
                out.append(_Edge(obj.previous, "stage", None, where))
        else:  # a type added later: follow what every reachability walk follows
            for child, kind in codec.referenced_ids(obj):
                out.append(
                    _Edge(child, "data" if kind == KIND_DATA else "any", None, f"object {_short(oid)}")
                )
        if not isinstance(obj, Commit) or oid not in self.shallow:
            _check_edges_complete(oid, obj, out, self.report)
        return out

    def finish(self, full: bool) -> None:
        """Check every data object reached (in parallel batches), and the delta bases they need."""
        done: set[ObjectId] = set()
        while True:
            items = [
                (oid, size if size is not None else -1, full or f)
                for oid, (size, f, _w) in self.data.items()
                if oid not in done
            ]
            if not items:
                break
            done.update(oid for oid, _s, _f in items)
            for start in range(0, len(items), 4096):
                for oid, got in self.check_data(items[start : start + 4096]):
                    if isinstance(got, MvError):
                        self._read_error(oid, got, self.data[oid][2])
                        continue
                    hashed, base = got
                    self.report.hashed_bytes += hashed
                    if base is not None:  # a delta: its base must be there, of the same size
                        self._data_edge(
                            _Edge(base, "data", self.data[oid][0], f"delta base of {oid.hex()[:12]}")
                        )
        self.report.data_objects = len(self.data)
        self.report.data_bytes = sum(max(0, s or 0) for s, _f, _w in self.data.values())


_TYPE_NAMES: dict[type, str] = {
    Commit: "commit",
    Tree: "tree",
    ChunkedBlob: "chunked blob",
    SafetensorsManifest: "safetensors manifest",
    GGUFManifest: "gguf manifest",
    Tag: "tag",
    StageEvent: "stage event",
}


def _name_of(t: type) -> str:
    return _TYPE_NAMES.get(t, t.__name__.lower())


def _check_edges_complete(oid: ObjectId, obj: StoredObject, edges: list[_Edge], report: VerifyReport) -> None:
    """The edges verify follows must be exactly what ``codec.referenced_ids`` (gc, push) follows."""
    ours = {(e.oid, KIND_DATA if e.expect == "data" else KIND_STRUCT) for e in edges}
    theirs = set(codec.referenced_ids(obj))
    if ours != theirs:  # pragma: no cover - a programming error, not damage
        report.warnings.append(f"object {oid.hex()}: verify and referenced_ids disagree on its edges")


# -- the local repository ---------------------------------------------------------------------------


def _local_structs(repo: Repository) -> StructReader:
    def read(ids: list[ObjectId]) -> Iterator[tuple[ObjectId, bytes | MvError]]:
        for oid in ids:
            try:
                yield oid, repo.store.read(oid, KIND_STRUCT)
            except MvError as e:
                yield oid, e
            except OSError as e:
                yield oid, CorruptObject(f"object {oid.hex()}: cannot be read ({e.strerror or e})")

    return read


def check_local_data(repo: Repository, oid: ObjectId, size: int, full: bool) -> DataResult:
    """Check one data object: envelope, kind and size always; the hash with ``full``.

    Returns (bytes re-hashed, the delta base it needs or None). Raises ObjectNotFound / CorruptObject.
    """
    from ..ingest import _buffer

    path = repo.store.path(oid)
    what = oid.hex()
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise ObjectNotFound(f"object {what} is missing") from None
    except OSError as e:
        raise CorruptObject(f"object {what}: cannot be read ({e.strerror or e})") from None
    try:
        stored = os.fstat(fd).st_size
        head = os.pread(fd, ENVELOPE_SIZE + 4096, 0)
    finally:
        os.close(fd)
    env = parse_envelope(head, what)
    if env.kind != KIND_DATA:
        raise CorruptObject(f"object {what}: is a structured object where a data object belongs")
    if size >= 0 and env.raw_size != size:
        raise CorruptObject(f"object {what}: holds {env.raw_size} bytes, its referrer says {size}")
    if env.encoding == codec.ENCODING_RAW and stored != ENVELOPE_SIZE + env.raw_size:
        raise CorruptObject(
            f"object {what}: file is {stored} bytes, expected {ENVELOPE_SIZE + env.raw_size} (truncated?)"
        )
    found = codec.delta_base(env, what)
    base = found[0] if found else None
    if not full:
        return 0, base
    if env.encoding == codec.ENCODING_RAW and not env.params:
        repo.store.read_into(oid, _buffer(env.raw_size))  # hash-checked
    else:
        repo.store.read(oid, KIND_DATA)  # decodes (following a delta's base) and hash-checks
    return env.raw_size, base


def _local_data(repo: Repository) -> DataChecker:
    from ..ingest import default_workers

    def one(item: tuple[ObjectId, int, bool]) -> tuple[ObjectId, DataResult | MvError]:
        oid, size, full = item
        try:
            return oid, check_local_data(repo, oid, size, full)
        except MvError as e:
            return oid, e
        except OSError as e:
            return oid, CorruptObject(f"object {oid.hex()}: cannot be read ({e.strerror or e})")

    def check(items: list[tuple[ObjectId, int, bool]]) -> Iterator[tuple[ObjectId, DataResult | MvError]]:
        with ThreadPoolExecutor(default_workers()) as pool:
            yield from pool.map(one, items)

    return check


@dataclass(frozen=True, slots=True)
class RefFile:
    """A file under ``.mv/refs`` (or HEAD) as found on disk, before trusting it."""

    name: str  # "refs/heads/main", "HEAD"
    value: ObjectId | None  # None: unborn HEAD, or unreadable
    error: str | None  # why the file cannot be used as a ref


def _ref_expect(name: str) -> str:
    if name.startswith((HEADS, REMOTES)) or name == "HEAD":
        return "commit"
    if name.startswith(TAGS):
        return "commit-or-tag"
    if name.startswith(STAGES):
        return "stage"
    return "any"


def scan_refs(repo: Repository) -> tuple[list[RefFile], list[Path]]:
    """Every ref file, valid or not, and every ``*.lock`` beside them. Never raises on bad data."""
    refs: list[RefFile] = []
    locks: list[Path] = []
    base = repo.mvdir / "refs"
    head = repo.mvdir / "HEAD"
    for lock in repo.mvdir.glob("HEAD.lock"):
        locks.append(lock)
    try:
        text = head.read_text("ascii").strip()
        if text.startswith("ref: "):
            target = text[5:]
            if not target.startswith(HEADS):
                refs.append(RefFile("HEAD", None, f"HEAD points outside refs/heads: {target[:80]!r}"))
            else:
                try:
                    check_ref_name(target[len(HEADS) :], "branch")
                    refs.append(RefFile("HEAD", None, None))  # symbolic: the branch is checked itself
                except InvalidRefName as e:
                    refs.append(RefFile("HEAD", None, str(e)))
        else:
            refs.append(_parse_ref("HEAD", text))
    except FileNotFoundError:
        refs.append(RefFile("HEAD", None, "HEAD is missing"))
    except (UnicodeDecodeError, OSError) as e:
        refs.append(RefFile("HEAD", None, f"HEAD cannot be read: {e}"))
    if base.is_dir():
        for dirpath, _dirs, files in os.walk(base):
            for f in sorted(files):
                path = Path(dirpath) / f
                name = "refs/" + path.relative_to(base).as_posix()
                if f.endswith(".lock"):
                    locks.append(path)
                    continue
                try:
                    check_ref_name(name[len("refs/") :])
                except InvalidRefName:
                    refs.append(RefFile(name, None, f"invalid ref name {name[:80]!r}"))
                    continue
                try:
                    text = path.read_text("ascii").strip()
                except (UnicodeDecodeError, OSError) as e:
                    refs.append(RefFile(name, None, f"ref {name} cannot be read ({type(e).__name__})"))
                    continue
                refs.append(_parse_ref(name, text))
    return refs, locks


def _parse_ref(name: str, text: str) -> RefFile:
    if len(text) == HEX_LEN:
        try:
            return RefFile(name, ObjectId.from_hex(text), None)
        except ValueError:
            pass
    return RefFile(name, None, f"ref {name} is corrupt: {text[:80]!r}")


@dataclass(frozen=True, slots=True)
class ReflogEntry:
    ref: str
    old: ObjectId | None
    new: ObjectId | None
    time: int


def scan_reflogs(repo: Repository) -> tuple[list[ReflogEntry], list[str]]:
    """Every reflog line (both ids), and complaints about lines that do not parse."""
    out: list[ReflogEntry] = []
    bad: list[str] = []
    base = repo.mvdir / "logs"
    if not base.is_dir():
        return out, bad
    zero = "0" * HEX_LEN
    for dirpath, _dirs, files in os.walk(base):
        for f in sorted(files):
            path = Path(dirpath) / f
            ref = path.relative_to(base).as_posix()
            try:
                lines = path.read_text("utf-8").splitlines()
            except (UnicodeDecodeError, OSError):
                bad.append(f"reflog of {ref} cannot be read")
                continue
            for n, line in enumerate(lines, 1):
                parts = line.split(" ", 3)
                try:
                    old = None if parts[0] == zero else ObjectId.from_hex(parts[0])
                    new = None if parts[1] == zero else ObjectId.from_hex(parts[1])
                    when = int(parts[2])
                except (IndexError, ValueError):
                    if line.strip():
                        bad.append(f"reflog of {ref}, line {n}: does not parse")
                    continue
                out.append(ReflogEntry(ref, old, new, when))
    return out, bad


def _object_kind(repo: Repository, oid: ObjectId) -> str:
    try:
        return codec.KIND_NAMES.get(repo.store.read_kind(oid), "?")
    except (MvError, OSError):
        return "?"


def verify(
    repo: Repository,
    rev: str | None = None,
    full: bool = False,
    keyrings: list[str] | None = None,
    require_signature: bool = True,
    history: bool = False,
) -> VerifyReport:
    """Check the repository (or what ``rev`` reaches). Never raises for damage: it is reported.

    Raises :class:`CouldNotVerify` when there is nothing meaningful to check (an unknown revision,
    untrusted-key files that cannot be read…).
    """
    t0 = time.perf_counter()
    report = VerifyReport(rev if rev is not None else "repository", full)
    walker = Walker(report, _local_structs(repo), _local_data(repo), repo.shallow_commits())
    if rev is None:
        _verify_all(repo, walker)
    else:
        _verify_rev(repo, walker, rev, keyrings, require_signature)
    walker.finish(full or history)
    if rev is None:
        reached = walker.reached
        for oid, _size, _mtime in repo.store.scan():
            if oid not in reached:
                report.dangling.append((oid.hex(), _object_kind(repo, oid)))
        _leftovers(repo, report)
    report.seconds = time.perf_counter() - t0
    return report


def _verify_all(repo: Repository, walker: Walker) -> None:
    report = walker.report
    refs, locks = scan_refs(repo)
    roots: list[_Edge] = []
    for r in refs:
        report.refs += 1
        if r.error is not None:
            report.problem("ref", None, r.name, r.error)
        elif r.value is not None:
            roots.append(_Edge(r.value, _ref_expect(r.name), None, r.name))
    now = time.time()
    for lock in locks:
        try:
            age = now - lock.stat().st_mtime
        except FileNotFoundError:
            continue
        if age > STALE_LOCK_SECONDS:
            report.warnings.append(
                f"{lock} is {age / 3600:.1f} h old: it blocks updates of that ref; if no mv process is "
                "running, delete it (docs/format.md, 'Locks')"
            )
    entries, bad = scan_reflogs(repo)
    report.warnings.extend(bad)
    for e in entries:
        for oid in (e.old, e.new):
            if oid is not None:
                roots.append(_Edge(oid, _ref_expect(e.ref), None, f"reflog of {e.ref}"))
    walker.walk(roots)


def _verify_rev(
    repo: Repository,
    walker: Walker,
    rev: str,
    keyrings: list[str] | None,
    require_signature: bool,
) -> None:
    from ..errors import AmbiguousRevision, RevisionNotFound
    from ..revparse import resolve_object

    report = walker.report
    try:
        oid = resolve_object(repo, rev)
    except (RevisionNotFound, AmbiguousRevision, InvalidRefName) as e:
        raise CouldNotVerify(str(e)) from None
    except CorruptObject as e:  # REV~N through a damaged commit: that is a finding, not a usage error
        report.problem("corrupt", None, rev, str(e))
        return
    except ObjectNotFound as e:
        report.problem("missing", None, rev, str(e))
        return
    tag_ref = _tag_ref_name(repo, rev, oid)
    report.refs = 1
    obj = walker.read_one(oid, rev)
    if obj is None:
        return
    if isinstance(obj, Tag):
        report.tag, report.tag_id = obj.name, oid
        _check_signature(repo, report, rev, oid, obj, tag_ref, keyrings, require_signature)
        tip = obj.target
    elif isinstance(obj, Commit):
        if tag_ref is not None and require_signature:
            report.problem(
                "signature",
                None,
                rev,
                f"{rev} is not a signed tag (use --unsigned to check object hashes only)",
            )
        tip = oid
    else:
        report.problem("type", oid, rev, f"{rev} names a {_name(obj)}, not a commit or tag")
        return
    report.commit = tip
    # The files of a tagged commit are re-hashed in full: that is what a signature (a release) vouches for.
    full_snapshot = tag_ref is not None or isinstance(obj, Tag)
    walker.walk(walker.children(oid, obj, full_snapshot))


def _tag_ref_name(repo: Repository, rev: str, oid: ObjectId) -> str | None:
    """The tag ref ``rev`` resolved through, if any (tags win over branches, as in revparse)."""
    name = rev[len(TAGS) :] if rev.startswith(TAGS) else rev
    try:
        check_ref_name(name, "tag")
    except InvalidRefName:
        return None
    try:
        return name if repo.refs.read(TAGS + name) == oid else None
    except MvError:
        return None


def _check_signature(
    repo: Repository,
    report: VerifyReport,
    rev: str,
    oid: ObjectId,
    tag: Tag,
    tag_ref: str | None,
    keyrings: list[str] | None,
    require_signature: bool,
) -> None:
    """The release workflow's rules for a signed tag (mvstore.release.signing), as findings."""
    from ..release.errors import SignatureError
    from ..release.signing import check_signature, public_key_text, trusted_keys

    if tag_ref is not None and tag.name != tag_ref:
        report.problem(
            "signature",
            oid,
            rev,
            f"tag {tag_ref!r} holds a tag object named {tag.name!r}: a signed tag reused under another name",
        )
        return
    if tag.signature is None and not require_signature:
        return
    try:
        check_signature(tag, f"tag {tag.name}")
    except SignatureError as e:
        report.problem("signature", oid, "", str(e))
        return
    assert tag.signature is not None
    try:
        trusted = trusted_keys(repo, keyrings)
    except MvError as e:
        raise CouldNotVerify(str(e)) from None
    report.signer = public_key_text(tag.signature.key)
    if tag.signature.key not in trusted:
        report.problem(
            "signature",
            oid,
            "",
            f"tag {tag.name} is signed by {report.signer}, which is not a trusted key "
            "(trust it with 'mv key trust KEY NAME' or pass --keyring FILE)",
        )
        return
    report.signer_name = trusted[tag.signature.key]


def _leftovers(repo: Repository, report: VerifyReport) -> None:
    """Harmless debris worth a word: temp files of interrupted writes, objects a gc moved aside."""
    tmp = repo.mvdir / "tmp"
    try:
        n = sum(1 for _ in os.scandir(tmp))
    except FileNotFoundError:
        n = 0
    if n:
        report.warnings.append(f"{n} temporary files in {tmp} (interrupted writes; 'mv gc' removes old ones)")
    root = repo.store.root
    if not root.is_dir():
        return
    for fan in os.listdir(root):
        try:
            names = os.listdir(root / fan)
        except (NotADirectoryError, FileNotFoundError):
            continue
        for name in names:
            if GC_LEFTOVER in name:
                report.warnings.append(
                    f"{root / fan / name}: left by an interrupted gc ('mv gc' or 'mv repair' puts it back or removes it)"
                )


# -- remotes ----------------------------------------------------------------------------------------


def verify_remote(
    layout: Any,
    rev: str | None = None,
    full: bool = False,
    repo: Repository | None = None,
    keyrings: list[str] | None = None,
    require_signature: bool = True,
) -> VerifyReport:
    """Verify a remote where it is: each object downloaded at most once, nothing stored locally.

    Structured objects are downloaded (by ranged reads per pack) and checked like local ones.
    Data objects are checked for presence (pack indexes and the listing, including that every
    index row lies inside its pack); ``full`` downloads each one once and re-hashes it. ``layout``
    should have no index cache, so that the remote's own indexes are what is checked. A tag
    ``rev`` is checked as a release, as locally: its signature against ``repo``'s trusted keys.
    """
    from ..remote.layout import is_full_hex
    from ..remote.maintenance import inventory, read_objects, structural_problems

    t0 = time.perf_counter()
    url = layout.backend.url
    report = VerifyReport(rev if rev is not None else url, full)
    try:
        layout.check()
        inv = inventory(layout)
        names = [n for n in layout.backend.list("refs/") if not n.endswith(".lock")]
        ref_data = layout.backend.read_many(names) if names else {}
    except MvError as e:
        raise CouldNotVerify(str(e)) from None
    for name, msg in structural_problems(inv, url):
        report.problem("corrupt", None, name, msg)
    from ..remote.maintenance import local_ref_locks

    for path, _content, mtime in local_ref_locks(layout):
        if time.time() - mtime > STALE_LOCK_SECONDS:
            report.warnings.append(
                f"{path} is {(time.time() - mtime) / 3600:.1f} h old: it blocks pushes of that ref; if no "
                "push is running, delete it"
            )
    for pack in inv.packs:
        if pack not in inv.rows and pack[: -len(".pack")] + ".idx" not in inv.bad_idx:
            report.warnings.append(
                f"{url}/{pack} has no index (an interrupted push; 'mv gc --remote' removes it)"
            )
    refs: dict[str, ObjectId] = {}
    for n in names:
        report.refs += 1
        try:
            check_ref_name(n[len("refs/") :])
        except InvalidRefName:
            report.problem("ref", None, n, f"{url}/{n}: invalid ref name")
            continue
        raw = ref_data.get(n)
        if raw is None:
            continue
        try:
            refs[n] = ObjectId.from_hex(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            report.problem("ref", None, n, f"{url}/{n} is corrupt: {raw[:80]!r}")
    locations = inv.locations()

    def read_structs(ids: list[ObjectId]) -> Iterator[tuple[ObjectId, bytes | MvError]]:
        for oid, got in read_objects(layout, inv, ids):
            if isinstance(got, MvError):
                yield oid, got
            elif got[0] != KIND_STRUCT:
                yield oid, CorruptObject(f"object {oid.hex()} is a data object where a structure belongs")
            else:
                yield oid, got[1]

    def check_data(
        items: list[tuple[ObjectId, int, bool]],
    ) -> Iterator[tuple[ObjectId, DataResult | MvError]]:
        for oid, _size, rehash in items:  # presence only, unless --full or a tagged snapshot
            if rehash:
                continue
            if oid in locations:
                yield oid, (0, None)
            else:
                yield oid, ObjectNotFound(f"object {oid.hex()} is missing")
        sizes = {oid: size for oid, size, rehash in items if rehash}
        if not sizes:
            return
        for oid, got in read_objects(layout, inv, list(sizes)):
            if isinstance(got, MvError):
                yield oid, got
            elif got[0] != KIND_DATA:
                yield oid, CorruptObject(f"object {oid.hex()} is a structure where a data object belongs")
            elif sizes[oid] >= 0 and len(got[1]) != sizes[oid]:
                yield (
                    oid,
                    CorruptObject(
                        f"object {oid.hex()}: holds {len(got[1])} bytes, its referrer says {sizes[oid]}"
                    ),
                )
            else:
                yield oid, (len(got[1]), None)

    walker = Walker(report, read_structs, check_data)
    if rev is None:
        walker.walk(_Edge(oid, _ref_expect(n), None, f"{url}/{n}") for n, oid in refs.items())
    else:
        if is_full_hex(rev):
            root = ObjectId.from_hex(rev)
        else:
            found = refs.get(TAGS + rev) or refs.get(HEADS + rev) or refs.get(rev)
            if found is None:
                raise CouldNotVerify(f"{rev}: no such branch or tag on {url}")
            root = found
        report.commit = root
        short = rev[len(TAGS) :] if rev.startswith(TAGS) else rev
        tag_ref = short if refs.get(TAGS + short) == root else None
        report.refs = 1
        obj = walker.read_one(root, rev)
        if obj is not None:
            snapshot = _check_remote_release(repo, report, rev, root, obj, tag_ref, keyrings, require_signature)
            if snapshot is not None:
                walker.walk(walker.children(root, obj, snapshot))
    walker.finish(full)
    if rev is None:
        reached = walker.reached
        for oid in inv.loose:
            if oid not in reached:
                report.dangling.append((oid.hex(), "loose"))
        for pack, rows in inv.rows.items():
            if pack in inv.packs and not any(o in reached for o, _e in rows):
                report.dangling.append((pack, "pack"))
    report.seconds = time.perf_counter() - t0
    return report


def _check_remote_release(
    repo: Repository | None,
    report: VerifyReport,
    rev: str,
    root: ObjectId,
    obj: StoredObject,
    tag_ref: str | None,
    keyrings: list[str] | None,
    require_signature: bool,
) -> bool | None:
    """A remote REV gets the checks a local one gets: a tag's signature and name binding, and a
    tagged snapshot's files re-hashed. Returns whether to re-hash the snapshot (None: not a commit
    or tag, reported)."""
    if isinstance(obj, Tag):
        report.tag, report.tag_id = obj.name, root
        report.commit = obj.target
        if repo is None:
            if require_signature:
                report.warnings.append(f"{rev}: signature not checked (no repository holds the trusted keys)")
        else:
            _check_signature(repo, report, rev, root, obj, tag_ref, keyrings, require_signature)
        return True
    if isinstance(obj, Commit):
        if tag_ref is not None and require_signature:
            report.problem(
                "signature", None, rev, f"{rev} is not a signed tag (use --unsigned to check object hashes only)"
            )
        return tag_ref is not None
    report.problem("type", root, rev, f"{rev} names a {_name(obj)}, not a commit or tag")
    return None
