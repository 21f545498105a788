"""log, show, diff, stats."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from .app import Context, emit_json, human, pass_ctx


def _when(t: int, tz: int) -> str:
    zone = dt.timezone(dt.timedelta(minutes=tz))
    return dt.datetime.fromtimestamp(t, zone).strftime("%a %b %d %H:%M:%S %Y %z")


def _commit_json(oid: Any, c: Any, refs: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "id": oid.hex(),
        "tree": c.tree.hex(),
        "parents": [p.hex() for p in c.parents],
        "author": c.author,
        "time": c.time,
        "tz_offset": c.tz_offset,
        "message": c.message,
        "meta": c.meta_dict(),
        "refs": list(refs),
    }


def _print_commit(oid: Any, c: Any, refs: tuple[str, ...], oneline: bool) -> None:
    deco = f" ({', '.join(refs)})" if refs else ""
    first = c.message.splitlines()[0] if c.message else ""
    if oneline:
        click.echo(f"{oid.hex()[:12]}{deco} {first}")
        return
    click.echo(f"commit {oid.hex()}{deco}")
    click.echo(f"Author: {c.author}")
    click.echo(f"Date:   {_when(c.time, c.tz_offset)}")
    if c.meta:
        click.echo("Meta:   " + " ".join(f"{k}={v}" for k, v in c.meta))
    click.echo("")
    for line in (c.message or "(no message)").splitlines():
        click.echo(f"    {line}")
    click.echo("")


@click.command()
@click.argument("rev", default="HEAD")
@click.option("-n", "--max-count", "limit", type=click.IntRange(min=0), help="Show at most N commits.")
@click.option("--oneline", is_flag=True, help="One line per commit.")
@click.option("--json", "as_json", is_flag=True, help="Print commits as a JSON list.")
@click.option("--stage", default=None, metavar="STAGE", help="Only commits of versions now at STAGE (e.g. release).")
@pass_ctx
def log(ctx: Context, rev: str, limit: int | None, oneline: bool, as_json: bool, stage: str | None) -> None:
    """Show the history leading to REV (default HEAD), newest first."""
    from ..ops.history import log as do_log

    entries = do_log(ctx.repo(), rev, limit, stage)
    if as_json:
        emit_json([_commit_json(e.id, e.commit, e.refs) for e in entries])
        return
    for e in entries:
        _print_commit(e.id, e.commit, e.refs, oneline)


def _diff_json(res: Any) -> dict[str, Any]:
    return {
        "old": res.old.hex() if res.old else None,
        "new": res.new.hex() if res.new else None,
        "files": [
            {
                "path": f.path,
                "status": f.status,
                "old_size": f.old_size,
                "new_size": f.new_size,
                "tensors": [
                    {
                        "name": t.name,
                        "status": t.status,
                        "dtype": t.dtype,
                        "shape": list(t.shape),
                        "old_dtype": t.old_dtype,
                        "old_shape": list(t.old_shape) if t.old_shape else None,
                        "nbytes": t.nbytes,
                        "changed_bytes": t.changed_bytes,
                        "rel_change": t.rel_change,
                        "max_abs_diff": t.max_abs_diff,
                    }
                    for t in f.tensors
                ],
            }
            for f in res.files
        ],
    }


def _print_diff(res: Any, stats: bool) -> None:
    codes = {"added": "A", "removed": "D", "modified": "M"}
    tcodes = {"added": "+", "removed": "-", "changed": "~", "retyped": "!"}
    if not res.files:
        click.echo("no differences")
        return
    for f in res.files:
        sizes = f"{human(f.old_size) if f.old_size is not None else '-'} -> {human(f.new_size) if f.new_size is not None else '-'}"
        click.echo(f"{codes[f.status]} {f.path}  ({sizes})")
        for t in f.tensors:
            shape = "x".join(map(str, t.shape)) or "scalar"
            line = f"    {tcodes[t.status]} {t.name}  {t.dtype}[{shape}]"
            if t.status == "retyped":
                line += f"  (was {t.old_dtype}[{'x'.join(map(str, t.old_shape or ()))}])"
            if t.status in ("changed", "retyped", "added"):
                line += f"  {human(t.changed_bytes)} new"
            if stats and t.rel_change is not None:
                line += f"  rel {t.rel_change:.3e}  max|d| {t.max_abs_diff:.3e}"
            click.echo(line)
    n = sum(len(f.tensors) for f in res.files)
    if n:
        click.echo(f"{len(res.files)} files changed, {n} tensors differ")


@click.command()
@click.argument("revs", nargs=-1)
@click.option(
    "--stats", is_flag=True, help="Read changed tensors and report relative change and max |difference|."
)
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
@pass_ctx
def diff(ctx: Context, revs: tuple[str, ...], stats: bool, as_json: bool) -> None:
    """Files and tensors that differ: HEAD vs the folder, REV vs the folder, or REV vs REV."""
    from ..errors import UsageError
    from ..ops.diff import diff as do_diff

    if len(revs) > 2:
        raise UsageError("diff takes at most two revisions")
    a = revs[0] if revs else None
    b = revs[1] if len(revs) > 1 else None
    res = do_diff(ctx.repo(), a, b, stats)
    if as_json:
        emit_json(_diff_json(res))
    else:
        _print_diff(res, stats)


@click.command()
@click.argument("rev", default="HEAD")
@click.option("--json", "as_json", is_flag=True, help="Print the commit and its changes as JSON.")
@pass_ctx
def show(ctx: Context, rev: str, as_json: bool) -> None:
    """Show a commit (or annotated tag) and what changed in it."""
    from ..objects import Tag
    from ..ops.diff import diff as do_diff
    from ..revparse import resolve_commit, resolve_object

    repo = ctx.repo()
    obj_id = resolve_object(repo, rev)
    obj = repo.read_object(obj_id)
    cid = resolve_commit(repo, rev)
    c = repo.commit_object(cid)
    res = do_diff(repo, c.parents[0].hex(), cid.hex()) if c.parents else None
    if as_json:
        out: dict[str, Any] = {"commit": _commit_json(cid, c)}
        if isinstance(obj, Tag):
            out["tag"] = {
                "id": obj_id.hex(),
                "name": obj.name,
                "tagger": obj.tagger,
                "time": obj.time,
                "message": obj.message,
            }
        out["diff"] = _diff_json(res) if res else None
        emit_json(out)
        return
    if isinstance(obj, Tag):
        click.echo(f"tag {obj.name} ({obj_id.hex()})")
        click.echo(f"Tagger: {obj.tagger}")
        click.echo(f"Date:   {_when(obj.time, obj.tz_offset)}\n")
        click.echo(f"    {obj.message}\n")
    _print_commit(cid, c, (), False)
    if res is not None:
        _print_diff(res, False)
    else:
        for e in repo.tree(c.tree).entries:
            click.echo(f"A {e.path}  ({human(e.size)})")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@pass_ctx
def stats(ctx: Context, as_json: bool) -> None:
    """Logical bytes (every commit counted in full) against bytes actually stored: the dedup ratio."""
    from ..ops.stats import stats as do_stats

    s = do_stats(ctx.repo())
    if as_json:
        emit_json(
            {
                "commits": s.commits,
                "objects": s.objects,
                "stored_bytes": s.stored_bytes,
                "logical_bytes": s.logical_bytes,
                "head_bytes": s.head_bytes,
                "dedup_ratio": round(s.dedup_ratio, 4),
            }
        )
        return
    click.echo(f"commits:        {s.commits}")
    click.echo(f"objects:        {s.objects}")
    click.echo(f"logical bytes:  {human(s.logical_bytes)} ({s.logical_bytes})")
    click.echo(f"stored bytes:   {human(s.stored_bytes)} ({s.stored_bytes})")
    click.echo(f"dedup ratio:    {s.dedup_ratio:.2f}x")


COMMANDS = [log, show, diff, stats]
