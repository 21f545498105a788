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
        self._cp.optionxform = str  # type: ignore[assignment,method-assign]  # keep option names' case
        if path.exists():
            self._cp.read(path, encoding="utf-8")

    def get(self, section: str, key: str, default: str | None = None) -> str | None:
        return self._cp.get(section, key, fallback=default)

    def set(self, section: str, key: str, value: str) -> None:
        if not self._cp.has_section(section):
            self._cp.add_section(section)
        self._cp.set(section, key, value)

    def has_section(self, section: str) -> bool:
        return self._cp.has_section(section)

    def remove_section(self, section: str) -> bool:
        return self._cp.remove_section(section)

    def sections(self) -> list[str]:
        return self._cp.sections()

    def items(self, section: str) -> list[tuple[str, str]]:
        return list(self._cp.items(section)) if self._cp.has_section(section) else []

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

    if not name:
        try:
            name = getpass.getuser()
        except Exception:  # no passwd entry in some containers
            name = "unknown"
    if not email:
        email = f"{name}@{os.uname().nodename or 'localhost'}"
    return f"{name} <{email}>"
