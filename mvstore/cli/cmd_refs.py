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
@click.option("-f", "--force", is_flag=True, help="Move an existing tag.")
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
    as_json: bool,
) -> None:
    """Create tag NAME at REV (default HEAD), list tags (-l) or delete one (-d)."""
    from ..errors import UsageError
    from ..ops import refs_ops

    repo = ctx.repo()
    if list_ or name is None:
        tags = refs_ops.list_tags(repo)
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
    info = refs_ops.create_tag(repo, name, rev, message, force)
    if as_json:
        emit_json(
            {"name": info.name, "id": info.id.hex(), "commit": info.commit.hex(), "annotated": info.annotated}
        )
    else:
        click.echo(
            f"Tagged {info.commit.hex()[:12]} as {name}"
            + (f" (tag object {info.id.hex()[:12]})" if info.annotated else "")
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
