"""Where the store is: `--store` / INSIGHTS_STORE, parsed once where the collector starts.

Unset (or `duckdb`) is the embedded DuckDB file in the data dir, unchanged. A ClickHouse server is
`clickhouse://user@host:8123/database` (HTTP) or `clickhouses://user@host:8443/database` (HTTPS),
with `?cluster=NAME` when the database lives on a cluster (replicated tables, Distributed inserts)
and `?compress=true|false` to force insert compression on or off; by default (`auto`) it is on
when the server takes a compressed request body (ClickHouse does; a proxy may not, nor does the
test stand-in, tests/clickhouse/chdb_server.py), asked once per server with a tiny gzip request.
The password comes only from INSIGHTS_STORE_PASSWORD: a URL is printed in logs, shown by `ps` and
kept in shell history, so one that carries a password is refused, saying where it goes instead.

The client is clickhouse-connect's HTTP client: no session (the store's threads share a server,
not a session; a session would serialise them), compression as the server allows (responses in
an encoding it offers, inserts lz4 when it takes compressed bodies), and nothing else: the client sends no usage data anywhere.
"""

from __future__ import annotations

import base64
import gzip
import os
import re
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PASSWORD_ENV = "INSIGHTS_STORE_PASSWORD"
STORE_ENV = "INSIGHTS_STORE"
DUCKDB = "duckdb"
SCHEMES = {"clickhouse": False, "clickhouses": True}
"""URL scheme -> TLS."""
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
DEFAULT_DATABASE = "insights"
SEND_RECEIVE_TIMEOUT_S = 30
"""A request that has not answered by then fails (the writer's inserts rely on it: see writer.py)."""


class StoreLocationError(ValueError):
    """A --store value that names no store we can open; the message says what and where."""


@dataclass(frozen=True)
class ClickHouseLocation:
    host: str
    port: int
    database: str
    user: str = "default"
    secure: bool = False
    cluster: str | None = None
    compress: str = "auto"
    """auto, true or false: whether inserts are compressed (see the module docstring)."""
    password: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        """The location as the user wrote it, without the password: safe to print."""
        scheme = "clickhouses" if self.secure else "clickhouse"
        params = ([f"cluster={self.cluster}"] if self.cluster else []) + ([] if self.compress == "auto" else [f"compress={self.compress}"])
        query = "?" + "&".join(params) if params else ""
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}{query}"

    def client(self, **settings: Any):
        """A new clickhouse-connect client for this location (one per thread: a client is not
        meant to run two queries at once). `settings` are ClickHouse settings for every query."""
        import clickhouse_connect  # imported here: the DuckDB path never loads it

        return clickhouse_connect.get_client(
            host=self.host, port=self.port, username=self.user, password=self.password,
            database=self.database, secure=self.secure, compress=self.takes_compressed_bodies(),
            autogenerate_session_id=False, send_receive_timeout=SEND_RECEIVE_TIMEOUT_S,
            settings=settings or None,
        )

    def takes_compressed_bodies(self) -> bool:
        if self.compress != "auto":
            return self.compress == "true"
        key = (self.host, self.port, self.secure)
        if key not in _COMPRESSION:
            _COMPRESSION[key] = _probe_compression(self)
        return _COMPRESSION[key]


_COMPRESSION: dict[tuple[str, int, bool], bool] = {}
"""Per server: whether it took a compressed request body."""


def _probe_compression(location: ClickHouseLocation) -> bool:
    """POST a gzip-compressed `SELECT 1`: True if the server answered it."""
    scheme = "https" if location.secure else "http"
    token = base64.b64encode(f"{location.user}:{location.password}".encode()).decode()
    request = urllib.request.Request(
        f"{scheme}://{location.host}:{location.port}/", data=gzip.compress(b"SELECT 1"), method="POST",
        headers={"Content-Encoding": "gzip", "Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=SEND_RECEIVE_TIMEOUT_S) as response:  # noqa: S310 - the store's own URL
            return response.read().strip() == b"1"
    except OSError:  # an error answer (HTTPError), or none: insert uncompressed
        return False


def parse(value: str | None, environ: Mapping[str, str] = os.environ) -> ClickHouseLocation | None:
    """The ClickHouse location `value` names, or None for the embedded DuckDB store (unset, empty
    or `duckdb`). Raises StoreLocationError with a message naming the part that is wrong."""
    if value is None or not value.strip() or value.strip().lower() == DUCKDB:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in SCHEMES:
        raise StoreLocationError(
            f"--store / {STORE_ENV}: expected clickhouse://user@host:8123/database, clickhouses://... "
            f"for TLS, or {DUCKDB}; got scheme {parts.scheme or '(none)'!r}")
    if parts.password is not None:
        raise StoreLocationError(
            f"--store / {STORE_ENV}: the URL holds a password; put it in the {PASSWORD_ENV} "
            "environment variable instead (a URL shows in process listings, logs and shell history)")
    if not parts.hostname:
        raise StoreLocationError(f"--store / {STORE_ENV}: the URL names no host")
    try:
        port = parts.port or (8443 if SCHEMES[parts.scheme] else 8123)
    except ValueError:
        raise StoreLocationError(f"--store / {STORE_ENV}: the port is not a number from 1 to 65535") from None
    params = _params(parts.query)
    return ClickHouseLocation(
        host=parts.hostname, port=port, database=_database(parts.path),
        user=unquote(parts.username) if parts.username else "default", secure=SCHEMES[parts.scheme],
        cluster=params.get("cluster"), compress=params.get("compress", "auto"),
        password=environ.get(PASSWORD_ENV, ""),
    )


def _database(path: str) -> str:
    name = path.strip("/") or DEFAULT_DATABASE
    if not _NAME.match(name):
        raise StoreLocationError(
            f"--store / {STORE_ENV}: database {name[:64]!r} is not a plain name (letters, digits, '_')")
    return name


def _params(query: str) -> dict[str, str]:
    params = {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
    unknown = sorted(set(params) - {"cluster", "compress"})
    if unknown:
        raise StoreLocationError(
            f"--store / {STORE_ENV}: unknown URL parameter {unknown[0][:40]!r} (known: cluster, compress)")
    if "cluster" in params and not _NAME.match(params["cluster"]):
        raise StoreLocationError(f"--store / {STORE_ENV}: cluster {params['cluster'][:64]!r} is not a plain name")
    if params.get("compress", "auto") not in ("auto", "true", "false"):
        raise StoreLocationError(f"--store / {STORE_ENV}: compress must be auto, true or false")
    return params


class ClickHouseConnection:
    """What the store's parts (writer, retention, KQL engine, migrations) share: the database, the
    cluster if any, and a client per thread (a clickhouse-connect client runs one query at a time).

    Made from a location (`at`), or from any client factory: tests drive the same code through
    clickhouse-connect's in-process chdb backend."""

    def __init__(self, factory: Callable[[], Any], database: str, cluster: str | None = None):
        self._factory = factory
        self.database = database
        self.cluster = cluster
        self._local = threading.local()

    @classmethod
    def at(cls, location: ClickHouseLocation) -> ClickHouseConnection:
        return cls(location.client, location.database, location.cluster)

    def client(self) -> Any:
        """This thread's client, made on first use."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._factory()
        return client

    def discard_client(self) -> None:
        """Forget this thread's client after a transport error; the next call makes a new one."""
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - a broken client may refuse even this
                pass

    @property
    def insert_settings(self) -> dict[str, Any]:
        """Settings of every telemetry insert: synchronous (the insert returns once its parts are
        written, never from an async buffer), and on a cluster through the Distributed table in the
        foreground and acknowledged by a majority of replicas."""
        settings: dict[str, Any] = {"async_insert": 0}
        if self.cluster:
            settings.update(distributed_foreground_insert=1, insert_quorum="auto", insert_quorum_parallel=1)
        return settings
