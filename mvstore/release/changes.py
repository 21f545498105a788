"""What changed between two versions, at tensor level: the suggested semver bump and the changelog.

Tensors are compared through manifests only (chunk ids), across every safetensors and GGUF file:
shards of one model are one group (moving a tensor between shards is no change), adapters are
their own group, each GGUF file is its own group. Bump rules (the issue's, with reasons):

* **major**: a tensor added or removed, a shape changed, a tokenizer file changed — code that
  loaded the old version may break; a dtype change only with ``dtype_major`` (quantizing is
  usually a drop-in replacement, so by default it is minor);
* **minor**: weights changed (fine-tuning, re-quantization), opaque weight files changed;
* **patch**: only adapter files, configs, metadata or docs changed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from ..ids import ObjectId
from ..objects import Commit, GGUFManifest, MetaValue, SafetensorsManifest, TensorEntry, Tree, TreeEntry
from ..repo import Repository
from ..revparse import resolve_commit

Bump = Literal["major", "minor", "patch", "none"]
_ORDER = ("none", "patch", "minor", "major")
TOKENIZER_NAMES = frozenset(
    {
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "spiece.model",
        "sentencepiece.bpe.model",
    }
)
WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".msgpack")


@dataclass(frozen=True, slots=True)
class TensorRef:
    """A tensor as a manifest describes it: enough to compare without reading data."""

    group: str
    file: str
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    key: tuple[object, ...]  # content key: equal ⇔ same bytes
    entry: TensorEntry | None  # safetensors tensors, for numeric comparison


def _group(path: str, kind: str) -> str:
    if os.path.basename(path).startswith("adapter_model"):
        return "adapter"
    return path if kind == "gguf" else "weights"


def tensor_table(repo: Repository, tree: Tree) -> dict[tuple[str, str], TensorRef]:
    """(group, tensor name) → tensor, over every safetensors and GGUF file of a tree."""
    out: dict[tuple[str, str], TensorRef] = {}
    for e in tree.entries:
        if e.id is None or e.kind not in ("safetensors", "gguf"):
            continue
        g = _group(e.path, e.kind)
        obj = repo.read_object(e.id)
        if isinstance(obj, SafetensorsManifest):
            for t in obj.tensors:
                out[(g, t.name)] = TensorRef(
                    g, e.path, t.name, t.dtype, t.shape, t.nbytes, t.content_key(), t
                )
        elif isinstance(obj, GGUFManifest):
            for gt in obj.tensors:
                from ..formats.gguf import GGML_TYPES

                dtype = GGML_TYPES[gt.ggml_type][0]
                out[(g, gt.name)] = TensorRef(
                    g, e.path, gt.name, dtype, gt.dims, gt.nbytes, gt.content_key(), None
                )
    return out


@dataclass
class TensorDelta:
    name: str
    file: str
    status: str  # added | removed | changed | reshaped | retyped
    dtype: str
    shape: tuple[int, ...]
    old_dtype: str | None = None
    old_shape: tuple[int, ...] | None = None
    rel_change: float | None = None


@dataclass
class FileDelta:
    path: str
    status: str  # added | removed | modified
    old_size: int | None
    new_size: int | None


@dataclass
class Suggestion:
    bump: Bump
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (level, why)

    def add(self, level: Bump, why: str) -> None:
        self.reasons.append((level, why))
        if _ORDER.index(level) > _ORDER.index(self.bump):
            self.bump = level


@dataclass
class Comparison:
    old: ObjectId
    new: ObjectId
    files: list[FileDelta]
    tensors: list[TensorDelta]
    suggestion: Suggestion


def _file_deltas(a: Tree, b: Tree) -> list[FileDelta]:
    ea, eb = a.by_path(), b.by_path()
    out = []
    for path in sorted(set(ea) | set(eb)):
        x, y = ea.get(path), eb.get(path)
        if x is not None and y is not None and x.same_content(y):
            continue
        status = "added" if x is None else "removed" if y is None else "modified"
        out.append(FileDelta(path, status, x.size if x else None, y.size if y else None))
    return out


def _names(items: list[TensorDelta], n: int = 3) -> str:
    shown = ", ".join(t.name for t in items[:n])
    return shown + (f", … ({len(items)} in all)" if len(items) > n else "")


def compare(
    repo: Repository, old_rev: str, new_rev: str, dtype_major: bool = False, numeric: bool = False
) -> Comparison:
    """Files, tensors and the suggested bump from ``old_rev`` to ``new_rev``."""
    old_id, new_id = resolve_commit(repo, old_rev), resolve_commit(repo, new_rev)
    ta = repo.tree(repo.commit_object(old_id).tree)
    tb = repo.tree(repo.commit_object(new_id).tree)
    files = _file_deltas(ta, tb)
    xa, xb = tensor_table(repo, ta), tensor_table(repo, tb)
    tensors: list[TensorDelta] = []
    for k in sorted(set(xa) | set(xb), key=lambda k: (k[0], k[1])):
        a, b = xa.get(k), xb.get(k)
        if a is not None and b is not None and a.key == b.key:
            continue
        if a is None:
            assert b is not None
            tensors.append(TensorDelta(b.name, b.file, "added", b.dtype, b.shape))
        elif b is None:
            tensors.append(TensorDelta(a.name, a.file, "removed", a.dtype, a.shape))
        else:
            status = "reshaped" if a.shape != b.shape else "retyped" if a.dtype != b.dtype else "changed"
            td = TensorDelta(b.name, b.file, status, b.dtype, b.shape)
            if status != "changed":
                td.old_dtype, td.old_shape = a.dtype, a.shape
            elif numeric and a.entry is not None and b.entry is not None:
                from ..ops.tensors import numeric_change

                td.rel_change, _ = numeric_change(repo, a.entry, b.entry)
            tensors.append(td)
    return Comparison(old_id, new_id, files, tensors, suggest(files, tensors, xa, xb, dtype_major))


def suggest(
    files: list[FileDelta],
    tensors: list[TensorDelta],
    old: dict[tuple[str, str], TensorRef],
    new: dict[tuple[str, str], TensorRef],
    dtype_major: bool = False,
) -> Suggestion:
    s = Suggestion("none")
    adapter_files = {t.file for t in list(old.values()) + list(new.values()) if t.group == "adapter"}

    def is_adapter(t: TensorDelta) -> bool:
        return t.file in adapter_files

    base = [t for t in tensors if not is_adapter(t)]
    by = {
        st: [t for t in base if t.status == st]
        for st in ("added", "removed", "reshaped", "retyped", "changed")
    }
    if by["added"]:
        s.add("major", f"{len(by['added'])} tensors added: {_names(by['added'])}")
    if by["removed"]:
        s.add("major", f"{len(by['removed'])} tensors removed: {_names(by['removed'])}")
    if by["reshaped"]:
        s.add("major", f"{len(by['reshaped'])} tensors changed shape: {_names(by['reshaped'])}")
    if by["retyped"]:
        level: Bump = "major" if dtype_major else "minor"
        note = (
            ""
            if dtype_major
            else " (quantization/precision change; counted as major only with --dtype-major)"
        )
        s.add(level, f"{len(by['retyped'])} tensors changed dtype: {_names(by['retyped'])}{note}")
    if by["changed"]:
        s.add("minor", f"{len(by['changed'])} tensors changed values: {_names(by['changed'])}")
    tok = [f for f in files if os.path.basename(f.path) in TOKENIZER_NAMES]
    if tok:
        s.add("major", "tokenizer files changed: " + ", ".join(f.path for f in tok))
    tensor_files = {t.file for t in list(old.values()) + list(new.values())}
    opaque = [
        f
        for f in files
        if f.path.lower().endswith(WEIGHT_SUFFIXES)
        and f.path not in tensor_files
        and not os.path.basename(f.path).startswith("adapter_model")
    ]
    if opaque:
        s.add("minor", "opaque weight files changed: " + ", ".join(f.path for f in opaque))
    adapter = [t for t in tensors if is_adapter(t)]
    adapter_other = [
        f for f in files if os.path.basename(f.path).startswith("adapter_") and f.path not in adapter_files
    ]
    if adapter or adapter_other:
        what = f"{len(adapter)} adapter tensors" if adapter else "adapter files"
        s.add("patch", f"{what} changed")
    touched = {t.file for t in tensors}
    relaid = [
        f for f in files if f.path in tensor_files and f.path not in touched and f.path not in adapter_files
    ]
    if relaid:
        s.add(
            "patch",
            "weight files rewritten without tensor changes (header metadata or sharding): "
            + ", ".join(f.path for f in relaid[:6]),
        )
    handled = {f.path for f in tok + opaque + adapter_other} | tensor_files
    rest = [f for f in files if f.path not in handled]
    if rest:
        s.add(
            "patch",
            "config/metadata files changed: "
            + ", ".join(f.path for f in rest[:6])
            + (" …" if len(rest) > 6 else ""),
        )
    return s


# -- changelog -------------------------------------------------------------------------------------


@dataclass
class Changelog:
    old_rev: str
    new_rev: str
    comparison: Comparison
    commits: list[tuple[ObjectId, Commit]]
    meta_changes: list[tuple[str, MetaValue | None, MetaValue | None]]
    config_changes: list[tuple[str, Any, Any]]


def commits_between(repo: Repository, old: ObjectId, new: ObjectId) -> list[tuple[ObjectId, Commit]]:
    """Commits reachable from ``new`` but not from ``old``, newest first."""
    from ..ops.history import walk

    excluded = {oid for oid, _c in walk(repo, old)}
    return [(oid, c) for oid, c in walk(repo, new) if oid not in excluded]


def _config(repo: Repository, tree: Tree) -> dict[str, Any]:
    e: TreeEntry | None = tree.by_path().get("config.json")
    if e is None or e.size > 16 * 1024 * 1024:
        return {}
    from ..ops.materialize import read_entry

    try:
        doc = json.loads(read_entry(repo, e))
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def changelog(repo: Repository, old_rev: str, new_rev: str, dtype_major: bool = False) -> Changelog:
    cmp = compare(repo, old_rev, new_rev, dtype_major, numeric=True)
    ca, cb = repo.commit_object(cmp.old), repo.commit_object(cmp.new)
    ma, mb = ca.meta_dict(), cb.meta_dict()
    meta = [
        (k, ma.get(k), mb.get(k))
        for k in sorted(set(ma) | set(mb))
        if ma.get(k) != mb.get(k) or (k in ma) != (k in mb)
    ]
    ja, jb = _config(repo, repo.tree(ca.tree)), _config(repo, repo.tree(cb.tree))
    cfg = [(k, ja.get(k), jb.get(k)) for k in sorted(set(ja) | set(jb)) if ja.get(k) != jb.get(k)]
    return Changelog(old_rev, new_rev, cmp, commits_between(repo, cmp.old, cmp.new), meta, cfg)


def _fmt(v: object) -> str:
    return "—" if v is None else json.dumps(v) if not isinstance(v, str) else v


def changelog_markdown(cl: Changelog) -> str:
    c = cl.comparison
    out = [f"# Changes from {cl.old_rev} to {cl.new_rev}", ""]
    out.append(f"Suggested bump: **{c.suggestion.bump}**")
    out += [f"- {level}: {why}" for level, why in c.suggestion.reasons] + [""]
    out.append(f"## Commits ({len(cl.commits)})")
    out += [
        f"- `{oid.hex()[:12]}` {(cm.message.splitlines() or [''])[0]} — {cm.author}" for oid, cm in cl.commits
    ]
    out += ["", f"## Tensors ({len(c.tensors)} changed)"]
    for t in c.tensors:
        shape = "x".join(map(str, t.shape)) or "scalar"
        line = f"- {t.status} `{t.name}` {t.dtype}[{shape}]"
        if t.old_dtype is not None:
            line += f" (was {t.old_dtype}[{'x'.join(map(str, t.old_shape or ())) or 'scalar'}])"
        if t.rel_change is not None:
            line += f", relative change {t.rel_change:.3e}"
        out.append(line + f" in {t.file}")
    out += ["", f"## Files ({len(c.files)} changed)"]
    for f in c.files:
        out.append(f"- {f.status} `{f.path}` ({_fmt(f.old_size)} → {_fmt(f.new_size)} bytes)")
    if cl.meta_changes:
        out += ["", "## Metadata"]
        out += [f"- `{k}`: {_fmt(a)} → {_fmt(b)}" for k, a, b in cl.meta_changes]
    if cl.config_changes:
        out += ["", "## config.json"]
        out += [f"- `{k}`: {_fmt(a)} → {_fmt(b)}" for k, a, b in cl.config_changes]
    return "\n".join(out) + "\n"


def changelog_json(cl: Changelog) -> dict[str, Any]:
    c = cl.comparison
    return {
        "from": {"rev": cl.old_rev, "commit": c.old.hex()},
        "to": {"rev": cl.new_rev, "commit": c.new.hex()},
        "suggested_bump": c.suggestion.bump,
        "reasons": [{"level": lv, "reason": why} for lv, why in c.suggestion.reasons],
        "commits": [
            {
                "id": oid.hex(),
                "message": cm.message,
                "author": cm.author,
                "time": cm.time,
                "meta": cm.meta_dict(),
            }
            for oid, cm in cl.commits
        ],
        "tensors": [
            {
                "name": t.name,
                "file": t.file,
                "status": t.status,
                "dtype": t.dtype,
                "shape": list(t.shape),
                "old_dtype": t.old_dtype,
                "old_shape": list(t.old_shape) if t.old_shape is not None else None,
                "rel_change": t.rel_change,
            }
            for t in c.tensors
        ],
        "files": [
            {"path": f.path, "status": f.status, "old_size": f.old_size, "new_size": f.new_size}
            for f in c.files
        ],
        "meta": [{"key": k, "old": a, "new": b} for k, a, b in cl.meta_changes],
        "config": [{"key": k, "old": a, "new": b} for k, a, b in cl.config_changes],
    }
