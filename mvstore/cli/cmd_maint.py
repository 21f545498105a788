"""verify, gc, repair: keeping a repository (and its remotes) sound."""

from __future__ import annotations

from typing import Any

import click

from ..errors import MvError
from .app import Context, emit_json, human, pass_ctx


def _could_not_run(e: BaseException) -> MvError:
    from ..ops.verify import CouldNotVerify

    if isinstance(e, MvError) and e.exit_code == 2:
        return e
    if isinstance(e, OSError) and not isinstance(e, MvError):
        where = f": {e.filename}" if e.filename else ""
        return CouldNotVerify(f"{e.strerror or e}{where}")
    return CouldNotVerify(str(e))


def _print_report(report: Any, quiet: bool) -> None:
    if report.signer:
        click.echo(f"Good signature on tag {report.tag} by {report.signer_name} ({report.signer[:24]}…)")
    for p in report.problems:
        click.echo(f"{p.code}: {p.line()}")
    if quiet:
        return
    for w in report.warnings:
        click.echo(f"warning: {w}")
    if report.dangling:
        shown = report.dangling[:10]
        click.echo(f"{len(report.dangling)} dangling (unreachable) objects; 'mv gc' removes old ones:")
        for h, kind in shown:
            click.echo(f"  dangling {kind} {h}")
        if len(report.dangling) > len(shown):
            click.echo(f"  … and {len(report.dangling) - len(shown)} more (--json lists all)")
    what = f"below {report.commit.hex()[:12]}" if report.commit is not None else f"in {report.scope}"
    hashed = f", {human(report.hashed_bytes)} of data re-hashed" if report.hashed_bytes else ""
    verdict = "match their ids" if report.ok else f"{len(report.problems)} problems"
    click.echo(
        f"{report.objects} objects {what} ({report.commits} commits, {report.structs} structures, "
        f"{report.data_objects} data objects{hashed}): {verdict} ({report.seconds:.2f}s)"
    )


@click.command()
@click.argument("rev", required=False)
@click.option("--full", is_flag=True, help="Also re-hash every data object (tensor chunks, blobs).")
@click.option("--remote", "remote_name", metavar="NAME", help="Verify remote NAME (or a URL) where it is.")
@click.option("--repair", "do_repair", is_flag=True, help="Fix what can be fixed (same as `mv repair`).")
@click.option(
    "--keyring", multiple=True, type=click.Path(dir_okay=False), help="File of trusted public keys (tags)."
)
@click.option("--unsigned", is_flag=True, help="Accept a tag without a signature (check object hashes only).")
@click.option("--history", is_flag=True, help="With REV: also re-hash the history's data (same as --full).")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def verify(
    ctx: Context,
    rev: str | None,
    full: bool,
    remote_name: str | None,
    do_repair: bool,
    keyring: tuple[str, ...],
    unsigned: bool,
    history: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Check that every reachable object is present, well-formed and hashes to its id.

    Without REV: every ref, HEAD and reflog entry, the whole history below them, and a list of
    dangling objects. With REV: what REV reaches (itself and its history). A tag REV is checked as
    a release: its Ed25519 signature must verify against a trusted key (unless --unsigned), and the
    files of the tagged commit are re-hashed. Trusted keys come from [trusted-keys] in .mv/config
    (`mv key trust`), the file named by trust.keyring or $MV_TRUSTED_KEYS, and --keyring FILE.

    By default data objects are checked for presence, envelope, kind and size (every read
    re-hashes anyway); --full re-hashes all of them. With --remote NAME the remote is verified in
    place: structures are downloaded once, data objects are checked in the pack indexes and
    listings (--full downloads each once); a tag REV's signature is checked against the local
    trusted keys, as for a local tag.

    Exit codes: 0 clean, 1 problems found (listed on stdout, the first also on stderr),
    2 could not run (not a repository, unknown revision, unreachable remote).
    """
    from ..ops.verify import verify as do_verify

    if do_repair:
        if rev is not None:
            raise click.UsageError("--repair checks the whole repository; drop REV")
        _run_repair(ctx, remote_name, full, as_json)
        return
    try:
        repo = ctx.repo()
    except MvError as e:
        raise _could_not_run(e) from None
    try:
        if remote_name is not None:
            from ..ops.sync import resolve_remote
            from ..ops.verify import verify_remote
            from ..remote.fsspec_backend import open_backend
            from ..remote.layout import RemoteLayout

            spec = resolve_remote(repo, remote_name)
            layout = RemoteLayout(open_backend(spec.url, spec.options), None)
            report = verify_remote(layout, rev, full or history, repo, list(keyring), not unsigned)
        else:
            report = do_verify(repo, rev, full or history, list(keyring), not unsigned, history)
    except MvError as e:
        if e.exit_code == 2 or not _is_damage(e):
            raise _could_not_run(e) from None
        raise
    except OSError as e:
        raise _could_not_run(e) from None
    if as_json:
        emit_json(report.as_json())
    else:
        _print_report(report, quiet)
    report.raise_if_problems()


def _is_damage(e: MvError) -> bool:
    from ..errors import CorruptObject, ObjectNotFound

    return isinstance(e, (CorruptObject, ObjectNotFound))


@click.command()
@click.option(
    "--prune",
    default="2.weeks.ago",
    show_default=True,
    metavar="DATE",
    help="Remove unreachable objects older than DATE (2.weeks.ago, 3.days.ago, 1.hour.ago, now, never, "
    "2024-01-31). 'now' is unsafe while another mv process writes.",
)
@click.option(
    "--expire-reflog",
    default="90.days.ago",
    show_default=True,
    metavar="DATE",
    help="Drop reflog entries older than DATE first ('never' keeps them all).",
)
@click.option("-n", "--dry-run", is_flag=True, help="List what would be removed; change nothing.")
@click.option("--remote", "remote_name", metavar="NAME", help="Collect garbage on remote NAME (or a URL).")
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def gc(
    ctx: Context,
    prune: str,
    expire_reflog: str,
    dry_run: bool,
    remote_name: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Remove unreachable objects and leftover temp files older than a grace period.

    Roots are every ref (branches, tags, remote-tracking refs, stages), HEAD and the reflogs. An
    unreachable object newer than --prune is kept with everything it references, so a commit or a
    push that is still running (objects written, ref not yet moved) never loses an object — unless
    it has been running for longer than the grace period. gc refuses to run on a damaged repository
    (see `mv verify`, `mv repair`).

    With --remote: unreachable loose objects, and packs none of whose objects is reachable, older
    than --prune (by the storage's last-modified time). Partly live packs are kept as they are.
    """
    from ..ops.gc import gc as do_gc

    repo = ctx.repo()
    if remote_name is not None:
        from ..ops.gc import gc_remote
        from ..ops.sync import _layout, resolve_remote

        spec = resolve_remote(repo, remote_name)
        rres = gc_remote(repo, _layout(repo, spec), prune, dry_run)
        if as_json:
            emit_json(rres.as_json())
            return
        if dry_run and not quiet:
            for name, size in rres.removed:
                click.echo(f"would remove {name} ({human(size)})")
        if not quiet:
            verb = "Would remove" if dry_run else "Removed"
            click.echo(
                f"{verb} {rres.removed_objects} unreachable objects in {len(rres.removed)} files "
                f"({rres.removed_packs} packs), {human(rres.removed_bytes)} from {rres.remote}; kept "
                f"{rres.kept_recent} recent unreachable files ({human(rres.kept_recent_bytes)}) and "
                f"{rres.kept_partly_live_packs} partly live packs ({rres.requests} requests, {rres.seconds:.2f}s)"
            )
        return
    res = do_gc(repo, prune, dry_run, expire_reflog)
    if as_json:
        emit_json(res.as_json())
        return
    if dry_run and not quiet:
        for h, size in res.removed:
            click.echo(f"would remove {h} ({human(size)})")
        for path, size in res.tmp_files:
            click.echo(f"would remove {path} ({human(size)})")
    if quiet:
        return
    verb = "Would remove" if dry_run else "Removed"
    extra = f"; put back {res.restored} objects" if res.restored else ""
    reflog = f"; expired {res.expired_reflog_entries} reflog entries" if res.expired_reflog_entries else ""
    click.echo(
        f"{verb} {res.removed_objects} unreachable objects ({human(res.removed_bytes)}) and "
        f"{res.removed_tmp} temporary files ({human(res.removed_tmp_bytes)}); kept {res.kept_recent} "
        f"unreachable objects newer than {prune} ({human(res.kept_recent_bytes)}){extra}{reflog} "
        f"({res.seconds:.2f}s)"
    )


def _run_repair(ctx: Context, remote_name: str | None, full: bool, as_json: bool) -> None:
    from ..ops.repair import repair as do_repair
    from ..ops.verify import VerifyFailed

    res = do_repair(ctx.repo(), remote_name, full)
    if as_json:
        emit_json(res.as_json())
    else:
        if res.restored_leftovers:
            click.echo(f"put back {res.restored_leftovers} objects left aside by an interrupted gc")
        for ref, h in res.refs_restored:
            click.echo(f"restored {ref} -> {h[:12]} from its reflog")
        for h in res.quarantined:
            click.echo(f"quarantined corrupt object {h} in .mv/quarantine/")
        if res.fetched:
            click.echo(
                f"fetched {res.fetched} objects ({human(res.fetched_bytes)}) from {res.remote}, all verified"
            )
        if not res.before.problems and not res.refs_restored and not res.restored_leftovers:
            click.echo("nothing to repair: every reachable object is present and intact")
        for p in res.after.problems:
            click.echo(f"{p.code}: {p.line()}")
    if not res.ok:
        hint = "" if res.remote else " (no remote to fetch from: pass --remote NAME)"
        raise VerifyFailed(f"still damaged after repair: {res.after.summary()}{hint}")
    if not as_json and res.before.problems:
        click.echo(f"repaired: {len(res.before.problems)} problems fixed; verify is clean")


@click.command()
@click.option("--remote", "remote_name", metavar="NAME", help="Fetch missing or corrupt objects from NAME.")
@click.option("--full", is_flag=True, help="Re-hash every data object to find corrupt chunks too.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def repair(ctx: Context, remote_name: str | None, full: bool, as_json: bool) -> None:
    """Re-fetch missing or corrupt objects from a remote that has them, then verify again.

    Also puts back objects an interrupted gc left aside and restores unreadable refs from their
    reflogs. Corrupt object files are moved to .mv/quarantine/. The remote defaults to the current
    branch's upstream, or the only remote. Exit 0 when the repository verifies clean afterwards.
    """
    _run_repair(ctx, remote_name, full, as_json)


COMMANDS = [verify, gc, repair]
