"""``.mv/config``: an INI file, like git's. Holds settings, never credentials."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

from .refs import write_atomic


class Config:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._cp = configparser.ConfigParser(interpolation=None)
        if path.exists():
            self._cp.read(path, encoding="utf-8")

    def get(self, section: str, key: str, default: str | None = None) -> str | None:
        return self._cp.get(section, key, fallback=default)

    def set(self, section: str, key: str, value: str) -> None:
        if not self._cp.has_section(section):
            self._cp.add_section(section)
        self._cp.set(section, key, value)

    def save(self) -> None:
        import io

        buf = io.StringIO()
        self._cp.write(buf)
        write_atomic(self.path, buf.getvalue().encode("utf-8"))


def identity(config: Config) -> str:
    """``Name <email>`` from MV_AUTHOR, the repo config, or the login and host names."""
    env = os.environ.get("MV_AUTHOR")
    if env:
        return env
    name = config.get("user", "name")
    email = config.get("user", "email")
    import getpass
    import socket

    if not name:
        try:
            name = getpass.getuser()
        except Exception:  # no passwd entry in some containers
            name = "unknown"
    if not email:
        email = f"{name}@{socket.gethostname() or 'localhost'}"
    return f"{name} <{email}>"
