"""tag, branch, rev-parse."""

from __future__ import annotations

import click

from .app import Context, emit_json, pass_ctx


@click.command()
@click.argument("name", required=False)
@click.argument("rev", required=False, default="HEAD")
@click.option("-m", "--message", default=None, help="Make an annotated tag (an object with its own id).")
@click.option("-l", "--list", "list_", is_flag=True, help="List tags.")
@click.option("-d", "--delete", is_flag=True, help="Delete tag NAME.")
@click.option("-f", "--force", is_flag=True, help="Move an existing tag (recorded in its stage history).")
@click.option("-s", "--sign", is_flag=True, help="Sign the tag with your Ed25519 key (see `mv key gen`).")
@click.option("--key", "key", type=click.Path(dir_okay=False), default=None, help="Sign with this private key file.")
@click.option(
    "--bump",
    type=click.Choice(["major", "minor", "patch", "auto"]),
    default=None,
    help="Tag [REV] with the next version after the highest one; auto uses `mv bump-suggest`.",
)
@click.option("--dtype-major", is_flag=True, help="With --bump auto: count dtype changes as major.")
@click.option("--sort", "sort", type=click.Choice(["name", "version"]), default="name", help="Order of -l.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def tag(
    ctx: Context,
    name: str | None,
    rev: str,
    message: str | None,
    list_: bool,
    delete: bool,
    force: bool,
    sign: bool,
    key: str | None,
    bump: str | None,
    dtype_major: bool,
    sort: str,
    as_json: bool,
) -> None:
    """Create tag NAME at REV (default HEAD), list tags (-l) or delete one (-d).

    A NAME that looks like a version (v1…, 1…) must be a semantic version (MAJOR.MINOR.PATCH,
    optional -prerelease and +build). Tags are immutable: moving one needs --force. `--bump LEVEL
    [REV]` picks the name; -l --sort=version orders by semver precedence (prereleases first).
    """
    from ..errors import UsageError
    from ..ops import refs_ops
    from ..release import tagging

    repo = ctx.repo()
    if bump is not None:
        if message == "":
            raise UsageError("an annotated tag needs a non-empty message")
        res = tagging.bump_tag(repo, bump, name or "HEAD", message, sign, key, dtype_major)
        if as_json:
            emit_json(
                {
                    "name": res.info.name,
                    "id": res.info.id.hex(),
                    "commit": res.info.commit.hex(),
                    "annotated": res.info.annotated,
                    "signed": res.signed,
                    "reasons": [{"level": lv, "reason": r} for lv, r in res.bump_reasons],
                }
            )
        else:
            click.echo(f"Tagged {res.info.commit.hex()[:12]} as {res.info.name}" + (" (signed)" if res.signed else ""))
            for lv, r in res.bump_reasons:
                click.echo(f"  {lv}: {r}")
        return
    if list_ or name is None:
        tags = tagging.sorted_tags(repo, sort)
        if as_json:
            emit_json(
                [
                    {
                        "name": t.name,
                        "id": t.id.hex(),
                        "commit": t.commit.hex(),
                        "annotated": t.annotated,
                        "message": t.message,
                    }
                    for t in tags
                ]
            )
        else:
            for t in tags:
                click.echo(t.name)
        return
    if delete:
        old = refs_ops.delete_tag(repo, name)
        click.echo(f"Deleted tag {name} (was {old.hex()[:12]})")
        return
    if message == "":
        raise UsageError("an annotated tag needs a non-empty message")
    res = tagging.tag_version(repo, name, rev, message, force, sign, key)
    info = res.info
    if as_json:
        emit_json(
            {
                "name": info.name,
                "id": info.id.hex(),
                "commit": info.commit.hex(),
                "annotated": info.annotated,
                "signed": res.signed,
                "moved_from": res.moved_from,
            }
        )
    else:
        click.echo(
            f"Tagged {info.commit.hex()[:12]} as {name}"
            + (f" (tag object {info.id.hex()[:12]}{', signed' if res.signed else ''})" if info.annotated else "")
            + (f"; moved from {res.moved_from[:12]}" if res.moved_from else "")
        )


@click.command()
@click.argument("name", required=False)
@click.argument("rev", required=False, default="HEAD")
@click.option("-d", "--delete", is_flag=True, help="Delete branch NAME.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def branch(ctx: Context, name: str | None, rev: str, delete: bool, as_json: bool) -> None:
    """List branches, create branch NAME at REV, or delete one (-d)."""
    from ..ops import refs_ops

    repo = ctx.repo()
    if name is None:
        current = repo.refs.head().branch
        branches = refs_ops.list_branches(repo)
        if as_json:
            emit_json([{"name": b.name, "id": b.id.hex(), "current": b.name == current} for b in branches])
        else:
            for b in branches:
                click.echo(f"{'*' if b.name == current else ' '} {b.name}  {b.id.hex()[:12]}")
        return
    if delete:
        old = refs_ops.delete_branch(repo, name)
        click.echo(f"Deleted branch {name} (was {old.hex()[:12]})")
        return
    info = refs_ops.create_branch(repo, name, rev)
    click.echo(f"Created branch {name} at {info.id.hex()[:12]}")


@click.command("rev-parse")
@click.argument("rev")
@click.option("--short", is_flag=True, help="Print a 12-digit prefix instead of the full id.")
@pass_ctx
def rev_parse(ctx: Context, rev: str, short: bool) -> None:
    """Print the full id (the pin) that REV names. REV:PATH names a file's object."""
    from ..revparse import resolve_commit, resolve_object, split_path

    repo = ctx.repo()
    base, path = split_path(rev)
    if path is not None:
        from ..errors import RevisionNotFound

        entry = repo.tree(repo.commit_object(resolve_commit(repo, base)).tree).by_path().get(path)
        if entry is None:
            raise RevisionNotFound(f"{path}: no such file in {base}")
        if entry.id is None:
            from ..ids import hash_bytes

            oid = hash_bytes(entry.data or b"")
        else:
            oid = entry.id
    else:
        oid = resolve_object(repo, rev)
    click.echo(oid.hex()[:12] if short else oid.hex())


COMMANDS = [tag, branch, rev_parse]
