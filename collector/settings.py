"""The collector's settings, read from the environment once, where the process starts.

Everything below `create_app` receives them instead of looking at `os.environ` itself, so a test or
an embedding program states them in one place and nothing changes behind its back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from collector import admin_key
from collector.store.clickhouse import location as store_location
from collector.store.database import DEFAULT_MAX_PENDING_ROWS
from collector.store.pacing import CHECKPOINT_WAL_BYTES

DEFAULT_QUERY_TIMEOUT_S = 30.0
DEFAULT_HEADER_TIMEOUT_S = 10.0
"""A connection's request line and headers must arrive within this, or it is closed."""
DEFAULT_BODY_TIMEOUT_S = 60.0
"""A request's whole body must arrive within this (408 otherwise)."""


@dataclass(frozen=True)
class CollectorSettings:
    data_dir: Path
    public_url: str | None = None
    """The ingestion endpoint put in connection strings (default: the URL clients use)."""
    query_timeout_s: float = DEFAULT_QUERY_TIMEOUT_S
    memory_limit: str | None = None
    """DuckDB's memory_limit for all queries and the writer together (its default: 80% of RAM)."""
    max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS
    checkpoint_wal_bytes: int = CHECKPOINT_WAL_BYTES
    admin_key: str | None = None
    """The admin key; when None, the data dir's admin.key (made on first start)."""
    ingest_workers: int | None = None
    """Processes that prepare large bodies (None: one per CPU)."""
    ingest_spool: bool | None = None
    """Answer track requests once their rows are in the ingest spool (collector/store/spool.py);
    None: as `spools` decides."""
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    lookup_index: bool = True
    """Keep the lookup index that finds one request fast (collector/store/lookup_index.py);
    INSIGHTS_LOOKUP_INDEX=off drops it, and lookups scan."""
    max_connections: int | None = None
    """Open connections at most; beyond it the oldest idle one is closed (None: half the process's
    file descriptor limit, at most 4096)."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    """With both, the collector serves HTTPS only."""
    export_roots: tuple[Path, ...] = ()
    """Folders an export destination may lie under, besides the data dir."""
    export_allow_http: bool = False
    """Let export destinations be plain-http URLs (a local emulator such as Azurite); https otherwise."""
    store: store_location.ClickHouseLocation | None = None
    """Where telemetry goes: None for the embedded DuckDB file, else a ClickHouse database
    (INSIGHTS_STORE / --store, see collector/store/clickhouse/location.py)."""
    collector_id: int | None = None
    """This collector's id in `_seq` on a ClickHouse store (INSIGHTS_COLLECTOR_ID, 0-4095; random if
    None): collectors sharing a store should each have their own."""
    endpoint_host: str = "127.0.0.1"
    """The address this collector's endpoint routers listen on and that scoring URIs name
    (INSIGHTS_ENDPOINT_HOST): with collectors on several machines, one that the others' clients reach."""

    def __post_init__(self):
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both a certificate and its key (INSIGHTS_TLS_CERT and INSIGHTS_TLS_KEY)")
        for name in ("header_timeout_s", "body_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.collector_id is not None and not 0 <= self.collector_id <= 4095:
            raise ValueError("the collector id (INSIGHTS_COLLECTOR_ID) must be from 0 to 4095")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def allowed_export_roots(self) -> tuple[Path, ...]:
        """The data dir, and the folders `export_roots` adds."""
        return (self.data_dir, *self.export_roots)

    @property
    def spools(self) -> bool:
        """Whether the store runs the ingest spool: as set, else on unless a memory limit is. Under
        a limit the spool's faster intake fills DuckDB's share of it with rows not yet
        checkpointed sooner, and a heavy query's memory DuckDB does not count (a `make_set` over
        millions of values) then took the collector past its baseline plus the limit
        (tests/security/test_queries.py); without the spool it stayed within."""
        return self.ingest_spool if self.ingest_spool is not None else self.memory_limit is None

    @classmethod
    def from_env(cls, data_dir: Path, public_url: str | None = None,
                 environ: Mapping[str, str] = os.environ) -> CollectorSettings:
        """INSIGHTS_QUERY_TIMEOUT_S, INSIGHTS_MEMORY_LIMIT, INSIGHTS_MAX_PENDING_ROWS,
        INSIGHTS_CHECKPOINT_WAL_BYTES, INSIGHTS_API_KEY, INSIGHTS_INGEST_WORKERS,
        INSIGHTS_HEADER_TIMEOUT_S, INSIGHTS_BODY_TIMEOUT_S, INSIGHTS_MAX_CONNECTIONS,
        INSIGHTS_TLS_CERT, INSIGHTS_TLS_KEY, INSIGHTS_EXPORT_ROOTS (folders separated by os.pathsep)
        and INSIGHTS_EXPORT_ALLOW_HTTP (true/false), INSIGHTS_LOOKUP_INDEX (on/off), INSIGHTS_INGEST_SPOOL
        (on/off), INSIGHTS_STORE (with INSIGHTS_STORE_PASSWORD) and INSIGHTS_COLLECTOR_ID and
        INSIGHTS_ENDPOINT_HOST, each falling back to its default when unset."""
        def value(name: str) -> str | None:
            return environ.get(name) or None

        return cls(
            data_dir=Path(data_dir),
            public_url=public_url,
            query_timeout_s=float(environ.get("INSIGHTS_QUERY_TIMEOUT_S", DEFAULT_QUERY_TIMEOUT_S)),
            memory_limit=environ.get("INSIGHTS_MEMORY_LIMIT") or None,
            max_pending_rows=int(environ.get("INSIGHTS_MAX_PENDING_ROWS", DEFAULT_MAX_PENDING_ROWS)),
            checkpoint_wal_bytes=int(environ.get("INSIGHTS_CHECKPOINT_WAL_BYTES", CHECKPOINT_WAL_BYTES)),
            admin_key=environ.get(admin_key.ENV_VAR) or None,
            ingest_workers=int(environ["INSIGHTS_INGEST_WORKERS"]) if environ.get("INSIGHTS_INGEST_WORKERS") else None,
            header_timeout_s=float(value("INSIGHTS_HEADER_TIMEOUT_S") or DEFAULT_HEADER_TIMEOUT_S),
            body_timeout_s=float(value("INSIGHTS_BODY_TIMEOUT_S") or DEFAULT_BODY_TIMEOUT_S),
            lookup_index=(value("INSIGHTS_LOOKUP_INDEX") or "on").lower() not in ("off", "false", "0", "no"),
            ingest_spool=_switch(value("INSIGHTS_INGEST_SPOOL")),
            max_connections=int(connections) if (connections := value("INSIGHTS_MAX_CONNECTIONS")) else None,
            tls_cert=Path(cert) if (cert := value("INSIGHTS_TLS_CERT")) else None,
            tls_key=Path(key) if (key := value("INSIGHTS_TLS_KEY")) else None,
            export_roots=tuple(Path(p) for p in (value("INSIGHTS_EXPORT_ROOTS") or "").split(os.pathsep) if p),
            export_allow_http=bool(_switch(value("INSIGHTS_EXPORT_ALLOW_HTTP"))),
            store=store_location.parse(value(store_location.STORE_ENV), environ),
            collector_id=int(collector_id) if (collector_id := value("INSIGHTS_COLLECTOR_ID")) else None,
            endpoint_host=value("INSIGHTS_ENDPOINT_HOST") or "127.0.0.1",
        )


def _switch(text: str | None) -> bool | None:
    """An on/off variable: None when unset."""
    return None if text is None else text.strip().lower() in ("on", "true", "1", "yes")
