"""Releasing: stage, changelog, bump-suggest, validate, verify-export, key, convert (verify: cmd_maint)."""

from __future__ import annotations

import datetime as dt
import os

import click

from .app import Context, emit_json, human, pass_ctx


def _date(t: int | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else "-"


@click.command()
@click.argument("version", required=False)
@click.argument("stage_name", metavar="STAGE", required=False)
@click.option("-m", "--message", "why", default="", help="Why (recorded with who and when).")
@click.option("-l", "--list", "list_", is_flag=True, help="Current stage of every version.")
@click.option("--history", is_flag=True, help="Every stage change of VERSION (or of all versions).")
@click.option("-f", "--force", is_flag=True, help="Allow moving back (e.g. release → candidate).")
@click.option("--no-validate", is_flag=True, help="Promote to release without running mv validate.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def stage(
    ctx: Context,
    version: str | None,
    stage_name: str | None,
    why: str,
    list_: bool,
    history: bool,
    force: bool,
    no_validate: bool,
    as_json: bool,
) -> None:
    """Move VERSION to STAGE: checkpoint → candidate → release → deprecated → archived.

    Stage changes are recorded as history (who, when, why) under refs/stages/VERSION and travel
    with push/pull; tags are never changed. Promoting to release first runs `mv validate` on the
    version and refuses if it finds errors (exit 4). Without STAGE, prints VERSION's stage.
    """
    from ..release import stages

    repo = ctx.repo()
    if history:
        versions = [version] if version else [v.version for v in stages.list_stages(repo)]
        rows = [(oid, ev) for v in versions for oid, ev in stages.history(repo, v)]
        if as_json:
            emit_json(
                [
                    {
                        "event": oid.hex(),
                        "version": ev.version,
                        "stage": ev.stage,
                        "commit": ev.target.hex(),
                        "who": ev.who,
                        "time": ev.time,
                        "why": ev.why,
                        "previous": ev.previous.hex() if ev.previous else None,
                    }
                    for oid, ev in rows
                ]
            )
            return
        for _oid, ev in rows:
            click.echo(
                f"{ev.version:<14} {ev.stage:<11} {_date(ev.time)}  {ev.who}  {ev.target.hex()[:12]}"
                + (f"  {ev.why}" if ev.why else "")
            )
        return
    if list_ or version is None or stage_name is None:
        rows2 = stages.list_stages(repo) if version is None else [stages.current(repo, version)]
        if as_json:
            emit_json(
                [
                    {
                        "version": v.version,
                        "stage": v.stage,
                        "commit": v.commit.hex() if v.commit else None,
                        "event": v.event.hex() if v.event else None,
                        "who": v.who,
                        "time": v.time,
                        "why": v.why,
                    }
                    for v in rows2
                ]
            )
            return
        for v in rows2:
            commit = v.commit.hex()[:12] if v.commit else "(no tag)"
            click.echo(
                f"{v.version:<14} {v.stage:<11} {commit}  {_date(v.time)}" + (f"  {v.why}" if v.why else "")
            )
        return
    res = stages.set_stage(repo, version, stage_name, why, force, validate=not no_validate)
    if as_json:
        emit_json(
            {
                "version": res.version,
                "from": res.old_stage,
                "stage": res.stage,
                "commit": res.commit.hex(),
                "event": res.event.hex(),
                "validation_warnings": res.warnings,
            }
        )
        return
    note = f" (validation passed with {res.warnings} warnings)" if res.warnings else ""
    click.echo(f"{res.version}: {res.old_stage} → {res.stage} at {res.commit.hex()[:12]}{note}")


@click.command()
@click.argument("old")
@click.argument("new", default="HEAD")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", help="Markdown or JSON.")
@click.option("--dtype-major", is_flag=True, help="Count dtype changes (quantization) as major.")
@pass_ctx
def changelog(ctx: Context, old: str, new: str, fmt: str, dtype_major: bool) -> None:
    """Changes from OLD to NEW (default HEAD): commits, tensors, files, metadata, suggested bump."""
    from ..release.changes import changelog as make
    from ..release.changes import changelog_json, changelog_markdown

    cl = make(ctx.repo(), old, new, dtype_major)
    if fmt == "json":
        emit_json(changelog_json(cl))
    else:
        click.echo(changelog_markdown(cl), nl=False)


@click.command("bump-suggest")
@click.argument("old")
@click.argument("new", default="HEAD")
@click.option("--dtype-major", is_flag=True, help="Count dtype changes (quantization) as major.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def bump_suggest(ctx: Context, old: str, new: str, dtype_major: bool, as_json: bool) -> None:
    """Suggest major / minor / patch for NEW relative to OLD, with the reasons.

    Tensors added, removed or reshaped, or tokenizer changes: major. Weights changed (fine-tune,
    re-quantization): minor. Only adapters, configs or metadata: patch. Override by choosing the
    level yourself (`mv tag --bump LEVEL`), or let `mv tag --bump auto` apply this suggestion.
    """
    from ..release.changes import compare

    s = compare(ctx.repo(), old, new, dtype_major).suggestion
    if as_json:
        emit_json({"bump": s.bump, "reasons": [{"level": lv, "reason": r} for lv, r in s.reasons]})
        return
    click.echo(s.bump)
    for lv, r in s.reasons:
        click.echo(f"  {lv}: {r}")


@click.command()
@click.argument("rev", default="HEAD")
@click.option("--folder", "folder", is_flag=True, help="Check the work folder as it is, not a revision.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 4).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@pass_ctx
def validate(ctx: Context, rev: str, folder: bool, strict: bool, as_json: bool) -> None:
    """Check that REV (default HEAD) is a loadable HF-style model artifact.

    Errors: no config.json (or adapter_config.json for adapters), no weights, an index that names
    a missing shard or tensor, an unsound safetensors or GGUF header, a config that is not JSON.
    Warnings: no tokenizer, no README.md model card, no generation_config.json for a generative
    model, pickled weights.

    Exit codes: 0 valid; 3 valid with warnings; 4 errors found (or warnings with --strict);
    1 the check could not run (not a repository, unknown revision); 2 bad usage.
    """
    from ..release.validate import validate_folder, validate_rev

    repo = ctx.repo()
    report = validate_folder(repo.root) if folder else validate_rev(repo, rev)
    if as_json:
        emit_json(
            {
                "target": report.target,
                "weights": report.weights,
                "ok": report.ok,
                "errors": len(report.errors),
                "warnings": len(report.warnings),
                "findings": [
                    {"level": f.level, "code": f.code, "path": f.path, "message": f.message}
                    for f in report.findings
                ],
            }
        )
    else:
        for f in report.findings:
            click.echo(f.line())
        what = "folder" if folder else report.target[:12]
        click.echo(f"{what}: {report.weights} weights; {report.summary()}")
    code = report.exit_code(strict)
    if code == 4:
        prog = click.get_current_context().find_root().info_name or "mv"
        click.echo(f"{prog}: error: validation failed: {report.summary()}", err=True)
    raise click.exceptions.Exit(code)


@click.command("verify-export")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--allow-extra", is_flag=True, help="Do not fail on files the manifest does not list.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_export(dest: str, allow_extra: bool, as_json: bool) -> None:
    """Check folder DEST against its MANIFEST.sha256 (written by `mv export --manifest`)."""
    from ..release.checksums import verify_export as check
    from ..release.errors import ChecksumMismatch

    res = check(dest, allow_extra)
    if as_json:
        emit_json(
            {
                "folder": str(res.folder),
                "rev": res.rev,
                "ok": res.ok,
                "files": res.files,
                "bytes": res.bytes,
                "problems": [{"path": p, "problem": w} for p, w in res.problems],
            }
        )
    if not res.ok:
        shown = ", ".join(f"{p} ({w})" for p, w in res.problems[:3])
        more = f" and {len(res.problems) - 3} more" if len(res.problems) > 3 else ""
        raise ChecksumMismatch(f"{dest} does not match its MANIFEST.sha256: {shown}{more}")
    if not as_json:
        click.echo(f"{dest}: {res.files} files ({human(res.bytes)}) match MANIFEST.sha256")


@click.group()
def key() -> None:
    """Ed25519 signing keys: generate one, trust public keys, list them."""


@key.command("gen")
@click.option("--name", default="default", show_default=True, help="Key file name (NAME.key, NAME.pub).")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to write it (default $MV_KEY_DIR or ~/.config/mvstore/keys); never inside a repository.",
)
@click.option(
    "--trust",
    "trust_as",
    metavar="NAME",
    default=None,
    help="Also trust the public key in this repo as NAME.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def key_gen(ctx: Context, name: str, directory: str | None, trust_as: str | None, as_json: bool) -> None:
    """Create a private key (mode 0600, outside the repository) and print its public key."""
    from ..release.signing import generate_key, trust_key

    repo = ctx.repo() if trust_as else None  # fail before creating a key we could not trust
    info = generate_key(name, os.path.join(ctx.cwd or ".", directory) if directory else None)
    if repo is not None and trust_as:
        trust_key(repo, info.public_key, trust_as)
    if as_json:
        emit_json({"private_key": str(info.path), "public_key": info.public_key, "trusted_as": trust_as})
        return
    click.echo(f"private key: {info.path} (keep it secret; mode 0600)")
    click.echo(f"public key:  {info.public_key}")
    if trust_as:
        click.echo(f"trusted in this repository as {trust_as}")


@key.command("trust")
@click.argument("public_key")
@click.argument("name")
@pass_ctx
def key_trust(ctx: Context, public_key: str, name: str) -> None:
    """Trust PUBLIC_KEY (ed25519:<hex>) as NAME for `mv verify` in this repository."""
    from ..release.signing import trust_key

    text = trust_key(ctx.repo(), public_key, name)
    click.echo(f"trusted {name}: {text}")


@key.command("untrust")
@click.argument("name")
@pass_ctx
def key_untrust(ctx: Context, name: str) -> None:
    """Stop trusting the key named NAME."""
    from ..release.signing import untrust_key

    untrust_key(ctx.repo(), name)
    click.echo(f"no longer trusted: {name}")


@key.command("list")
@click.option("--keyring", multiple=True, type=click.Path(dir_okay=False), help="Also list a keyring file.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def key_list(ctx: Context, keyring: tuple[str, ...], as_json: bool) -> None:
    """List the public keys this repository trusts."""
    from ..release.signing import public_key_text, trusted_keys

    keys = trusted_keys(ctx.repo(), list(keyring))
    if as_json:
        emit_json([{"name": n, "public_key": public_key_text(k)} for k, n in keys.items()])
        return
    for k, n in keys.items():
        click.echo(f"{n:<20} {public_key_text(k)}")


@click.command()
@click.argument("rev")
@click.argument("path")
@click.option(
    "-o", "--output", "out", default=None, help="Name of the safetensors file (default: HF naming)."
)
@click.option("-m", "--message", default=None, help="Commit message.")
@click.option("--keep", is_flag=True, help="Keep the pickle in the tree next to the safetensors file.")
@click.option("-f", "--force", is_flag=True, help="Replace an existing file of the output name.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def convert(
    ctx: Context,
    rev: str,
    path: str,
    out: str | None,
    message: str | None,
    keep: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Convert the pickle REV:PATH (pytorch_model.bin, .pt) to safetensors and commit it on HEAD.

    Loads with torch.load(weights_only=True) only, and only on torch >= 2.10 (weights_only was
    bypassed by CVE-2025-32434 and CVE-2026-24747 before that). Anything that is not a flat dict
    of tensors is refused and nothing changes. The work folder follows the new commit.
    """
    from ..release.convert import convert_rev

    res = convert_rev(ctx.repo(), rev, path, out, message, keep, force)
    if as_json:
        emit_json(
            {
                "commit": res.commit.hex(),
                "source": res.source,
                "dest": res.dest,
                "tensors": res.tensors,
                "bytes": res.bytes,
            }
        )
        return
    click.echo(
        f"[{res.commit.hex()[:12]}] converted {res.source} → {res.dest}: {res.tensors} tensors, {human(res.bytes)}"
    )


# `mv verify` (signed tags included) lives in cmd_maint: one command checks signatures and objects.
COMMANDS = [stage, changelog, bump_suggest, validate, verify_export, key, convert]
