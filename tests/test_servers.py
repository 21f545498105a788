"""What the remote layer relies on, proven against the real servers of ``tests/servers.py``.

Every test runs against moto (S3), SeaweedFS (S3) and fake-gcs-server (GCS) through s3fs / gcsfs,
the clients mvstore uses. Where the servers differ, the expected behaviour is written per server
in a table, so a change in a server or client shows up here first.
"""

from __future__ import annotations

import dataclasses
import errno
import sys
import time
from typing import Any

import fsspec
import pytest
import servers

# The fixtures live in servers.py and conftest is meant to re-export them. Import them here only if
# it does not: a second definition would shadow conftest's and start a second set of servers.
if not hasattr(sys.modules.get("conftest"), "moto_s3"):
    from servers import fake_gcs, moto_s3, seaweed_s3  # noqa: F401

KINDS = ["moto", "seaweedfs", "gcs"]
FIXTURE = {"moto": "moto_s3", "seaweedfs": "seaweed_s3", "gcs": "fake_gcs"}


@dataclasses.dataclass
class Store:
    """One fresh bucket on one server, with a fresh filesystem instance (no caches)."""

    kind: str
    server: Any
    fs: Any
    bucket: str  # without protocol
    protocol: str  # "s3" | "gs"

    def p(self, key: str) -> str:
        return f"{self.bucket}/{key}"


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest) -> Store:
    server = request.getfixturevalue(FIXTURE[request.param])
    url = server.make_bucket()
    protocol, bucket = url.split("://")
    return Store(request.param, server, server.filesystem(), bucket, protocol)


@pytest.fixture(params=["moto", "seaweedfs"])
def s3store(request: pytest.FixtureRequest) -> Store:
    server = request.getfixturevalue(FIXTURE[request.param])
    url = server.make_bucket()
    return Store(request.param, server, server.filesystem(), url.split("://")[1], "s3")


# --- the fixtures themselves -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_fixture_shape(kind: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(FIXTURE[kind])
    assert server.endpoint_url.startswith("http://127.0.0.1:")
    opts = server.storage_options
    assert opts is not server.storage_options  # a fresh dict: callers may mutate theirs
    if kind == "gcs":
        assert opts == {"endpoint_url": server.endpoint_url, "token": "anon"}
        assert server.env["STORAGE_EMULATOR_HOST"] == server.endpoint_url
    else:
        assert opts["client_kwargs"] == {"endpoint_url": server.endpoint_url}
        assert "region_name" not in opts and "region_name" not in opts["client_kwargs"]
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(server.env)
    url = server.make_bucket("explicit-" + servers.unique_bucket("n"))
    assert url.startswith(("s3://explicit-", "gs://explicit-"))
    assert server.filesystem().ls(url) == []
    assert server.log_path.is_file()
    assert server.startup_seconds < 30


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("kind", KINDS)
def test_servers_listen_on_loopback_only(kind: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(FIXTURE[kind])
    addrs = servers.listening_addresses(server.pid)
    port = int(server.endpoint_url.rsplit(":", 1)[1])
    assert ("127.0.0.1", port) in addrs
    assert {ip for ip, _ in addrs} == {"127.0.0.1"}, addrs


def test_free_ports_distinct() -> None:
    ports = servers.free_ports(12)
    assert len(set(ports)) == 12 and all(1024 < p < 65536 for p in ports)
    assert isinstance(servers.free_port(), int)


# --- 1. round trip -----------------------------------------------------------------------------------


def test_round_trip(store: Store) -> None:
    fs = store.fs
    fs.pipe_file(store.p("a/one"), b"0123456789")
    assert fs.cat_file(store.p("a/one")) == b"0123456789"
    assert fs.cat_file(store.p("a/one"), start=2, end=5) == b"234"  # end exclusive
    assert fs.cat_file(store.p("a/one"), start=-3) == b"789"
    assert fs.cat_file(store.p("a/one"), start=8, end=100) == b"89"  # clipped at the end
    assert fs.info(store.p("a/one"))["size"] == 10

    # batched writes and reads: one call, concurrent requests
    blobs = {store.p(f"a/b/{i:03d}"): bytes([i]) * (i + 1) for i in range(20)}
    fs.pipe(blobs)
    assert fs.cat(sorted(blobs)) == blobs
    assert fs.cat_ranges(sorted(blobs)[:3], [0, 0, 1], [1, 2, 3]) == [b"\x00", b"\x01\x01", b"\x02\x02"]

    assert fs.ls(store.p("a"), detail=False) == sorted([store.p("a/b"), store.p("a/one")])
    assert fs.find(store.p("a/b")) == sorted(blobs)
    assert fs.find(store.bucket) == sorted([*blobs, store.p("a/one")])

    fs.rm(sorted(blobs)[:10])
    assert fs.find(store.p("a/b")) == sorted(blobs)[10:]
    fs.rm_file(store.p("a/one"))
    assert not fs.exists(store.p("a/one"))


# Missing keys: what raises and what returns. ``rm`` of a missing key: S3 deletes are idempotent.
RM_MISSING_RAISES = {"moto": False, "seaweedfs": False, "gcs": True}


def test_missing_key(store: Store) -> None:
    fs = store.fs
    fs.pipe_file(store.p("here"), b"x")
    gone = store.p("gone")
    for call in (
        lambda: fs.cat_file(gone),
        lambda: fs.cat_file(gone, start=0, end=1),
        lambda: fs.info(gone),
        lambda: servers.version_token(fs, gone),
        lambda: fs.cat([store.p("here"), gone]),  # on_error="raise" (the default)
    ):
        with pytest.raises(FileNotFoundError) as ei:
            call()
        assert servers.classify_error(ei.value) == "missing"
    assert not fs.exists(gone)
    out = fs.cat([store.p("here"), gone], on_error="return")
    assert out[store.p("here")] == b"x" and isinstance(out[gone], FileNotFoundError)
    assert fs.cat([store.p("here"), gone], on_error="omit") == {store.p("here"): b"x"}
    # cat_ranges returns exceptions in place by default
    got = fs.cat_ranges([store.p("here"), gone], [0, 0], [1, 1])
    assert got[0] == b"x" and isinstance(got[1], FileNotFoundError)
    if RM_MISSING_RAISES[store.kind]:
        with pytest.raises(FileNotFoundError):
            fs.rm_file(gone)
    else:
        fs.rm_file(gone)


# --- 2. create-only writes ---------------------------------------------------------------------------

# s3fs turns PreconditionFailed into FileExistsError only when the server names the failed
# condition (moto and AWS do, SeaweedFS does not): decide by error code, not by class.
CREATE_CONFLICT_CLASS = {"moto": FileExistsError, "seaweedfs": OSError, "gcs": FileExistsError}


def test_create_only(store: Store) -> None:
    fs, path = store.fs, store.p("refs/heads/main")
    servers.create_only(fs, path, b"first")
    with pytest.raises(OSError) as ei:
        servers.create_only(fs, path, b"second")
    assert type(ei.value) is CREATE_CONFLICT_CLASS[store.kind]
    assert servers.classify_error(ei.value) == "precondition"
    if store.protocol == "s3":
        assert servers._error_code(ei.value) == ("PreconditionFailed", 412)
        if store.kind == "seaweedfs":
            assert ei.value.errno == errno.EINVAL
    assert fs.cat_file(path) == b"first"
    # identical content is refused too
    with pytest.raises(OSError) as ei:
        servers.create_only(fs, path, b"first")
    assert servers.classify_error(ei.value) == "precondition"
    # after a delete the name is free again
    fs.rm_file(path)
    servers.create_only(fs, path, b"third")
    assert fs.cat_file(path) == b"third"


def test_batched_create_is_not_atomic(store: Store) -> None:
    """``pipe({...}, mode="create")``: one conflict raises, the other keys are written anyway."""
    fs = store.fs
    fs.pipe_file(store.p("taken"), b"old")
    with pytest.raises(OSError) as ei:
        fs.pipe({store.p("free"): b"new", store.p("taken"): b"new"}, mode="create")
    assert servers.classify_error(ei.value) == "precondition"
    assert fs.cat_file(store.p("free")) == b"new"
    assert fs.cat_file(store.p("taken")) == b"old"


# --- 3. compare-and-swap -----------------------------------------------------------------------------

# A conditional replace of a key that does not exist (a deleted ref): AWS and moto answer
# 404 NoSuchKey, SeaweedFS 412, GCS 412.
CAS_ON_MISSING = {"moto": "missing", "seaweedfs": "precondition", "gcs": "precondition"}


def test_compare_and_swap(store: Store) -> None:
    fs, path = store.fs, store.p("refs/heads/main")
    fs.pipe_file(path, b"v1")
    t1 = servers.version_token(fs, path)
    t2 = servers.replace_if(fs, path, b"v2", t1)
    assert t2 != t1 and t2 == servers.version_token(fs, path)
    assert fs.cat_file(path) == b"v2"

    with pytest.raises(OSError) as ei:  # stale token
        servers.replace_if(fs, path, b"v3", t1)
    assert servers.classify_error(ei.value) == "precondition"
    assert fs.cat_file(path) == b"v2"

    with pytest.raises(OSError) as ei:
        servers.replace_if(fs, store.p("refs/heads/none"), b"x", t2)
    assert servers.classify_error(ei.value) == CAS_ON_MISSING[store.kind]
    assert not fs.exists(store.p("refs/heads/none"))

    # Rewriting identical bytes: the S3 ETag is the MD5 of the content, so it does not change
    # (an old token still matches: ABA is invisible, compare the *value* instead); the GCS
    # generation always changes.
    t3 = servers.replace_if(fs, path, b"v2", t2)
    assert (t3 == t2) == (store.protocol == "s3")


def test_tokens_how_to_read_them(store: Store) -> None:
    fs, path = store.fs, store.p("k")
    out = fs.pipe_file(path, b"hello")
    info = fs.info(path)
    if store.protocol == "s3":
        # ETag: quoted hex MD5, the same in the put response, head_object and info()
        assert info["ETag"] == '"5d41402abc4b2a76b9719d911017c592"' == out["ETag"]
        assert servers.version_token(fs, path) == info["ETag"]
        # If-Match accepts the ETag with or without quotes on both servers
        t = servers.replace_if(fs, path, b"hello2", info["ETag"].strip('"'))
        assert t.startswith('"')
    else:
        # generation: a decimal string, in the upload response and in info()
        assert info["generation"] == str(out["generation"]) == servers.version_token(fs, path)
        assert info["generation"].isdigit()


def test_s3_if_match_star_differs(s3store: Store) -> None:
    """``If-Match: *`` (replace only if it exists): SeaweedFS honours it, moto refuses it (412)."""
    fs, path = s3store.fs, s3store.p("k")
    fs.pipe_file(path, b"x")
    bucket, key = path.split("/", 1)
    if s3store.kind == "seaweedfs":
        fs.call_s3("put_object", Bucket=bucket, Key=key, Body=b"y", IfMatch="*")
    else:
        with pytest.raises(OSError) as ei:
            fs.call_s3("put_object", Bucket=bucket, Key=key, Body=b"y", IfMatch="*")
        assert servers.classify_error(ei.value) == "precondition"


def test_s3_conditional_delete(s3store: Store) -> None:
    fs, path = s3store.fs, s3store.p("lock")
    fs.pipe_file(path, b"x")
    bucket, key = path.split("/", 1)
    with pytest.raises(OSError) as ei:
        fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch='"00000000000000000000000000000000"')
    assert servers.classify_error(ei.value) == "precondition"
    assert fs.exists(path)
    fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=servers.version_token(fs, path))
    assert not fs.exists(path)


def test_gcs_preconditions_only_on_multipart(fake_gcs: servers.GCSServer) -> None:  # noqa: F811
    """fake-gcs-server checks ``ifGenerationMatch`` on multipart uploads only (what gcsfs's
    ``pipe_file`` sends below its 50 MiB ``chunksize``). It ignores it on media uploads, resumable
    uploads and deletes - real GCS enforces all of them. So refs must go through multipart uploads
    (``servers.gcs_upload``); a test that passes on the emulator via another path proves nothing.
    If an assertion marked "ignored" starts failing, the emulator got stricter: update this note."""
    fs = fake_gcs.filesystem()
    bucket = fake_gcs.make_bucket()[5:]
    path = f"{bucket}/k"
    fs.pipe_file(path, b"v1")
    gen = servers.version_token(fs, path)

    def media(data: bytes, match: str) -> None:
        fs.call(
            "POST", f"{fs._location}/upload/storage/v1/b/{bucket}/o", uploadType="media", name="k",
            data=data, headers={"Content-Type": "application/octet-stream"}, ifGenerationMatch=match,
        )

    media(b"media-stale", "1")  # ignored: the write goes through
    assert fs.cat_file(path) == b"media-stale"

    big = b"z" * (300 * 1024)  # resumable upload with a small chunksize, create-only
    fs.pipe_file(path, big, mode="create", chunksize=256 * 1024)  # ignored: overwrites
    assert fs.cat_file(path) == big

    gen = servers.version_token(fs, path)
    fs.call("DELETE", "b/{}/o/{}", bucket, "k", ifGenerationMatch=str(int(gen) + 1))  # ignored
    assert not fs.exists(path)

    fs.pipe_file(path, b"v1")
    gen = servers.version_token(fs, path)
    with pytest.raises(FileExistsError):  # enforced: multipart
        servers.gcs_upload(fs, path, b"stale", if_generation_match=int(gen) + 1)
    assert fs.cat_file(path) == b"v1"


# --- fsspec caches -----------------------------------------------------------------------------------


def test_fsspec_caches_go_stale(store: Store) -> None:
    """fsspec caches filesystem *instances* (same options -> same object) and, by default,
    directory listings - and ``info()`` answers from a cached listing. A ref read through a cached
    instance can be stale; read refs with ``cat_file`` / ``version_token`` (always a request), or
    use ``skip_instance_cache=True, use_listings_cache=False``."""
    opts = store.server.storage_options
    a = fsspec.filesystem(store.protocol, **opts)
    b = fsspec.filesystem(store.protocol, **opts)
    assert a is b  # the instance cache
    assert fsspec.filesystem(store.protocol, skip_instance_cache=True, **opts) is not a

    cached = store.server.filesystem(use_listings_cache=True)
    path = store.p("refs/main")
    store.fs.pipe_file(path, b"v1")
    t1 = servers.version_token(store.fs, path)
    assert cached.ls(store.p("refs"), detail=False) == [path]
    servers.replace_if(store.fs, path, b"version-2", t1)  # another client moves the ref
    store.fs.pipe_file(store.p("refs/new"), b"x")
    assert cached.ls(store.p("refs"), detail=False) == [path]  # stale listing
    assert cached.info(path)["size"] == 2  # stale info, from the listing
    assert cached.cat_file(path) == b"version-2"  # a read is never cached
    assert servers.version_token(cached, path) != t1
    assert len(cached.ls(store.p("refs"), detail=False, refresh=True)) == 2
    # the no-cache instance the fixtures hand out sees everything at once
    assert store.fs.info(path)["size"] == 9


# --- 4. concurrency ----------------------------------------------------------------------------------

# SeaweedFS serialises contended conditional writes on one key with a lock it polls once a second:
# the k-th loser of a round answers after ~k-1 s (a round of 8 takes 2-4 s).
ROUNDS = {"moto": 16, "seaweedfs": 4, "gcs": 16}


def test_eight_way_races(store: Store) -> None:
    """8 processes, barrier-started, all try the same conditional write; each round one key.

    Rounds cycle through: create (distinct contents), create (identical contents), replace with
    the same token (distinct), replace (identical). SeaweedFS and fake-gcs-server serialise the
    check and the write: exactly one winner every round. moto checks then writes without a lock,
    so two winners are possible in principle (none seen here in 330 rounds of 8, GIL luck): for
    moto we assert at least one winner and that every loser got a precondition failure.
    """
    fs = store.fs
    rounds = ROUNDS[store.kind]
    tasks = []
    for r in range(rounds):
        op = "create" if r % 4 < 2 else "replace"
        same = r % 2 == 1
        path = store.p(f"race/{r:02d}")
        token = None
        if op == "replace":
            fs.pipe_file(path, b"base")
            token = servers.version_token(fs, path)
        tasks.append((op, path, token, same))

    results = servers.lockstep(
        servers.race_conditional_write, 8, rounds, (store.protocol, store.server.storage_options, tasks)
    )

    atomic = store.kind != "moto"
    assert atomic == getattr(store.server, "atomic_conditional_writes", True)
    double_wins = 0
    for r, row in enumerate(results):
        winners = [i for i, x in enumerate(row) if x == "ok"]
        losers = [x for x in row if x != "ok"]
        assert set(losers) <= {"precondition"}, (tasks[r], row)
        assert winners, (tasks[r], row)
        if atomic:
            assert len(winners) == 1, (tasks[r], row)
        double_wins += len(winners) > 1
        op, path, token, same = tasks[r]
        content = fs.cat_file(path)
        if same:
            assert content == b"identical content"
        else:
            assert content in {f"writer {i} round {r}".encode() for i in winners}
    if double_wins:  # only moto can get here
        print(f"{store.kind}: {double_wins}/{rounds} rounds had more than one winner")


# --- 5. errors: missing bucket, credentials, unreachable, wrong endpoint -----------------------------

# S3: NoSuchBucket -> FileNotFoundError everywhere. GCS: 404 -> FileNotFoundError.
NO_BUCKET = {"moto": "no-bucket", "seaweedfs": "no-bucket", "gcs": "missing"}


def test_missing_bucket(store: Store) -> None:
    fs = store.server.filesystem()
    nb = servers.unique_bucket("nobucket")
    for call in (
        lambda: fs.cat_file(f"{nb}/x"),
        lambda: fs.cat_file(f"{nb}/x", start=0, end=1),
        lambda: fs.pipe_file(f"{nb}/x", b"1"),
        lambda: servers.create_only(fs, f"{nb}/x", b"1"),
        lambda: fs.ls(nb),
        lambda: servers.version_token(fs, f"{nb}/x"),
    ):
        with pytest.raises(FileNotFoundError) as ei:
            call()
        assert servers.classify_error(ei.value) in (NO_BUCKET[store.kind], "missing")
    assert not fs.exists(nb)


def test_bucket_already_exists(store: Store) -> None:
    fs = store.server.filesystem()
    if store.protocol == "s3":
        with pytest.raises(FileExistsError):  # s3fs checks first, raises a bare FileExistsError
            fs.mkdir(store.bucket)
    else:
        with pytest.raises(Exception) as ei:  # gcsfs.retry.HttpError, code 409
            fs.mkdir(store.bucket)
        assert type(ei.value).__name__ == "HttpError" and ei.value.code == 409
    fs.makedirs(store.bucket, exist_ok=True)


def test_wrong_credentials(s3store: Store) -> None:
    """SeaweedFS (with its identity) checks signatures: PermissionError, code InvalidAccessKeyId
    / SignatureDoesNotMatch (403). moto accepts any keys."""
    server = s3store.server
    path = s3store.p("k")
    s3store.fs.pipe_file(path, b"x")
    wrong_key = server.filesystem(key="nobody", secret="nothing")
    wrong_secret = server.filesystem(secret="not-the-secret")
    if not server.checks_credentials:
        assert wrong_key.cat_file(path) == b"x"
        return
    for fs, code in ((wrong_key, "InvalidAccessKeyId"), (wrong_secret, "SignatureDoesNotMatch")):
        with pytest.raises(PermissionError) as ei:
            fs.ls(s3store.bucket)
        assert servers._error_code(ei.value) == (code, 403)
        assert servers.classify_error(ei.value) == "denied"
        with pytest.raises(PermissionError) as ei:
            fs.pipe_file(path, b"y")
        assert servers.classify_error(ei.value) == "denied"
        # a GET of an object: HEAD first (no error body), so just "403"/"Forbidden"
        with pytest.raises(PermissionError) as ei:
            fs.cat_file(path)
        assert servers.classify_error(ei.value) == "denied"
    assert s3store.fs.cat_file(path) == b"x"


def test_unreachable_s3() -> None:
    """A closed port: botocore's EndpointConnectionError - *not* an OSError. With the default
    retries (botocore legacy mode, 5 attempts with backoff) it takes ~6 s; one attempt <1 s."""
    import botocore.exceptions
    import s3fs

    dead = servers.free_port()
    fs = s3fs.S3FileSystem(
        key="k", secret="s", client_kwargs={"endpoint_url": f"http://127.0.0.1:{dead}"},
        config_kwargs={"retries": {"max_attempts": 1}}, skip_instance_cache=True,
    )
    for call in (lambda: fs.cat_file("b/x"), lambda: fs.pipe_file("b/x", b"1", mode="create"), lambda: fs.ls("b")):
        t0 = time.monotonic()
        with pytest.raises(botocore.exceptions.EndpointConnectionError) as ei:
            call()
        assert time.monotonic() - t0 < 10  # one attempt: well under a second when idle
        assert not isinstance(ei.value, OSError)
        assert servers.classify_error(ei.value) == "unreachable"


def test_unreachable_gcs() -> None:
    """A closed port: aiohttp.ClientConnectorError (an OSError, errno ECONNREFUSED). gcsfs retries
    it 6 times with 1+2+4+8+16 s of backoff (~33 s, not configurable per instance) and logs each
    traceback to the ``gcsfs`` logger: bound calls with fsspec's ``timeout=`` (FSTimeoutError)."""
    import aiohttp
    import fsspec.asyn
    import fsspec.exceptions
    import gcsfs

    dead = servers.free_port()
    fs = gcsfs.GCSFileSystem(endpoint_url=f"http://127.0.0.1:{dead}", token="anon", skip_instance_cache=True)
    one_attempt = gcsfs.GCSFileSystem._request.__wrapped__  # the same request without the retry loop
    with pytest.raises(aiohttp.ClientConnectorError) as ei:
        fsspec.asyn.sync(fs.loop, one_attempt, fs, "GET", "b/{}/o", "b")
    assert isinstance(ei.value, OSError) and ei.value.errno == errno.ECONNREFUSED
    assert servers.classify_error(ei.value) == "unreachable"
    t0 = time.monotonic()
    with pytest.raises(fsspec.exceptions.FSTimeoutError):
        fs.cat_file("b/x", timeout=1.5)
    assert time.monotonic() - t0 < 5


def test_wrong_endpoint_that_answers_200() -> None:
    """A web server that is not an object store but answers 200: s3fs *succeeds* at everything
    (reads return its HTML page, writes and create-only writes "succeed", listings are empty);
    gcsfs reads the page too and fails to parse JSON elsewhere. So success proves nothing: the
    remote layer must check a marker object's content and verify every object, and detect
    conditional-write support by a real probe (create the same key twice: the second must fail)."""
    import json

    with servers.not_storage_server(200) as url:
        s3 = servers.S3Server(
            "other", url, "k", "s", atomic_conditional_writes=False, checks_credentials=False,
            log_path=None, startup_seconds=0,  # type: ignore[arg-type]
        ).filesystem(config_kwargs={"retries": {"max_attempts": 1}})
        page = s3.cat_file("b/x")
        assert page.startswith(b"<html>")
        s3.pipe_file("b/probe", b"1", mode="create")
        s3.pipe_file("b/probe", b"1", mode="create")  # the probe: a second create "succeeds"
        assert s3.ls("b") == []

        gcs = servers.GCSServer(url, log_path=None, startup_seconds=0).filesystem()  # type: ignore[arg-type]
        assert gcs.cat_file("b/x") == page
        with pytest.raises(json.JSONDecodeError):
            gcs.ls("b")
        with pytest.raises(json.JSONDecodeError):
            servers.create_only(gcs, "b/probe", b"1")


def test_wrong_endpoint_that_answers_404() -> None:
    """A web server answering 404 without an S3 error body: s3fs raises OSError(EIO) with an empty
    code for most calls (FileNotFoundError for a HEAD); gcsfs raises FileNotFoundError."""
    with servers.not_storage_server(404) as url:
        s3 = servers.S3Server(
            "other", url, "k", "s", atomic_conditional_writes=False, checks_credentials=False,
            log_path=None, startup_seconds=0,  # type: ignore[arg-type]
        ).filesystem(config_kwargs={"retries": {"max_attempts": 1}})
        for call in (lambda: s3.cat_file("b/x", start=0, end=1), lambda: s3.pipe_file("b/x", b"1"), lambda: s3.ls("b")):
            with pytest.raises(OSError) as ei:
                call()
            assert type(ei.value) is OSError and ei.value.errno == errno.EIO
            assert servers._error_code(ei.value)[0] == ""
        gcs = servers.GCSServer(url, log_path=None, startup_seconds=0).filesystem()  # type: ignore[arg-type]
        with pytest.raises(FileNotFoundError):
            gcs.cat_file("b/x")
        with pytest.raises(FileNotFoundError):
            gcs.pipe_file("b/x", b"1")


def test_s3_endpoint_pointed_at_gcs(fake_gcs: servers.GCSServer) -> None:  # noqa: F811
    """s3fs against a GCS emulator (the wrong protocol): FileNotFoundError('Not Found')."""
    fs = servers.S3Server(
        "other", fake_gcs.endpoint_url, "k", "s", atomic_conditional_writes=False, checks_credentials=False,
        log_path=None, startup_seconds=0,  # type: ignore[arg-type]
    ).filesystem(config_kwargs={"retries": {"max_attempts": 1}})
    for call in (lambda: fs.cat_file("b/x"), lambda: fs.pipe_file("b/x", b"1"), lambda: fs.ls("b")):
        with pytest.raises(FileNotFoundError):
            call()


def test_credentials_from_environment(s3store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``mv`` will do: only ``endpoint_url`` in the storage options, keys from the usual
    AWS environment variables (never in the config)."""
    import s3fs

    s3store.fs.pipe_file(s3store.p("k"), b"x")
    for k, v in s3store.server.env.items():
        monkeypatch.setenv(k, v)
    fs = s3fs.S3FileSystem(endpoint_url=s3store.server.endpoint_url, skip_instance_cache=True)
    assert fs.cat_file(s3store.p("k")) == b"x"
