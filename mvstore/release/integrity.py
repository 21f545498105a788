"""Re-hash every object below a commit: what makes a signature over one id mean the whole tree."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..errors import CorruptObject, ObjectNotFound
from ..ids import ObjectId
from ..ingest import _buffer, default_workers
from ..objects import ChunkedBlob, Commit, GGUFManifest, SafetensorsManifest, Tree
from ..repo import Repository


def _data_objects(repo: Repository, tree: Tree, out: dict[ObjectId, int]) -> int:
    """Collect (id → expected size) of every data object of ``tree``; returns structs read."""
    structs = 0
    for e in tree.entries:
        if e.kind == "inline":
            if len(e.data or b"") != e.size:
                raise CorruptObject(f"tree entry {e.path}: inline data does not match its size")
            continue
        assert e.id is not None
        if e.kind == "blob":
            out[e.id] = e.size
            continue
        obj = repo.read_object(e.id)
        structs += 1
        if isinstance(obj, ChunkedBlob):
            chunks = obj.chunks
        elif isinstance(obj, (SafetensorsManifest, GGUFManifest)):
            chunks = tuple(c for t in obj.tensors for c in t.chunks)
        else:
            raise CorruptObject(f"tree entry {e.path}: object {e.id.hex()} is a {type(obj).__name__}")
        if obj.size != e.size:
            raise CorruptObject(f"tree entry {e.path}: manifest size {obj.size} does not match {e.size}")
        for c in chunks:
            if out.setdefault(c.id, c.size) != c.size:
                raise CorruptObject(f"object {c.id.hex()}: listed with two different sizes")
    return structs


def verify_closure(repo: Repository, commit_id: ObjectId, history: bool = False) -> tuple[int, int]:
    """Read and re-hash the commit, its tree, every manifest and every chunk (and, with ``history``,
    every ancestor's). Returns (objects checked, data bytes hashed); raises CorruptObject or
    ObjectNotFound naming the first bad object."""
    data: dict[ObjectId, int] = {}
    structs = 0
    todo, seen = [commit_id], {commit_id}
    trees: set[ObjectId] = set()
    while todo:
        cid = todo.pop()
        c = repo.read_object(cid)
        structs += 1
        if not isinstance(c, Commit):
            raise CorruptObject(f"object {cid.hex()}: expected a commit")
        if c.tree not in trees:
            trees.add(c.tree)
            structs += 1 + _data_objects(repo, repo.tree(c.tree), data)
        if history:
            for p in c.parents:
                if p not in seen:
                    seen.add(p)
                    todo.append(p)

    def check(item: tuple[ObjectId, int]) -> int:
        oid, size = item
        if not repo.store.has(oid):
            raise ObjectNotFound(f"object {oid.hex()} is missing from the store")
        repo.store.read_into(oid, _buffer(size))  # checks the size and the hash
        return size

    with ThreadPoolExecutor(default_workers()) as pool:
        total = sum(pool.map(check, sorted(data.items())))
    return structs + len(data), total
