"""remote, push, fetch, pull, clone."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from .app import Context, emit_json, human, pass_ctx


class Progress:
    """A one-line progress meter on stderr (objects, bytes, rate, elapsed), only on a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.shown = False

    def __call__(self, phase: str, objects: int, nbytes: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < 0.1:
            return
        self.last = now
        elapsed = now - self.t0
        rate = nbytes / max(elapsed, 1e-6)
        count = f"{objects}/{total}" if total else f"{objects}"
        eta = f", ETA {elapsed * (total / objects - 1):.0f}s" if total and objects else ""
        sys.stderr.write(f"\r{phase}: {count} objects, {human(nbytes)} ({human(rate)}/s, {elapsed:.0f}s{eta})   ")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def _result_json(res: Any) -> dict[str, Any]:
    return {
        "remote": res.remote,
        "objects": res.objects,
        "bytes": res.bytes,
        "raw_bytes": res.raw_bytes,
        "seconds": round(res.seconds, 4),
        "requests": res.requests,
        "up_to_date": res.up_to_date,
        "refs": {k: {"old": v[0], "new": v[1]} for k, v in res.refs.items()},
    }


def _report(verb: str, res: Any, as_json: bool, quiet: bool) -> None:
    if as_json:
        emit_json(_result_json(res))
        return
    if quiet:
        return
    if res.up_to_date and not res.objects:
        click.echo(f"Everything up to date ({res.remote})")
        return
    ratio = (
        f", {res.raw_bytes / res.bytes:.2f}x compressed" if res.bytes and res.raw_bytes > res.bytes else ""
    )
    click.echo(
        f"{verb} {res.objects} objects, {human(res.bytes)}{ratio} in {res.seconds:.2f}s ({res.remote})"
    )
    for ref, (old, new) in res.refs.items():
        click.echo(f"  {(old or 'new')[:12]}..{new[:12]}  {ref}")


@click.group(invoke_without_command=True)
@click.option("-v", "--verbose", is_flag=True, help="Show URLs and options.")
@click.option("--json", "as_json", is_flag=True, help="Print remotes as JSON.")
@click.pass_context
def remote(click_ctx: click.Context, verbose: bool, as_json: bool) -> None:
    """List remotes, or manage them with `remote add` / `remote remove`."""
    if click_ctx.invoked_subcommand is not None:
        return
    from ..remote.config import list_remotes

    ctx = click_ctx.find_object(Context)
    assert ctx is not None
    specs = list_remotes(ctx.repo().config)
    if as_json:
        emit_json([{"name": s.name, "url": s.url, "options": s.options} for s in specs])
        return
    for s in specs:
        click.echo(f"{s.name}\t{s.url}\t{s.options}" if verbose else s.name)


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="fsspec storage option (endpoint_url=…); never credentials. Repeatable.",
)
@click.option("-f", "--force", is_flag=True, help="Replace an existing remote of that name.")
@pass_ctx
def remote_add(ctx: Context, name: str, url: str, options: tuple[str, ...], force: bool) -> None:
    """Add remote NAME at URL (a folder, file://, s3://, gs://, memory://…)."""
    from ..remote.config import add_remote, parse_options

    add_remote(ctx.repo().config, name, url, parse_options(list(options)), overwrite=force)
    click.echo(f"Added remote {name} -> {url}")


@remote.command("remove")
@click.argument("name")
@pass_ctx
def remote_remove(ctx: Context, name: str) -> None:
    """Remove remote NAME (its objects on the remote are untouched)."""
    from ..remote.config import remove_remote

    remove_remote(ctx.repo().config, name)
    click.echo(f"Removed remote {name}")


_common = [
    click.option("-q", "--quiet", is_flag=True, help="No progress or summary."),
    click.option(
        "--json", "as_json", is_flag=True, help="Print a JSON summary (objects, bytes, seconds, refs)."
    ),
]


def common(f: Any) -> Any:
    for opt in reversed(_common):
        f = opt(f)
    return f


@click.command()
@click.argument("remote_name", required=False, metavar="[REMOTE]")
@click.argument("refs", nargs=-1)
@click.option("-f", "--force", is_flag=True, help="Allow non-fast-forward updates and moving remote tags.")
@click.option(
    "--unsafe", is_flag=True, help="Allow a backend without conditional writes (single writer only)."
)
@click.option(
    "--no-compress", is_flag=True, help="Send objects raw (default: zstd, byte planes for tensors)."
)
@click.option("-u", "--set-upstream", is_flag=True, help="Remember REMOTE as the current branch's upstream.")
@common
@pass_ctx
def push(
    ctx: Context,
    remote_name: str | None,
    refs: tuple[str, ...],
    force: bool,
    unsafe: bool,
    no_compress: bool,
    set_upstream: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Send branches/tags to REMOTE: only objects it lacks travel, then refs move by compare-and-swap.

    With no arguments, pushes the current branch to its upstream.
    """
    from ..ops.sync import push as do_push

    progress = Progress(quiet or as_json)
    try:
        res = do_push(
            ctx.repo(),
            remote_name,
            list(refs) or None,
            force,
            unsafe,
            not no_compress,
            set_upstream,
            progress,
        )
    finally:
        progress.done()
    _report("Pushed", res, as_json, quiet)


@click.command()
@click.argument("remote_name", metavar="REMOTE")
@click.argument("wants", nargs=-1, metavar="[REF|ID]...")
@common
@pass_ctx
def fetch(ctx: Context, remote_name: str, wants: tuple[str, ...], quiet: bool, as_json: bool) -> None:
    """Download refs and missing objects from REMOTE (a full id fetches that pin, no ref needed)."""
    from ..ops.sync import fetch as do_fetch

    progress = Progress(quiet or as_json)
    try:
        res = do_fetch(ctx.repo(), remote_name, list(wants) or None, progress)
    finally:
        progress.done()
    _report("Fetched", res, as_json, quiet)


@click.command()
@click.argument("remote_name", required=False, metavar="[REMOTE]")
@click.argument("branch", required=False)
@common
@pass_ctx
def pull(ctx: Context, remote_name: str | None, branch: str | None, quiet: bool, as_json: bool) -> None:
    """Fetch and fast-forward the current branch (default: from its upstream), updating the files."""
    from ..ops.sync import pull as do_pull

    progress = Progress(quiet or as_json)
    try:
        res = do_pull(ctx.repo(), remote_name, branch, progress)
    finally:
        progress.done()
    _report("Pulled", res, as_json, quiet)


@click.command()
@click.argument("url")
@click.argument("dest", required=False)
@click.option("--rev", default=None, help="Fetch and check out only this branch, tag or full id.")
@click.option("--no-checkout", is_flag=True, help="Fetch only; do not write the files.")
@click.option(
    "--option", "options", multiple=True, metavar="KEY=VALUE", help="fsspec storage option. Repeatable."
)
@common
@pass_ctx
def clone(
    ctx: Context,
    url: str,
    dest: str | None,
    rev: str | None,
    no_checkout: bool,
    options: tuple[str, ...],
    quiet: bool,
    as_json: bool,
) -> None:
    """Create a repository in DEST from the remote at URL, verifying every object."""
    import os

    from ..ops.sync import clone as do_clone
    from ..remote.config import parse_options

    target = dest or os.path.basename(url.rstrip("/").split("://")[-1]) or "model"
    progress = Progress(quiet or as_json)
    try:
        repo, res = do_clone(
            url,
            os.path.join(ctx.cwd or ".", target),
            rev,
            no_checkout,
            parse_options(list(options)),
            progress,
        )
    finally:
        progress.done()
    if as_json:
        out = _result_json(res)
        out["path"] = str(repo.root)
        emit_json(out)
    elif not quiet:
        click.echo(
            f"Cloned {url} into {repo.root}: {res.objects} objects, {human(res.bytes)} in {res.seconds:.2f}s"
        )


COMMANDS = [remote, push, fetch, pull, clone]
