"""``mv validate``: is this an artifact someone can load? HF-style checks on a revision or a folder.

Errors mean a loader would fail (no weights, a broken index, an unsound safetensors header, a
``config.json`` that is missing or not JSON); warnings mean something a user will miss (no
tokenizer, no model card, pickled weights). The same checks run on a committed revision (from the
store, nothing materialized) and on the work folder (``mv commit --validate``), through one small
:class:`Source` interface.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from ..errors import MvError
from ..formats import gguf as gguf_format
from ..formats.safetensors import parse_header, read_header_length
from ..objects import GGUFManifest, Tree
from ..repo import Repository

Level = Literal["error", "warning"]

EXIT_OK = 0
EXIT_WARNINGS = 3
EXIT_ERRORS = 4
MAX_JSON_BYTES = 64 * 1024 * 1024

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.txt", "vocab.json", "spiece.model")
JSON_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "adapter_config.json",
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_SHARD = re.compile(r"-\d{5}-of-\d{5}\.safetensors$")
_GENERATIVE = re.compile(r"(ForCausalLM|ForConditionalGeneration|LMHeadModel|ForSeq2SeqLM)$")


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    code: str
    path: str | None
    message: str

    def line(self) -> str:
        return f"{self.level}: {self.path + ': ' if self.path else ''}{self.message}"


@dataclass(frozen=True, slots=True)
class ValidationReport:
    target: str  # a commit id, or a folder
    weights: str  # "safetensors" | "sharded" | "adapter" | "gguf" | "pickle" | "none"
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def exit_code(self, strict: bool = False) -> int:
        if self.errors or (strict and self.warnings):
            return EXIT_ERRORS
        return EXIT_WARNINGS if self.warnings else EXIT_OK

    def summary(self) -> str:
        e, w = len(self.errors), len(self.warnings)
        return f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}"

    def raise_for_errors(self, what: str) -> None:
        from .errors import ValidationFailed

        if self.errors:
            first = self.errors[0].line()[len("error: ") :]
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            raise ValidationFailed(f"{what} fails validation: {first}{more}; see 'mv validate'")


class Source(Protocol):
    """What validation needs from an artifact: file names, small reads, parsed weight headers."""

    def paths(self) -> list[str]: ...

    def size(self, path: str) -> int: ...

    def read(self, path: str) -> bytes: ...

    def safetensors(self, path: str) -> dict[str, tuple[str, tuple[int, ...], int]]:
        """name → (dtype, shape, nbytes); raises MvError when the header is unsound."""
        ...

    def gguf(self, path: str) -> gguf_format.GGUFHeader: ...


class TreeSource:
    """A committed revision, read from the store (manifests are re-validated on decode)."""

    def __init__(self, repo: Repository, tree: Tree) -> None:
        self.repo, self.entries = repo, tree.by_path()

    def paths(self) -> list[str]:
        return sorted(self.entries)

    def size(self, path: str) -> int:
        return self.entries[path].size

    def read(self, path: str) -> bytes:
        from ..ops.materialize import read_entry

        return read_entry(self.repo, self.entries[path])

    def safetensors(self, path: str) -> dict[str, tuple[str, tuple[int, ...], int]]:
        e = self.entries[path]
        if e.kind != "safetensors" or e.id is None:
            raise MvError(f"not stored as a safetensors file (kind {e.kind})")
        return {t.name: (t.dtype, t.shape, t.nbytes) for t in self.repo.manifest(e.id).tensors}

    def gguf(self, path: str) -> gguf_format.GGUFHeader:
        e = self.entries[path]
        obj = self.repo.read_object(e.id) if e.kind == "gguf" and e.id is not None else None
        if not isinstance(obj, GGUFManifest):
            raise MvError(f"not stored as a GGUF file (kind {e.kind})")
        return gguf_format.parse_header_bytes(obj.header, obj.size, path)


class FolderSource:
    """The files of a folder (honouring ``.mvignore``), as ``mv commit`` would see them."""

    def __init__(self, root: Path) -> None:
        from ..ignore import Ignore, walk_files

        self.root = root
        self._sizes = {rel: st.st_size for rel, st in walk_files(root, Ignore(root))}

    def paths(self) -> list[str]:
        return sorted(self._sizes)

    def size(self, path: str) -> int:
        return self._sizes[path]

    def read(self, path: str) -> bytes:
        return (self.root / path).read_bytes()

    def safetensors(self, path: str) -> dict[str, tuple[str, tuple[int, ...], int]]:
        with open(self.root / path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            n = read_header_length(f.read(8), size, path)
            header = parse_header(f.read(n), size, path)
        return {t.name: (t.dtype, t.shape, t.nbytes) for t in header.tensors}

    def gguf(self, path: str) -> gguf_format.GGUFHeader:
        fd = os.open(self.root / path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            return gguf_format.parse_header(lambda off, n: os.pread(fd, n, off), size, path)
        finally:
            os.close(fd)


@dataclass
class _Checker:
    src: Source
    findings: list[Finding] = field(default_factory=list)

    def add(self, level: Level, code: str, path: str | None, message: str) -> None:
        self.findings.append(Finding(level, code, path, message))

    def json_doc(self, path: str) -> object | None:
        if self.src.size(path) > MAX_JSON_BYTES:
            self.add("error", "json-too-large", path, f"larger than {MAX_JSON_BYTES >> 20} MiB")
            return None
        try:
            doc = json.loads(self.src.read(path))
        except (ValueError, UnicodeDecodeError) as e:
            self.add("error", "json-invalid", path, f"not valid JSON ({type(e).__name__})")
            return None
        if not isinstance(doc, dict):
            self.add("error", "json-invalid", path, "not a JSON object")
            return None
        return doc


def _problem(e: Exception) -> str:
    return f"cannot read ({e.strerror})" if isinstance(e, OSError) and e.strerror else str(e)


def validate_source(src: Source, target: str) -> ValidationReport:
    c = _Checker(src)
    paths = src.paths()
    present = set(paths)
    st_files = [p for p in paths if p.lower().endswith(".safetensors")]
    gguf_files = [p for p in paths if p.lower().endswith(".gguf")]
    pickles = [p for p in paths if p.lower().endswith(PICKLE_SUFFIXES) and _is_weight_pickle(p)]
    adapters = [p for p in st_files + pickles if os.path.basename(p).startswith("adapter_model.")]
    full = [p for p in st_files + pickles + gguf_files if p not in adapters]
    indexes = [p for p in paths if p.endswith(".safetensors.index.json")]

    # Every weight file must parse: the checks below rely on sound headers.
    tables: dict[str, dict[str, tuple[str, tuple[int, ...], int]]] = {}
    for p in st_files:
        try:
            tables[p] = src.safetensors(p)
        except (MvError, OSError) as e:
            c.add("error", "safetensors-invalid", p, _problem(e))
    gguf_headers: dict[str, gguf_format.GGUFHeader] = {}
    for p in gguf_files:
        try:
            gguf_headers[p] = src.gguf(p)
        except (MvError, OSError) as e:
            c.add("error", "gguf-invalid", p, _problem(e))

    weights = "none"
    if indexes:
        weights = "sharded"
    elif any(p in st_files for p in full):
        weights = "safetensors"
    elif gguf_files:
        weights = "gguf"
    elif any(p in pickles for p in full):
        weights = "pickle"
    elif adapters:
        weights = "adapter"
    if weights == "none":
        c.add(
            "error",
            "weights-missing",
            None,
            "no weights found (model.safetensors, shards + index, "
            "adapter_model.safetensors, a .gguf file or pytorch_model.bin)",
        )

    # config.json: required by every transformers loader; adapters and GGUF carry their own.
    only_gguf = bool(gguf_files) and not any(p not in gguf_files for p in full)
    for name in JSON_FILES:
        if name in present:
            doc = c.json_doc(name)
            if name == "config.json" and isinstance(doc, dict):
                archs = doc.get("architectures") or []
                generative = doc.get("is_encoder_decoder") is True or any(
                    isinstance(a, str) and _GENERATIVE.search(a) for a in archs
                )
                if generative and "generation_config.json" not in present:
                    c.add(
                        "warning",
                        "generation-config-missing",
                        None,
                        "generation_config.json is missing (generation defaults will be guessed)",
                    )
    if "config.json" not in present and full and not only_gguf:
        c.add("error", "config-missing", None, "config.json is missing")
    if adapters and "adapter_config.json" not in present:
        c.add("error", "adapter-config-missing", None, "adapter weights without adapter_config.json")

    _check_indexes(c, indexes, present, tables)
    indexed = {
        os.path.join(os.path.dirname(i), s) for i in indexes for s in _shards_of(c, i, quiet=True).values()
    }
    for p in st_files:
        if _SHARD.search(p) and p not in indexed:
            c.add("error", "shard-without-index", p, "a shard that no *.safetensors.index.json lists")

    has_tokenizer = any(os.path.basename(p) in TOKENIZER_FILES or p.endswith(".tiktoken") for p in paths)
    gguf_tokenizer = any(
        any(k == "tokenizer.ggml.model" for k, _v in h.metadata) for h in gguf_headers.values()
    )
    if not has_tokenizer and not gguf_tokenizer and weights not in ("adapter", "none"):
        c.add(
            "warning", "tokenizer-missing", None, "no tokenizer (tokenizer.json, tokenizer.model, vocab.txt…)"
        )
    if "README.md" not in present:
        c.add("warning", "model-card-missing", None, "no model card (README.md)")
    for p in pickles:
        c.add(
            "warning",
            "pickle-weights",
            p,
            f"pickled weights can run code when loaded; convert them with 'mv convert REV {p}'",
        )
    return ValidationReport(target, weights, tuple(c.findings))


def _is_weight_pickle(path: str) -> bool:
    """``.pt/.pth/.ckpt`` always; ``.bin`` only with a weights name (``training_args.bin`` is not)."""
    base = os.path.basename(path).lower()
    if not base.endswith(".bin"):
        return True
    return base.startswith(("pytorch_model", "adapter_model", "model"))


def _shards_of(c: _Checker, index: str, quiet: bool = False) -> dict[str, str]:
    """weight_map of an index (tensor → shard file name), or {} when it is unusable."""
    if quiet:
        try:
            doc = json.loads(c.src.read(index)) if c.src.size(index) <= MAX_JSON_BYTES else None
        except (ValueError, UnicodeDecodeError, OSError, MvError):
            return {}
    else:
        doc = c.json_doc(index)
    wm = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(wm, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in wm.items()):
        if not quiet and doc is not None:
            c.add("error", "index-invalid", index, "weight_map must map tensor names to shard file names")
        return {}
    return {str(k): str(v) for k, v in wm.items()}


def _check_indexes(
    c: _Checker,
    indexes: list[str],
    present: set[str],
    tables: dict[str, dict[str, tuple[str, tuple[int, ...], int]]],
) -> None:
    for index in indexes:
        wm = _shards_of(c, index)
        if not wm:
            continue
        folder = os.path.dirname(index)
        shards = {s: os.path.join(folder, s) for s in sorted(set(wm.values()))}
        missing = [s for s, full in shards.items() if full not in present]
        for s in missing:
            c.add("error", "index-missing-shard", index, f"names shard {s!r}, which is not in the artifact")
        owner: dict[str, str] = {}
        for s, full in shards.items():
            for name in tables.get(full, {}):
                if name in owner:
                    c.add(
                        "error",
                        "index-duplicate-tensor",
                        index,
                        f"tensor {name!r} is in both {owner[name]} and {s}",
                    )
                owner.setdefault(name, s)
        bad = [
            (n, s)
            for n, s in wm.items()
            if s not in missing and shards[s] in tables and n not in tables[shards[s]]
        ]
        for n, s in bad[:20]:
            c.add("error", "index-missing-tensor", index, f"maps {n!r} to {s}, which has no such tensor")
        if len(bad) > 20:
            c.add(
                "error",
                "index-missing-tensor",
                index,
                f"…and {len(bad) - 20} more tensors missing from their shards",
            )
        unlisted = [n for n in owner if n not in wm]
        if unlisted:
            c.add(
                "warning",
                "index-unlisted-tensor",
                index,
                f"{len(unlisted)} tensors in the shards are not in weight_map (e.g. {unlisted[0]!r})",
            )
        doc = json.loads(c.src.read(index))
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        total = meta.get("total_size") if isinstance(meta, dict) else None
        if isinstance(total, int) and not missing and all(full in tables for full in shards.values()):
            actual = sum(tables[shards[s]][n][2] for n, s in wm.items() if n in tables[shards[s]])
            if actual != total:
                c.add(
                    "warning",
                    "index-total-size",
                    index,
                    f"metadata.total_size is {total}, the indexed tensors hold {actual} bytes",
                )


def validate_rev(repo: Repository, rev: str = "HEAD") -> ValidationReport:
    from ..revparse import resolve_commit

    cid = resolve_commit(repo, rev)
    tree = repo.tree(repo.commit_object(cid).tree)
    return validate_source(TreeSource(repo, tree), cid.hex())


def validate_folder(root: str | os.PathLike[str]) -> ValidationReport:
    path = Path(root).resolve()
    return validate_source(FolderSource(path), str(path))
