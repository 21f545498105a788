"""init, commit, status, checkout, switch, export."""

from __future__ import annotations

import os
import time

import click

from .app import Context, emit_json, human, pass_ctx
from .fast import render_status


@click.command()
@click.argument("path", default=".", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init(path: str, as_json: bool) -> None:
    """Create an empty repository (.mv/) in PATH (default: here)."""
    from ..repo import Repository

    repo = Repository.init(path)
    if as_json:
        emit_json({"path": str(repo.root), "branch": "main"})
    else:
        click.echo(f"Initialized empty mvstore repository in {repo.mvdir}")


@click.command()
@click.option("-m", "--message", default="", help="Commit message.")
@click.option(
    "--meta",
    "meta",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata to record (step, loss, dataset hash…); numbers stay numbers. Repeatable.",
)
@click.option("--allow-empty", is_flag=True, help="Commit even if nothing changed.")
@click.option("--validate", "validate", is_flag=True, help="Run `mv validate` on the folder first; refuse on errors.")
@click.option(
    "--convert-pickles",
    is_flag=True,
    help="Commit weight pickles (pytorch_model.bin, .pt) as safetensors (see `mv convert`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.argument("paths", nargs=-1, type=click.Path())
@pass_ctx
def commit(
    ctx: Context,
    message: str,
    meta: tuple[str, ...],
    allow_empty: bool,
    validate: bool,
    convert_pickles: bool,
    as_json: bool,
    paths: tuple[str, ...],
) -> None:
    """Snapshot the model folder (or only PATHS, keeping the rest from the parent commit)."""
    from ..ops.commit import commit as do_commit
    from ..ops.commit import parse_meta
    from ..ops.snapshot import normalize_pathspecs

    repo = ctx.repo()
    parsed = parse_meta(list(meta))
    scope = normalize_pathspecs(repo, list(paths) or None, ctx.cwd)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    if validate:
        from ..release.validate import validate_folder

        report = validate_folder(repo.root)
        report.raise_for_errors("the folder")
        for f in report.warnings:
            click.echo(f"warning: {f.line()[len('warning: ') :]}", err=True)
    if convert_pickles:
        from ..release.convert import commit_converting_pickles

        res, converted = commit_converting_pickles(repo, message, scope, parsed, allow_empty)
        for c in converted:
            click.echo(f"converted {c.source} → {c.dest} ({c.tensors} tensors)", err=True)
    else:
        res = do_commit(repo, message, scope, parsed, allow_empty)
    secs = time.perf_counter() - t0
    if as_json:
        emit_json(
            {
                "id": res.id.hex(),
                "branch": res.branch,
                "parent": res.parent.hex() if res.parent else None,
                "files": res.files,
                "hashed_files": res.hashed_files,
                "hashed_bytes": res.hashed_bytes,
                "new_objects": res.new_objects,
                "new_bytes": res.new_bytes,
                "logical_bytes": res.logical_bytes,
                "seconds": round(secs, 4),
            }
        )
        return
    where = res.branch or "detached HEAD"
    first = message.splitlines()[0] if message else ""
    click.echo(f"[{where} {res.id.hex()[:12]}] {first}")
    click.echo(
        f" {res.files} files, {human(res.logical_bytes)}; stored {res.new_objects} new objects "
        f"({human(res.new_bytes)}) in {secs:.2f}s"
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-s", "--short", is_flag=True, help="One line per changed file.")
@pass_ctx
def status(ctx: Context, as_json: bool, short: bool) -> None:
    """Show files that differ from HEAD (unchanged files are not re-hashed)."""
    from ..ops.status import status as do_status

    res = do_status(ctx.repo())
    out = render_status(
        res.branch, res.head.hex() if res.head else None, res.added, res.modified, res.deleted, as_json, short
    )
    click.echo(out)


@click.command()
@click.argument("rev")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-f", "--force", is_flag=True, help="Overwrite uncommitted changes.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def checkout(ctx: Context, rev: str, paths: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Make the folder (or only PATHS) match REV, byte for byte.

    Refuses to overwrite or delete uncommitted changes unless --force. With a branch name, HEAD
    follows that branch; with any other revision HEAD is detached.
    """
    from ..ops.checkout import checkout as do_checkout
    from ..ops.snapshot import normalize_pathspecs

    repo = ctx.repo()
    scope = normalize_pathspecs(repo, list(paths) or None, ctx.cwd)  # type: ignore[arg-type]
    res = do_checkout(repo, rev, scope, force)
    if as_json:
        emit_json(
            {
                "id": res.id.hex(),
                "branch": res.branch,
                "written": res.written,
                "deleted": res.deleted,
                "written_bytes": res.written_bytes,
            }
        )
        return
    where = f"branch {res.branch}" if res.branch and not paths else res.id.hex()[:12]
    click.echo(
        f"Checked out {where}: {res.written} files written ({human(res.written_bytes)}), {res.deleted} removed"
    )


@click.command()
@click.argument("branch")
@click.option("-c", "--create", is_flag=True, help="Create BRANCH at HEAD first.")
@click.option("-f", "--force", is_flag=True, help="Overwrite uncommitted changes.")
@pass_ctx
def switch(ctx: Context, branch: str, create: bool, force: bool) -> None:
    """Switch to BRANCH (check out its files and make it current)."""
    from ..ops.checkout import switch as do_switch

    res = do_switch(ctx.repo(), branch, create, force)
    click.echo(
        f"Switched to branch {branch} ({res.id.hex()[:12]}): {res.written} files written, {res.deleted} removed"
    )


@click.command()
@click.argument("rev")
@click.argument("dest", type=click.Path())
@click.option(
    "--manifest", is_flag=True, help="Also write MANIFEST.sha256 (sha256 + size per file; see verify-export)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def export(ctx: Context, rev: str, dest: str, manifest: bool, as_json: bool) -> None:
    """Write the files of REV into DEST (a new or empty folder), byte for byte."""
    from ..ops.checkout import export as do_export

    t0 = time.perf_counter()
    res = do_export(ctx.repo(), rev, os.path.join(ctx.cwd or ".", dest), manifest)
    secs = time.perf_counter() - t0
    if as_json:
        emit_json(
            {
                "id": res.id.hex(),
                "dest": str(res.dest),
                "files": res.files,
                "bytes": res.bytes,
                "seconds": round(secs, 4),
            }
        )
        return
    click.echo(
        f"Exported {res.id.hex()[:12]} to {res.dest}: {res.files} files, {human(res.bytes)} in {secs:.2f}s"
    )


COMMANDS = [init, commit, status, checkout, switch, export]
