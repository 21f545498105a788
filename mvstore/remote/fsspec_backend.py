"""fsspec-backed remotes (S3, GCS, memory, …) behind our small :class:`Backend` interface.

All fsspec and cloud-SDK exceptions are translated here into :mod:`mvstore.errors`; nothing above
this module sees them. Listings bypass fsspec's caches (refs must be read fresh).
"""

from __future__ import annotations

import builtins
import os
import re
from pathlib import Path
from typing import Any

from ..errors import ObjectNotFound
from .backend import Backend, Listed, LocalBackend, RemoteError, Token, Versioned, check_name

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")  # else every emulator call hangs ~60 s


def open_backend(url: str, options: dict[str, Any]) -> Backend:
    if url.startswith("file://"):
        return LocalBackend(Path(url[len("file://") :]).absolute())
    if "://" not in url:
        return LocalBackend(Path(url).absolute())
    try:
        import fsspec
    except ImportError:
        raise RemoteError("remote URLs need fsspec: pip install 'mvstore[remote]'") from None
    protocol = url.split("://", 1)[0]
    try:
        fs = fsspec.filesystem(protocol, skip_instance_cache=True, use_listings_cache=False, **options)
    except ImportError as e:
        raise RemoteError(
            f"{url}: the {protocol}:// backend needs an extra package ({e.name}); pip install 'mvstore[remote]'"
        ) from None
    except (TypeError, ValueError) as e:
        raise RemoteError(f"{url}: bad storage options: {e}") from None
    root = url.split("://", 1)[1].rstrip("/")
    if protocol in ("s3", "s3a"):
        return S3Backend(fs, root, url)
    if protocol in ("gs", "gcs"):
        return GCSBackend(fs, root, url)
    return FsspecBackend(fs, root, url)


def _translate(url: str, e: BaseException) -> BaseException:
    """One place for what fsspec/botocore/aiohttp errors mean to a user."""
    text = f"{type(e).__name__}: {e}"
    low = text.lower()
    if isinstance(e, (ObjectNotFound, RemoteError)):
        return e
    # An HTTP status as a number of its own: "403" also occurs inside bucket names, ports and
    # request ids (a dropped connection to bucket "mv-…4033…" read as "access denied").
    def status(code: str) -> bool:
        return re.search(rf"(?<![0-9a-z]){code}(?![0-9])", low) is not None

    if "nosuchbucket" in low or "bucket does not exist" in low or (status("404") and "bucket" in low):
        return RemoteError(f"{url}: bucket does not exist")
    if isinstance(e, FileNotFoundError):
        return ObjectNotFound(f"{url}: {e}")
    if (
        isinstance(e, PermissionError)
        or "accessdenied" in low
        or status("403")
        or "invalidaccesskeyid" in low
        or "signaturedoesnotmatch" in low
    ):
        return RemoteError(f"{url}: access denied (check the backend's credentials)")
    if "connect" in low or "timeout" in low or "unreachable" in low or "name or service not known" in low:
        return RemoteError(f"{url}: cannot reach the remote ({type(e).__name__})")
    return RemoteError(f"{url}: {text[:200]}")


class FsspecBackend:
    """Generic fsspec filesystem: reads, writes, listings; no conditional writes."""

    atomic = False
    _cat_options: dict[str, Any] = {}  # extra arguments for every whole-object read

    def __init__(self, fs: Any, root: str, url: str) -> None:
        self.fs = fs
        self.root = root
        self.url = url

    def _p(self, name: str) -> str:
        return f"{self.root}/{check_name(name)}"

    def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # translated: callers only see our error tree
            raise _translate(self.url, e) from None

    def read(self, name: str) -> bytes:
        return bytes(self._run(self.fs.cat_file, self._p(name), **self._cat_options))

    def read_ranges(self, name: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        path = self._p(name)
        if not ranges:
            return []
        out = self._run(
            self.fs.cat_ranges,
            [path] * len(ranges),
            [r[0] for r in ranges],
            [r[1] for r in ranges],
            on_error="return",
        )
        for r in out:
            if isinstance(r, BaseException):
                raise _translate(self.url, r)
        return [bytes(r) for r in out]

    def read_many(self, names: list[str]) -> dict[str, bytes]:
        if not names:
            return {}
        paths = {self.fs._strip_protocol(self._p(n)): n for n in names}
        got = self._run(self.fs.cat, list(paths), on_error="return", **self._cat_options)
        if not isinstance(got, dict):  # a single path comes back bare
            got = {next(iter(paths)): got}
        out = {}
        for path, value in got.items():
            name = paths.get(self.fs._strip_protocol(path))
            if name is None:
                continue
            if isinstance(value, BaseException):
                if isinstance(_translate(self.url, value), ObjectNotFound):
                    continue
                raise _translate(self.url, value)
            out[name] = bytes(value)
        return out

    def write_many(self, items: dict[str, bytes]) -> None:
        if items:
            self._run(self.fs.pipe, {self._p(n): d for n, d in items.items()})

    def exists_many(self, names: list[str]) -> set[str]:
        if len(names) > 16:  # one listing beats many HEADs
            listed = set(self.list("objects/"))
            return {n for n in names if n in listed}
        return {n for n in names if self._run(self.fs.exists, self._p(n))}

    def list(self, prefix: str) -> list[str]:
        base = f"{self.root}/{prefix}".rstrip("/")
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        except Exception as e:
            raise _translate(self.url, e) from None
        strip = self.fs._strip_protocol(self.root).rstrip("/") + "/"
        out = []
        for p in found:
            p = self.fs._strip_protocol(p)
            if p.startswith(strip):
                out.append(p[len(strip) :])
        return sorted(out)

    def list_with_mtime(self, prefix: str) -> builtins.list[Listed]:
        base = f"{self.root}/{prefix}".rstrip("/")
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return []
        except Exception as e:
            raise _translate(self.url, e) from None
        strip = self.fs._strip_protocol(self.root).rstrip("/") + "/"
        out = []
        for p, info in found.items():
            p = self.fs._strip_protocol(p)
            if p.startswith(strip):
                out.append(Listed(p[len(strip) :], int(info.get("size") or 0), _mtime(info)))
        return sorted(out, key=lambda x: x.name)

    def stat(self, name: str) -> Listed | None:
        try:
            info = self.fs.info(self._p(name))
        except FileNotFoundError:
            return None
        except Exception as e:
            err = _translate(self.url, e)
            if isinstance(err, ObjectNotFound):
                return None
            raise err from None
        return Listed(name, int(info.get("size") or 0), _mtime(info))

    def _each_present(self, names: builtins.list[str], op: Any) -> None:
        """``op(name)`` for every name, skipping those that vanished (gc or a concurrent delete)."""
        for name in names:
            try:
                op(name)
            except FileNotFoundError:
                continue
            except Exception as e:
                err = _translate(self.url, e)
                if isinstance(err, ObjectNotFound):
                    continue
                raise err from None

    def touch(self, names: builtins.list[str]) -> None:
        """Generic fallback: rewrite the same bytes (no server-side copy on an unknown backend)."""
        for name in names:
            try:
                data = self.read(name)
            except ObjectNotFound:
                continue
            self._run(self.fs.pipe_file, self._p(name), data)

    def read_versioned(self, name: str) -> Versioned | None:
        try:
            data = self.read(name)
        except ObjectNotFound:
            return None
        return Versioned(data, data)

    def create(self, name: str, data: bytes) -> bool:
        if self._run(self.fs.exists, self._p(name)):
            return False
        self._run(self.fs.pipe_file, self._p(name), data)
        return True

    def replace(self, name: str, data: bytes, token: Token) -> bool:
        current = self.read_versioned(name)
        if current is None or current.token != token:
            return False
        self._run(self.fs.pipe_file, self._p(name), data)
        return True

    def delete(self, name: str, token: Token | None = None) -> bool:
        try:
            self.fs.rm_file(self._p(name))
            return True
        except FileNotFoundError:
            return False
        except Exception as e:
            raise _translate(self.url, e) from None


def _mtime(info: dict[str, Any]) -> float:
    """Last-modified time from an fsspec info dict (S3 ``LastModified``, GCS ``updated``/``mtime``,
    memory ``created``). Unknown means *now*: gc must treat an object it cannot date as recent."""
    import datetime as dt
    import time

    for key in ("LastModified", "mtime", "updated", "last_modified", "created"):
        v = info.get(key)
        if isinstance(v, dt.datetime):
            return (v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)).timestamp()
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str):
            try:
                return dt.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return time.time()


def _precondition_failed(e: BaseException) -> bool:
    text = f"{type(e).__name__} {e} {getattr(e, 'response', '')}".lower()
    return (
        "precondition" in text
        or "pre-condition" in text
        or "412" in text
        or "conditionalrequestconflict" in text
        or "409" in text
    )


class S3Backend(FsspecBackend):
    """S3 (and S3-compatible servers): If-None-Match / If-Match conditional PUTs."""

    atomic = True
    # s3fs HEADs every object before its GET (to split big ones into concurrent ranges): objects
    # here are ≤ a few MiB and already read many at a time, so one GET each is the fast path.
    _cat_options = {"max_concurrency": 1}

    def _bucket_key(self, name: str) -> tuple[str, str]:
        path = self._p(name)
        bucket, _, key = path.partition("/")
        return bucket, key

    def exists_many(self, names: builtins.list[str]) -> set[str]:
        """One HEAD per name, all at once (``fs.exists`` adds a listing for every missing key)."""
        if len(names) > 16:
            return super().exists_many(names)
        import asyncio

        from fsspec.asyn import sync

        async def head(name: str) -> bool:
            bucket, key = self._bucket_key(name)
            try:
                await self.fs._call_s3("head_object", Bucket=bucket, Key=key)
                return True
            except FileNotFoundError:
                return False

        async def heads() -> list[bool]:
            return await asyncio.gather(*(head(n) for n in names))

        try:
            found = sync(self.fs.loop, heads)
        except Exception as e:
            raise _translate(self.url, e) from None
        return {n for n, ok in zip(names, found, strict=True) if ok}

    def read_versioned(self, name: str) -> Versioned | None:
        from fsspec.asyn import sync

        bucket, key = self._bucket_key(name)

        async def get() -> tuple[bytes, str]:
            resp = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
            body = resp["Body"]
            try:
                data = await body.read()
            finally:
                body.close()
            return data, resp["ETag"]

        try:
            data, etag = sync(self.fs.loop, get)
        except FileNotFoundError:
            return None
        except Exception as e:
            err = _translate(self.url, e)
            if isinstance(err, ObjectNotFound):
                return None
            raise err from None
        return Versioned(data, etag)

    def touch(self, names: builtins.list[str]) -> None:
        """A server-side copy onto itself: new LastModified, no bytes through the client."""

        def copy_onto_itself(name: str) -> None:
            bucket, key = self._bucket_key(name)
            self.fs.call_s3(
                "copy_object",
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": key},
                MetadataDirective="REPLACE",
                Metadata={"mv-touched": "1"},
            )

        self._each_present(names, copy_onto_itself)

    def create(self, name: str, data: bytes) -> bool:
        bucket, key = self._bucket_key(name)
        try:
            self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
            return True
        except Exception as e:
            if _precondition_failed(e):
                return False
            raise _translate(self.url, e) from None

    def replace(self, name: str, data: bytes, token: Token) -> bool:
        bucket, key = self._bucket_key(name)
        try:
            self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfMatch=token)
            return True
        except Exception as e:
            if _precondition_failed(e):
                return False
            raise _translate(self.url, e) from None


class GCSBackend(FsspecBackend):
    """Google Cloud Storage: generation preconditions (``ifGenerationMatch``; 0 = must not exist)."""

    atomic = True

    def _bucket_key(self, name: str) -> tuple[str, str]:
        bucket, _, key = self._p(name).partition("/")
        return bucket, key

    def read_versioned(self, name: str) -> Versioned | None:
        """Metadata first, then the bytes of exactly that generation: data and token always agree."""
        bucket, key = self._bucket_key(name)
        try:
            meta = self.fs.call("GET", "b/{}/o/{}", bucket, key, json_out=True)
            generation = str(meta["generation"])
            data = self.fs.call("GET", "b/{}/o/{}", bucket, key, alt="media", generation=generation)
        except FileNotFoundError:
            return None
        except Exception as e:
            err = _translate(self.url, e)
            if isinstance(err, ObjectNotFound):
                return None
            raise err from None
        body = data[1] if isinstance(data, tuple) else data
        return Versioned(bytes(body), generation)

    def _upload_if(self, name: str, data: bytes, generation: str) -> bool:
        """A multipart upload with a generation precondition (gcsfs's pipe_file cannot pass one)."""
        import json
        import secrets
        import urllib.parse

        bucket, key = self._bucket_key(name)
        boundary = secrets.token_hex(16)
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                json.dumps({"name": key}).encode(),
                f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
                data,
                f"\r\n--{boundary}--".encode(),
            ]
        )
        try:
            self.fs.call(
                "POST",
                f"{self.fs._location}/upload/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o",
                uploadType="multipart",
                ifGenerationMatch=generation,
                headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
                data=body,
                json_out=True,
            )
        except Exception as e:
            if isinstance(e, FileExistsError) or _precondition_failed(e):
                return False
            raise _translate(self.url, e) from None
        finally:
            self.fs.invalidate_cache(self._p(name))
        return True

    def touch(self, names: builtins.list[str]) -> None:
        """A server-side rewrite onto itself: a new generation and ``updated`` time."""
        self._each_present(names, lambda name: self.fs.copy(self._p(name), self._p(name)))

    def create(self, name: str, data: bytes) -> bool:
        return self._upload_if(name, data, "0")

    def replace(self, name: str, data: bytes, token: Token) -> bool:
        return self._upload_if(name, data, str(token))
