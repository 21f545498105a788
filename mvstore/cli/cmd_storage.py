"""repack."""

from __future__ import annotations

import click

from .app import Context, emit_json, human, pass_ctx


@click.command()
@click.option("--depth", type=click.IntRange(0, 16), default=4, show_default=True,
              help="Longest delta chain: any checkpoint loads with at most this many extra reads.")
@click.option("--no-delta", is_flag=True, help="Compress only (zstd over byte planes); no XOR deltas.")
@click.option("--dry-run", is_flag=True, help="Report what repacking would save; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def repack(ctx: Context, depth: int, no_delta: bool, dry_run: bool, as_json: bool) -> None:
    """Store history compactly: zstd over byte planes, and XOR deltas between checkpoints.

    Ids never change and every file still rebuilds byte for byte; older checkpoints are stored as
    deltas against newer ones, so the newest loads fastest. Loads of repacked objects decode
    instead of mapping the file directly, so keep hot checkpoints unpacked (see README).
    """
    from ..ops.repack import repack as do_repack

    res = do_repack(ctx.repo(), depth=depth, delta=not no_delta and depth > 0, dry_run=dry_run)
    if as_json:
        emit_json({"objects": res.objects, "rewritten": res.rewritten, "deltas": res.deltas,
                   "bytes_before": res.bytes_before, "bytes_after": res.bytes_after,
                   "ratio": round(res.ratio, 4), "seconds": round(res.seconds, 3), "dry_run": dry_run})
        return
    verb = "Would store" if dry_run else "Stored"
    click.echo(f"{verb} {res.objects} tensor chunks in {human(res.bytes_after)} instead of {human(res.bytes_before)} "
               f"({res.ratio:.2f}x; {res.deltas} deltas, {res.rewritten} rewritten) in {res.seconds:.1f}s")


COMMANDS = [repack]
