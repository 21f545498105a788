"""Remote settings in ``.mv/config``: URL, storage options (never credentials), upstreams.

```
[remote "origin"]
url = s3://team-models/llama-ft
option.endpoint_url = http://127.0.0.1:9000

[branch "main"]
remote = origin
merge = refs/heads/main
```
Credentials come from each backend's own chain (environment variables, profiles, metadata
servers) and are refused here, so a config file can be shared without leaking secrets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..errors import RevisionNotFound, UsageError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SECRET_KEYS = {
    "key",
    "secret",
    "token",
    "password",
    "access_key",
    "secret_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "session_token",
    "credentials",
    "sas_token",
    "account_key",
    "client_secret",
}


_TOKEN_MODES = {"anon", "google_default", "cache", "cloud", "browser"}


@dataclass(frozen=True)
class RemoteSpec:
    name: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)


def check_remote_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(f"invalid remote name {name!r} (letters, digits, '.', '_', '-')")
    return name


def refuse_secret(key: str, value: object) -> None:
    """Credentials never go into ``.mv/config``: each backend has its own credential chain."""
    low = key.lower().split(".")[-1]
    if low == "token" and value in _TOKEN_MODES:
        return  # gcsfs's token= also names a credential *mode* ("anon", "google_default"): no secret
    if low in _SECRET_KEYS or "secret" in low or "password" in low:
        raise UsageError(
            f"option {key}: credentials are not stored in the config; use the backend's "
            "environment variables or profile (e.g. AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS)"
        )


def parse_options(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` storage options; ``a.b=v`` nests (``client_kwargs.region_name=…``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--option expects KEY=VALUE, got {item!r}")
        refuse_secret(key, value)
        try:
            parsed = json.loads(value)
            typed: Any = (
                parsed if json.dumps(parsed) == value and not isinstance(parsed, (dict, list)) else value
            )
        except ValueError:
            typed = value
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = typed
    return out


def _check_options(options: dict[str, Any], prefix: str = "") -> None:
    """What ``.mv/config`` can hold and give back unchanged: names without dots, and strings,
    numbers or booleans (nested maps become ``a.b = v``)."""
    for k, v in options.items():
        if not isinstance(k, str) or not k or "." in k or not k.replace("_", "").replace("-", "").isalnum():
            raise UsageError(f"storage option name {prefix}{k!r}: letters, digits, '_' and '-' only")
        if isinstance(v, dict):
            _check_options(v, f"{prefix}{k}.")
        elif not isinstance(v, (str, int, float, bool)):
            raise UsageError(f"storage option {prefix}{k}: {type(v).__name__} values cannot be stored in the config")


def _flatten(options: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for k, v in options.items():
        if isinstance(v, dict):
            out += _flatten(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v if isinstance(v, str) else json.dumps(v)))
    return out


def _section(name: str) -> str:
    return f'remote "{check_remote_name(name)}"'


def add_remote(
    config: Config, name: str, url: str, options: dict[str, Any], overwrite: bool = False
) -> RemoteSpec:
    section = _section(name)
    _check_options(options)
    flat = _flatten(options)
    for k, v in flat:
        refuse_secret(k, v)
    if config.has_section(section) and not overwrite:
        raise UsageError(f"remote {name!r} already exists")
    config.remove_section(section)
    config.set(section, "url", url)
    for k, v in flat:
        config.set(section, f"option.{k}", v)
    config.save()
    return RemoteSpec(name, url, options)


def remove_remote(config: Config, name: str) -> None:
    if not config.remove_section(_section(name)):
        raise RevisionNotFound(f"no remote named {name!r}")
    config.save()


def get_remote(config: Config, name: str) -> RemoteSpec:
    section = _section(name)
    url = config.get(section, "url")
    if url is None:
        raise RevisionNotFound(f"no remote named {name!r} (see 'mv remote -v')")
    items = [f"{k[len('option.') :]}={v}" for k, v in config.items(section) if k.startswith("option.")]
    return RemoteSpec(name, url, parse_options(items))


def list_remotes(config: Config) -> list[RemoteSpec]:
    out = []
    for section in config.sections():
        m = re.fullmatch(r'remote "(.+)"', section)
        if m:
            out.append(get_remote(config, m.group(1)))
    return out


def get_upstream(config: Config, branch: str) -> tuple[str, str] | None:
    section = f'branch "{branch}"'
    remote, merge = config.get(section, "remote"), config.get(section, "merge")
    return (remote, merge) if remote and merge else None


def set_upstream(config: Config, branch: str, remote: str, merge: str) -> None:
    section = f'branch "{branch}"'
    config.set(section, "remote", remote)
    config.set(section, "merge", merge)
    config.save()
