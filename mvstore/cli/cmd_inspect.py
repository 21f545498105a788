"""ls, cat."""

from __future__ import annotations

import sys

import click

from .app import Context, emit_json, human, pass_ctx


@click.command("ls")
@click.argument("spec", default="HEAD", metavar="REV[:PATH]")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def ls_(ctx: Context, spec: str, as_json: bool) -> None:
    """List the files of a revision; REV:FILE (.safetensors or .gguf) lists its tensors (dtype, shape, size)."""
    from ..ops.inspect import ls

    res = ls(ctx.repo(), spec)
    if as_json:
        emit_json(
            {
                "files": [
                    {
                        "path": e.path,
                        "kind": e.kind,
                        "size": e.size,
                        "id": e.id.hex() if e.id else None,
                        "executable": e.executable,
                    }
                    for e in res.files
                ],
                "tensors": [
                    {
                        "name": t.name,
                        "dtype": t.dtype,
                        "shape": list(t.shape),
                        "nbytes": t.nbytes,
                        "chunks": [c.id.hex() for c in t.chunks],
                        "inline": t.data is not None,
                    }
                    for t in res.tensors
                ],
            }
        )
        return
    if res.tensors:
        for t in res.tensors:
            shape = "x".join(map(str, t.shape)) or "scalar"
            click.echo(f"{t.dtype:<8} {shape:<20} {human(t.nbytes):>10}  {t.name}")
        return
    for e in res.files:
        click.echo(f"{e.kind:<12} {human(e.size):>10}  {e.path}")


@click.command()
@click.argument("spec", metavar="REV:PATH")
@pass_ctx
def cat(ctx: Context, spec: str) -> None:
    """Write the bytes of one file of a revision to stdout."""
    from ..ops.inspect import cat as do_cat

    data = do_cat(ctx.repo(), spec)
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


COMMANDS = [ls_, cat]
