"""The ``mv`` / ``mvstore`` command.

``mv`` shadows the system ``mv`` once the venv is active, so when the first argument is not one of
our subcommands or options (``mv a.txt b/``), we exec the system ``mv`` with the arguments
unchanged. This module imports nothing heavy: the click app loads only for our own commands.
"""

from __future__ import annotations

import os
import sys

#: Subcommands and top-level options; anything else as the first argument of ``mv`` goes to the system mv.
COMMANDS = frozenset(
    {
        "init",
        "commit",
        "status",
        "log",
        "show",
        "diff",
        "checkout",
        "switch",
        "export",
        "ls",
        "cat",
        "tag",
        "branch",
        "rev-parse",
        "stats",
        "remote",
        "push",
        "fetch",
        "pull",
        "clone",
        "repack",
        "stage",
        "changelog",
        "bump-suggest",
        "validate",
        "verify",
        "verify-export",
        "gc",
        "repair",
        "key",
        "convert",
        "help",
    }
)
OPTIONS = frozenset({"--help", "-h", "--version", "-C"})


def _is_our_script(path: str) -> bool:
    """True for an ``mv`` console script of mvstore (this venv's or another's): never exec one,
    or two venvs on PATH would exec each other forever."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(b"#!") and b"mvstore.cli" in head


def _system_mv() -> str | None:
    dirs = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p] + ["/usr/bin", "/bin"]
    for d in dirs:
        candidate = os.path.join(d, "mv")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK) and not _is_our_script(candidate):
            return candidate
    return None


def main() -> None:
    """Entry point of ``mv``: our subcommands, or the system ``mv`` for everything else."""
    args = sys.argv[1:]
    if args and args[0] not in COMMANDS and args[0] not in OPTIONS:
        target = _system_mv()
        if target is None:
            sys.stderr.write("mv: the system mv command was not found on PATH\n")
            sys.exit(127)
        os.execv(target, ["mv", *args])
    main_mvstore(prog="mv")


def main_mvstore(prog: str = "mvstore") -> None:
    """Entry point of ``mvstore``: never forwards to the system ``mv``."""
    args = sys.argv[1:]
    if args and args[0] == "status":
        from .fast import try_status

        code = try_status(args)
        if code is not None:
            sys.exit(code)
    from .app import run

    sys.exit(run(args, prog))
