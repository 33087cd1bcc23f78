"""Where the store is: `--store` / INSIGHTS_STORE, parsed once where the collector starts.

Unset (or `duckdb`) is the embedded DuckDB file in the data dir, unchanged. A ClickHouse server is
`clickhouse://user@host:8123/database` (HTTP) or `clickhouses://user@host:8443/database` (HTTPS),
with `?cluster=NAME` when the database lives on a cluster (replicated tables, Distributed inserts)
and `?compress=false` for a server or proxy that refuses compressed request bodies (the test
stand-in, tests/clickhouse/chdb_server.py, is one; ClickHouse itself takes lz4 and zstd bodies).
The password comes only from INSIGHTS_STORE_PASSWORD: a URL is printed in logs, shown by `ps` and
kept in shell history, so one that carries a password is refused, saying where it goes instead.

The client is clickhouse-connect's HTTP client: no session (the store's threads share a server,
not a session; a session would serialise them), compression offered to the server (it answers
with one it has; inserts go lz4 or zstd), and nothing else: the client sends no usage data anywhere.
"""

from __future__ import annotations

import os
import re
import threading
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
    compress: bool = True
    password: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        """The location as the user wrote it, without the password: safe to print."""
        scheme = "clickhouses" if self.secure else "clickhouse"
        params = ([f"cluster={self.cluster}"] if self.cluster else []) + ([] if self.compress else ["compress=false"])
        query = "?" + "&".join(params) if params else ""
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}{query}"

    def client(self, **settings: Any):
        """A new clickhouse-connect client for this location (one per thread: a client is not
        meant to run two queries at once). `settings` are ClickHouse settings for every query."""
        import clickhouse_connect  # imported here: the DuckDB path never loads it

        return clickhouse_connect.get_client(
            host=self.host, port=self.port, username=self.user, password=self.password,
            database=self.database, secure=self.secure, compress=self.compress,
            autogenerate_session_id=False, send_receive_timeout=SEND_RECEIVE_TIMEOUT_S,
            settings=settings or None,
        )


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
        cluster=params.get("cluster"), compress=params.get("compress", "true") != "false",
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
    if params.get("compress", "true") not in ("true", "false"):
        raise StoreLocationError(f"--store / {STORE_ENV}: compress must be true or false")
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
