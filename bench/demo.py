"""End-to-end demo on real weights: three fine-tuned MiniLM checkpoints through the `mv` CLI.

    python -m bench.demo [--workdir DIR]

Every step is a real `mv` command in a subprocess; the demo ends with byte-for-byte checks of
checkout, export and load_state_dict against the original checkpoint files.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.data import make_series

MV = str(Path(sys.executable).with_name("mv"))


def sh(*args: str, cwd: Path) -> str:
    print(f"\n$ mv {' '.join(args)}", flush=True)
    res = subprocess.run([MV, *args], cwd=cwd, text=True, capture_output=True)
    out = res.stdout.rstrip()
    if out:
        print(out)
    if res.returncode != 0:
        print(res.stderr, file=sys.stderr)
        raise SystemExit(f"demo failed at: mv {' '.join(args)}")
    return out


def replace_contents(work: Path, src: Path) -> None:
    """What a training loop does: overwrite the weights (and config) in the model folder."""
    for p in src.rglob("*"):
        if p.is_file():
            dest = work / p.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dest)


def same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file() and ".mv" not in p.parts)
    files_b = sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    if files_a != files_b:
        return False
    return all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="mvstore-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"demo folder: {root}")
    print("fine-tuning MiniLM (top layer only) for 3 checkpoints on the CPU…", flush=True)
    ckpts = make_series("frozen", root / "checkpoints", n=3, steps=2, seed=0)
    work = root / "my-model"
    replace_contents(work, ckpts[0])

    sh("init", cwd=work)
    sh("commit", "-m", "step 0: base model", "--meta", "step=0", cwd=work)
    replace_contents(work, ckpts[1])
    sh("status", cwd=work)
    sh("commit", "-m", "step 2", "--meta", "step=2", "--meta", "loss=0.0071", cwd=work)
    replace_contents(work, ckpts[2])
    sh("commit", "-m", "step 4", "--meta", "step=4", "--meta", "loss=0.0064", cwd=work)
    sh("log", "--oneline", cwd=work)
    sh("diff", "HEAD~1", "HEAD", "--stats", cwd=work)
    sh("stats", cwd=work)
    sh("tag", "v1.0.0", "HEAD~2", cwd=work)
    pin = sh("rev-parse", "v1.0.0", cwd=work)
    sh("checkout", "v1.0.0", cwd=work)
    assert same_tree(work, ckpts[0]), "checkout v1.0.0 is not byte-identical to checkpoint 0"
    print("✓ checkout v1.0.0 is byte-for-byte identical to checkpoint 0")
    sh("switch", "main", cwd=work)
    assert same_tree(work, ckpts[2]), "main is not byte-identical to checkpoint 2"
    print("✓ main is byte-for-byte identical to checkpoint 2")
    export = root / "export-v1"
    sh("export", pin[:12], str(export), cwd=work)
    assert same_tree(export, ckpts[0]), "export is not byte-identical"
    print("✓ export of the pin is byte-for-byte identical to checkpoint 0")

    from safetensors.torch import load_file

    import mvstore

    sd = mvstore.Repo(work).load_state_dict(pin)
    ref = load_file(ckpts[0] / "model.safetensors")
    assert sd.keys() == ref.keys() and all(sd[k].equal(ref[k]) and sd[k].dtype == ref[k].dtype for k in ref)
    print(f"✓ load_state_dict({pin[:12]}…) equals safetensors.load_file on the original ({len(sd)} tensors)")

    # Release it: validate, sign with a fresh Ed25519 key, verify, promote, ship with checksums.
    keys = root / "keys"  # outside the repository: a private key must never be committed
    sh("validate", "v1.0.0", cwd=work)
    sh("key", "gen", "--dir", str(keys), "--trust", "demo-releaser", cwd=work)
    sh("tag", "-s", "--force", "--key", str(keys / "default.key"), "-m", "v1.0.0: base model", "v1.0.0", "HEAD~2", cwd=work)
    sh("verify", "v1.0.0", cwd=work)
    sh("stage", "v1.0.0", "candidate", "-m", "byte-exact checks passed", cwd=work)
    sh("stage", "v1.0.0", "release", "-m", "validated and signed", cwd=work)
    sh("stage", "-l", cwd=work)
    sh("bump-suggest", "v1.0.0", "main", cwd=work)
    release = root / "release-v1.0.0"
    sh("export", "v1.0.0", str(release), "--manifest", cwd=work)
    sh("verify-export", str(release), cwd=work)
    print("✓ v1.0.0 is a signed, validated release; its export matches MANIFEST.sha256")
    print(f"\nDEMO OK — repository at {work}")
    if args.workdir is None and not os.environ.get("MV_DEMO_KEEP"):
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
