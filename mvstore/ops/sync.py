"""push, fetch, pull, clone: move objects between the local store and a remote, then refs.

Objects always travel first and refs last. Pushed refs move by compare-and-swap on the remote
(create-only for new refs), so two pushers can never both win; fetched objects are verified against
their ids before they enter the local store, and local refs move only after the objects are durable.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .. import codec
from ..codec import KIND_DATA, KIND_STRUCT
from ..errors import MvError, RefConflict, RevisionNotFound, UsageError
from ..formats.safetensors import DTYPE_BITS
from ..ids import ObjectId
from ..objects import Commit, SafetensorsManifest, StoredObject, Tag
from ..refs import HEADS, REMOTES, STAGES, TAGS, check_ref_name
from ..remote.backend import Backend, UnsafeRemote
from ..remote.config import RemoteSpec, get_remote, get_upstream, set_upstream
from ..remote.layout import LOOSE_MIN_BYTES, RemoteLayout, is_full_hex
from ..repo import Repository
from .history import walk

Progress = Callable[[str, int, int, int | None], None]  # (phase, done objects, done bytes, total objects)


class NonFastForward(RefConflict):
    """The remote ref is not an ancestor of what is being pushed (or the local ref, for pull)."""


@dataclass
class TransferResult:
    remote: str
    objects: int = 0
    bytes: int = 0  # bytes on the wire (encoded)
    raw_bytes: int = 0
    seconds: float = 0.0
    requests: int = 0
    refs: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    up_to_date: bool = False
    skipped: list[str] = field(default_factory=list)  # refs left alone (diverged stage history)


def open_backend(url: str, options: dict[str, object] | None = None) -> Backend:
    from ..remote.fsspec_backend import open_backend as _open

    return _open(url, options or {})


def _layout(repo: Repository | None, spec: RemoteSpec) -> RemoteLayout:
    cache = repo.mvdir / "remotes" / spec.name / "idx" if repo is not None else None
    return RemoteLayout(open_backend(spec.url, spec.options), cache)


def resolve_remote(repo: Repository, name_or_url: str) -> RemoteSpec:
    if "://" in name_or_url or name_or_url.startswith(("/", ".")):
        return RemoteSpec("_url", name_or_url, {})
    return get_remote(repo.config, name_or_url)


# -- walking the object graph ---------------------------------------------------------------------


def _children(obj: StoredObject) -> list[tuple[ObjectId, int]]:
    return codec.referenced_ids(obj)


def object_closure(
    repo: Repository, commits: Iterable[ObjectId], exclude: set[ObjectId] | None = None
) -> dict[ObjectId, int]:
    """Every object (id → plane width for data, 0 for structured) below ``commits`` (not parents)."""
    out: dict[ObjectId, int] = {}
    exclude = exclude or set()
    stack: list[tuple[ObjectId, int]] = [(c, KIND_STRUCT) for c in commits]
    while stack:
        oid, kind = stack.pop()
        if oid in out or oid in exclude:
            continue
        if kind == KIND_DATA:
            out.setdefault(oid, 1)
            continue
        out[oid] = 0
        obj = repo.read_object(oid)
        if isinstance(obj, Commit):
            stack.append((obj.tree, KIND_STRUCT))
        elif isinstance(obj, SafetensorsManifest):
            for t in obj.tensors:
                width = max(1, DTYPE_BITS[t.dtype] // 8)
                for c in t.chunks:
                    if c.id not in out and c.id not in exclude:
                        out[c.id] = width
        else:  # trees, chunked blobs, tags, stage events, GGUF manifests…: follow every reference
            stack.extend(_children(obj))
    return out


def _split_history(
    repo: Repository, new_tips: list[ObjectId], remote_tips: set[ObjectId]
) -> tuple[list[ObjectId], set[ObjectId]]:
    """(commits reachable from ``new_tips`` but not from ``remote_tips``, the remote commits they
    sit on), walking both sides newest first and stopping once every open path is on the remote
    side: the cost grows with the new commits, not with the length of history (git's "paint down
    to the merge base"). Clock skew can only make it walk further, never miss a new commit.
    """
    import heapq

    new, remote = 1, 2
    flags: dict[ObjectId, int] = {}
    commits: dict[ObjectId, Commit] = {}
    heap: list[tuple[int, bytes, ObjectId]] = []

    def push(oid: ObjectId, flag: int) -> None:
        before = flags.get(oid, 0)
        if before | flag == before:
            return
        flags[oid] = before | flag
        if oid not in commits:
            if not repo.store.has(oid):
                return  # beyond a shallow clone's edge, or a remote tip we never fetched
            commits[oid] = repo.commit_object(oid)
        heapq.heappush(heap, (-commits[oid].time, bytes(oid), oid))  # (re)visit with the new flags

    for t in remote_tips:
        push(t, remote)
    for t in new_tips:
        push(t, new)
    while heap and any(flags[o] == new for _t, _b, o in heap):
        _t, _b, oid = heapq.heappop(heap)
        for parent in commits[oid].parents:
            push(parent, flags[oid])
    fresh = [o for o, f in flags.items() if f == new and o in commits]
    boundary = {p for o in fresh for p in commits[o].parents if flags.get(p, 0) & remote}
    boundary |= {o for o in new_tips if flags.get(o, 0) & remote}
    return fresh, boundary


def is_ancestor(repo: Repository, old: ObjectId, new: ObjectId) -> bool:
    if old == new:
        return True
    if not repo.store.has(old):
        return False
    return any(oid == old for oid, _ in walk(repo, new))


# -- push -----------------------------------------------------------------------------------------


def _tracking_ref(spec: RemoteSpec, full: str) -> str | None:
    """``refs/remotes/<remote>/<branch>`` for a remote branch; None for tags and for a bare URL."""
    if not full.startswith(HEADS) or spec.name == "_url":
        return None
    return f"{REMOTES}{spec.name}/{full[len(HEADS) :]}"


def _expand_refspec(repo: Repository, spec: str) -> str:
    if spec.startswith((HEADS, TAGS)):
        full = spec
    elif repo.refs.read(HEADS + check_ref_name(spec)) is not None:
        full = HEADS + spec
    elif repo.refs.read(TAGS + spec) is not None:
        full = TAGS + spec
    else:
        raise RevisionNotFound(f"{spec}: no branch or tag with that name")
    return full


def push(
    repo: Repository,
    remote: str | None = None,
    refspecs: list[str] | None = None,
    force: bool = False,
    unsafe: bool = False,
    compress: bool = True,
    set_upstream_branch: bool = False,
    progress: Progress | None = None,
) -> TransferResult:
    t0 = time.perf_counter()
    head = repo.refs.head()
    if remote is None:
        up = get_upstream(repo.config, head.branch) if head.branch else None
        if up is None:
            from ..remote.config import list_remotes

            remotes = list_remotes(repo.config)
            if len(remotes) != 1 or head.branch is None:
                raise UsageError("no upstream for the current branch; use 'mv push REMOTE BRANCH'")
            up = (remotes[0].name, HEADS + head.branch)  # the only remote: use it, and remember it
            set_upstream_branch = True
        remote, merge = up
        refspecs = refspecs or [merge]
    spec = resolve_remote(repo, remote)
    if not refspecs:
        if head.branch is None:
            raise UsageError("HEAD is detached; name what to push")
        refspecs = [head.branch]
        set_upstream_branch = set_upstream_branch or get_upstream(repo.config, head.branch) is None
    layout = _layout(repo, spec)
    if not layout.backend.atomic and not unsafe:
        raise UnsafeRemote(
            f"{spec.url}: this backend has no conditional writes, so concurrent pushes could lose "
            "commits; pass --unsafe if you are the only writer"
        )
    layout.check(create=True)
    remote_refs = layout.refs()
    updates: list[tuple[str, ObjectId | None, ObjectId]] = []
    for s in refspecs:
        full = _expand_refspec(repo, s)
        new = repo.refs.read(full)
        assert new is not None
        old = remote_refs.get(full)
        if old == new:
            # Already there (maybe a push that died after the remote moved, before the tracking
            # ref did): bring refs/remotes/<remote>/<branch> up to date anyway.
            tracking = _tracking_ref(spec, full)
            if tracking is not None and repo.refs.read(tracking) != new:
                repo.refs.update(tracking, new, message=f"push to {spec.name} (already there)")
            continue
        if old is not None and not force:
            if full.startswith(TAGS):
                raise RefConflict(
                    f"tag {full[len(TAGS) :]} already exists on {spec.url} at {old.hex()[:12]}; use --force"
                )
            if not is_ancestor(repo, old, repo.peel(new)):
                raise NonFastForward(
                    f"{full[len(HEADS) :]}: the remote has commits you don't ({old.hex()[:12]}); "
                    "fetch and rebuild on top of them, or push --force"
                )
        updates.append((full, old, new))
    skipped_stages = _stage_updates(repo, remote_refs, updates, force)
    result = TransferResult(spec.url)
    result.skipped = skipped_stages
    if not updates:
        result.up_to_date = True
        result.requests = layout.requests
        result.seconds = time.perf_counter() - t0
        return result
    # What the remote already has: everything below the commits its refs reach (objects go up before
    # refs, so a ref on the remote implies its whole closure is there).
    known = [v for f, v in remote_refs.items() if not f.startswith(STAGES) and repo.store.has(v)]
    remote_tips = {repo.peel(v) for v in known}
    new_commits: list[ObjectId] = []
    tips: list[ObjectId] = []
    for full, _old, new in updates:
        if full.startswith(STAGES):
            new_commits.append(new)  # a stage event: its chain and target commit (mostly there already)
            continue
        tip = new
        obj = repo.read_object(new)
        tag_ids = []
        while isinstance(obj, Tag):
            tag_ids.append(tip)
            tip = obj.target
            obj = repo.read_object(tip)
        new_commits.extend(tag_ids)
        tips.append(tip)
    fresh, boundary = _split_history(repo, tips, remote_tips)
    new_commits.extend(fresh)
    have = set(object_closure(repo, boundary)) if boundary else set()
    candidates = object_closure(repo, new_commits, exclude=have)
    big = {o for o, w in candidates.items() if w and repo.store.stored_size(o) >= LOOSE_MIN_BYTES}
    missing = layout.missing(((o, KIND_DATA if w else KIND_STRUCT) for o, w in candidates.items()), big)
    widths = candidates
    # Objects we skip because the remote has them, outside what its refs reach, may be garbage that
    # a concurrent `mv gc --remote` is about to remove: make them recent first (usually none).
    from ..remote.maintenance import freshen_reused

    absent = {o for o, _k in missing}
    freshen_reused(layout, (o for o in candidates if o not in absent))

    def encode(item: tuple[ObjectId, int]) -> tuple[ObjectId, int, bytes, int]:
        oid, kind = item
        raw = repo.store.read(oid, kind)
        return oid, kind, codec.encode_envelope(raw, kind, max(1, widths[oid]), compress), len(raw)

    raw_total = 0
    sent = 0

    def encoded() -> Generator[tuple[ObjectId, int, bytes], None, None]:
        """Encoded objects in order, ``window`` in flight: workers keep compressing while the
        consumer uploads (a batch-at-a-time map left the pool idle during every write)."""
        nonlocal raw_total, sent
        window = 32
        pool = ThreadPoolExecutor(max(2, min(4, os.cpu_count() or 2)))
        todo = iter(missing)
        pending = deque(pool.submit(encode, item) for item in itertools.islice(todo, window))
        try:
            done = 0
            while pending:
                oid, kind, env, raw_len = pending.popleft().result()
                following = next(todo, None)
                if following is not None:
                    pending.append(pool.submit(encode, following))
                raw_total += raw_len
                sent += len(env)
                done += 1
                if progress:
                    progress("push", done, sent, len(missing))
                yield oid, kind, env
        finally:  # an upload that failed, or Ctrl-C: drop the queued work instead of finishing it
            pool.shutdown(wait=True, cancel_futures=True)

    with contextlib.closing(encoded()) as stream:
        result.objects, result.bytes = layout.upload(stream)
    result.raw_bytes = raw_total
    # Objects are all on the remote: now the refs, each by compare-and-swap.
    for full, old, new in updates:
        _cas_remote_ref(layout, full, old, new, force)
        result.refs[full] = (old.hex() if old else None, new.hex())
        tracking = _tracking_ref(spec, full)
        if tracking is not None:
            repo.refs.update(tracking, new, message=f"push to {spec.name}")
    if set_upstream_branch and head.branch and spec.name != "_url":
        set_upstream(repo.config, head.branch, spec.name, HEADS + head.branch)
    result.requests = layout.requests
    result.seconds = time.perf_counter() - t0
    return result


def _stage_updates(
    repo: Repository, remote_refs: dict[str, ObjectId], updates: list[tuple[str, ObjectId | None, ObjectId]], force: bool
) -> list[str]:
    """Lifecycle history travels with every push: each local ``refs/stages/<version>`` that is
    ahead of the remote's (its event chain contains the remote's event) is sent; a diverged one
    is left alone (reported) unless ``force``."""
    from ..release.stages import is_later_event

    skipped = []
    for full, new in repo.refs.list(STAGES).items():
        full = STAGES + full
        old = remote_refs.get(full)
        if old == new:
            continue
        if old is not None and not force and not (repo.store.has(old) and is_later_event(repo, old, new)):
            skipped.append(full)
            continue
        updates.append((full, old, new))
    return skipped


def _cas_remote_ref(
    layout: RemoteLayout, full: str, old: ObjectId | None, new: ObjectId, force: bool
) -> None:
    data = (new.hex() + "\n").encode()
    backend = layout.backend
    if old is None:
        if not backend.create(full, data):
            raise RefConflict(
                f"{full}: created on the remote by someone else while we pushed; fetch and retry"
            )
        return
    current = backend.read_versioned(full)
    if current is None or current.data.strip() != old.hex().encode():
        raise RefConflict(f"{full}: moved on the remote while we pushed; fetch and retry")
    if not backend.replace(full, data, current.token):
        raise RefConflict(f"{full}: moved on the remote while we pushed; fetch and retry")


# -- fetch ----------------------------------------------------------------------------------------


def fetch_objects(
    repo: Repository,
    layout: RemoteLayout,
    wants: list[ObjectId],
    history: bool = True,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Download the closure of ``wants`` that is missing locally, verified, in one transaction."""
    objects = nbytes = 0
    seen: set[ObjectId] = set()
    # freshen, not has: an object we rely on must look recent to a concurrent gc (ops/gc.py)
    frontier = [w for w in wants if not repo.store.freshen(w)]
    with repo.store.transaction(parents_first=True) as txn:
        while frontier:
            batch = []
            for o in frontier:
                if o not in seen:
                    seen.add(o)
                    batch.append(o)
            nxt: list[ObjectId] = []
            for oid, kind, raw in layout.download(batch):
                txn.put(oid, raw, kind)
                objects += 1
                nbytes += len(raw)
                if progress:
                    progress("fetch", objects, nbytes, None)
                if kind != KIND_STRUCT:
                    continue
                obj = codec.decode_object(raw, oid.hex())
                if isinstance(obj, Commit) and not history:
                    children = [(obj.tree, KIND_STRUCT)]
                else:
                    children = codec.referenced_ids(obj)
                for child, _k in children:
                    if child not in seen and not txn.staged(child) and not repo.store.freshen(child):
                        nxt.append(child)
            frontier = nxt
    return objects, nbytes


def fetch(
    repo: Repository,
    remote: str,
    wants: list[str] | None = None,
    progress: Progress | None = None,
) -> TransferResult:
    """Update ``refs/remotes/<remote>/*`` (and new tags); with full ids, fetch exactly those pins."""
    t0 = time.perf_counter()
    spec = resolve_remote(repo, remote)
    layout = _layout(repo, spec)
    layout.check()
    result = TransferResult(spec.url)
    pins = [w for w in (wants or []) if is_full_hex(w)]
    names = [w for w in (wants or []) if not is_full_hex(w)]
    remote_refs = layout.refs() if (names or not pins) else {}
    selected: dict[str, ObjectId] = {}
    for full, oid in remote_refs.items():
        if full.startswith(STAGES):
            selected[full] = oid  # lifecycle history always comes along
            continue
        short = full[len(HEADS) :] if full.startswith(HEADS) else full[len(TAGS) :]
        if not names or short in names or full in names:
            selected[full] = oid
    for n in names:
        if not any(f.endswith("/" + n) or f == n for f in selected):
            raise RevisionNotFound(f"{n}: no such branch or tag on {spec.url}")
    want_ids = list(selected.values()) + [ObjectId.from_hex(p) for p in pins]
    result.objects, result.raw_bytes = fetch_objects(repo, layout, want_ids, progress=progress)
    result.bytes = layout.bytes_in
    for p in pins:  # the pin must name a commit (or tag) that now verifies locally
        repo.peel(ObjectId.from_hex(p))
    for full, oid in selected.items():
        if full.startswith(STAGES):
            _update_local_stage(repo, full, oid, result)
            continue
        if full.startswith(HEADS):
            local = _tracking_ref(spec, full)
        else:
            local = full
            existing = repo.refs.read(full)
            if existing is not None and existing != oid:
                continue  # never clobber a local tag silently
        if local is None:
            continue
        old = repo.refs.read(local)
        if old != oid:
            repo.refs.update(local, oid, message=f"fetch from {spec.name}")
            result.refs[local] = (old.hex() if old else None, oid.hex())
    result.requests = layout.requests
    result.seconds = time.perf_counter() - t0
    return result


def _update_local_stage(repo: Repository, full: str, oid: ObjectId, result: TransferResult) -> None:
    from ..release.stages import is_later_event

    local = repo.refs.read(full)
    if local == oid:
        return
    if local is not None and not is_later_event(repo, local, oid):
        result.skipped.append(full)  # diverged or behind: never rewrite local lifecycle history
        return
    repo.refs.update(full, oid, expected=local, message="fetch stage history")
    result.refs[full] = (local.hex() if local else None, oid.hex())


def pull(
    repo: Repository, remote: str | None = None, branch: str | None = None, progress: Progress | None = None
) -> TransferResult:
    """Fetch, then fast-forward the current branch and check out the new files."""
    from .checkout import update_worktree

    head = repo.refs.head()
    if head.branch is None:
        raise UsageError("HEAD is detached; switch to a branch to pull")
    if remote is None:
        up = get_upstream(repo.config, head.branch)
        if up is None:
            raise UsageError("no upstream for the current branch; use 'mv pull REMOTE BRANCH'")
        remote, merge = up
        branch = branch or merge[len(HEADS) :]
    branch = branch or head.branch
    res = fetch(repo, remote, [branch], progress)
    tracking = repo.refs.read(f"{REMOTES}{remote}/{branch}")
    if tracking is None:
        raise RevisionNotFound(f"{branch}: not on {remote}")
    if head.id is not None and not is_ancestor(repo, head.id, tracking):
        if is_ancestor(repo, tracking, head.id):
            res.up_to_date = True
            return res
        raise NonFastForward(f"{head.branch} and {remote}/{branch} have diverged; pull only fast-forwards")
    if head.id == tracking:
        res.up_to_date = True
        return res
    update_worktree(repo, tracking)
    repo.refs.update(HEADS + head.branch, tracking, expected=head.id, message=f"pull from {remote}")
    return res


def clone(
    url: str,
    dest: str | os.PathLike[str],
    rev: str | None = None,
    no_checkout: bool = False,
    options: dict[str, object] | None = None,
    progress: Progress | None = None,
) -> tuple[Repository, TransferResult]:
    """A new repository at ``dest`` with ``origin`` = ``url``; on any failure nothing is left behind."""
    from ..remote.config import add_remote
    from .checkout import update_worktree

    target = Path(dest).absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target}: destination exists and is not an empty folder")
    created = not target.exists()
    t0 = time.perf_counter()
    try:
        repo = Repository.init(target)
        spec = add_remote(repo.config, "origin", url, dict(options or {}))
        layout = _layout(repo, spec)
        layout.check()
        remote_refs = layout.refs()
        branch: str | None = None
        if rev is None:
            if not remote_refs:
                raise RevisionNotFound(f"{url}: the remote has no branches")
            branch = (
                "main"
                if HEADS + "main" in remote_refs
                else next((f[len(HEADS) :] for f in remote_refs if f.startswith(HEADS)), None)
            )
            wants = list(remote_refs.values())
            history = True
        elif is_full_hex(rev):
            wants, history = [ObjectId.from_hex(rev)], False
        else:
            match = remote_refs.get(TAGS + rev) or remote_refs.get(HEADS + rev)
            if match is None:
                raise RevisionNotFound(f"{rev}: no such branch or tag on {url}")
            wants, history = [match], False
            if HEADS + rev in remote_refs and TAGS + rev not in remote_refs:
                branch = rev
        result = TransferResult(url)
        result.objects, result.raw_bytes = fetch_objects(
            repo, layout, wants, history=history, progress=progress
        )
        result.bytes = result.raw_bytes
        for full, oid in remote_refs.items():
            if not repo.store.has(oid):
                continue
            if full.startswith((TAGS, STAGES)):
                repo.refs.update(full, oid, message="clone")
            else:
                repo.refs.update(f"{REMOTES}origin/{full[len(HEADS) :]}", oid, message="clone")
        if rev is not None:
            tip = repo.peel(wants[0])
            if branch is None:
                repo.refs.set_head(None, tip)
            if not history:
                (repo.mvdir / "shallow").write_text(tip.hex() + "\n")
        if branch is not None:
            tip = repo.peel(remote_refs[HEADS + branch])
            repo.refs.update(HEADS + branch, tip, expected=None, message="clone")
            repo.refs.set_head(branch)
            set_upstream(repo.config, branch, "origin", HEADS + branch)
        head_id = repo.refs.head().id
        if not no_checkout and head_id is not None:
            update_worktree(repo, head_id, from_empty=True)
        result.requests = layout.requests
        result.seconds = time.perf_counter() - t0
        return repo, result
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for child in target.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()
        raise


__all__ = ["MvError", "NonFastForward", "TransferResult", "clone", "fetch", "pull", "push"]
