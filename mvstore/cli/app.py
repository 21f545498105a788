"""The click group and the one place where errors become a message and an exit code."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

import click

from ..errors import MvError

EXIT_INTERNAL = 70


class Context:
    """Per-invocation state: where to look for the repository."""

    def __init__(self, cwd: str | None) -> None:
        self.cwd = cwd

    def repo(self) -> Any:
        from ..repo import Repository

        return Repository.find(self.cwd)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-C", "cwd", metavar="PATH", help="Run as if mv was started in PATH.")
@click.version_option(package_name="mvstore", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, cwd: str | None) -> None:
    """Git for model weights: commit, diff, tag and check out model folders.

    Safetensors files are split per tensor and every chunk is stored once by its blake3 hash;
    every file is rebuilt byte for byte. Run `mv COMMAND --help` for details.
    """
    if cwd is not None:
        if not os.path.isdir(cwd):
            raise MvError(f"-C {cwd}: no such folder")
        os.chdir(cwd)
    ctx.obj = Context(os.getcwd())


def _finite(value: Any) -> Any:
    """Strict JSON has no NaN/Infinity: non-finite numbers become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def emit_json(value: Any) -> None:
    click.echo(json.dumps(_finite(value), indent=2, sort_keys=False, default=str, allow_nan=False))


def human(n: int | float) -> str:
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


@click.command("help")
@click.argument("command", required=False)
@click.pass_context
def help_(ctx: click.Context, command: str | None) -> None:
    """Show help for mv, or for COMMAND."""
    parent = ctx.parent
    assert parent is not None
    if command is None:
        click.echo(cli.get_help(parent))
        return
    sub = cli.get_command(parent, command)
    if sub is None:
        raise click.UsageError(f"no such command: {command}")
    with click.Context(sub, info_name=command, parent=parent) as sub_ctx:
        click.echo(sub.get_help(sub_ctx))


def _register() -> None:
    from . import (
        cmd_history,
        cmd_inspect,
        cmd_maint,
        cmd_refs,
        cmd_release,
        cmd_remote,
        cmd_storage,
        cmd_worktree,
    )

    cli.add_command(help_)
    mods = (cmd_worktree, cmd_history, cmd_refs, cmd_inspect, cmd_remote, cmd_release, cmd_storage, cmd_maint)
    for mod in mods:
        for command in mod.COMMANDS:
            cli.add_command(command)


def _err(prog: str, msg: str) -> None:
    first = msg.strip().splitlines()[0] if msg.strip() else "failed"
    sys.stderr.write(f"{prog}: error: {first}\n")


def run(args: list[str], prog: str) -> int:
    """Run the CLI; every failure is one line on stderr and an exit code, never a traceback."""
    _register()
    import logging

    logging.getLogger("gcsfs").setLevel(logging.CRITICAL)  # it logs tracebacks for errors we report in one line
    # asyncio logs "Task exception was never retrieved" + a traceback when aiohttp (s3fs) loses a
    # connection mid-upload; we report that failure in one line ourselves (found by the campaign)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    if not args:  # a bare `mv`: show what it can do (click would print a one-line usage error)
        with click.Context(cli, info_name=prog) as ctx:
            click.echo(cli.get_help(ctx))
        return 0
    try:
        code = cli.main(args=args, prog_name=prog, standalone_mode=False)
        return code if isinstance(code, int) else 0  # click returns an Exit's code here
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.exceptions.Abort:
        sys.stderr.write(f"{prog}: aborted\n")
        return 130
    except click.ClickException as e:
        _err(
            prog, e.format_message() + (f" (see '{prog} --help')" if isinstance(e, click.UsageError) else "")
        )
        return 2
    except MvError as e:
        _err(prog, str(e))
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        _err(prog, f"{e.strerror or e}{where}")
        return 1
    except Exception as e:  # a bug: still one line, with a way to get the traceback
        if os.environ.get("MV_DEBUG"):
            raise
        _err(prog, f"internal error: {type(e).__name__}: {e} (set MV_DEBUG=1 for a traceback)")
        return EXIT_INTERNAL
