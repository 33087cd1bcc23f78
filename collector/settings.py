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
from collector.store.database import DEFAULT_MAX_PENDING_ROWS
from collector.store.writer import CHECKPOINT_WAL_BYTES

DEFAULT_QUERY_TIMEOUT_S = 30.0


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

    @classmethod
    def from_env(cls, data_dir: Path, public_url: str | None = None,
                 environ: Mapping[str, str] = os.environ) -> CollectorSettings:
        """INSIGHTS_QUERY_TIMEOUT_S, INSIGHTS_MEMORY_LIMIT, INSIGHTS_MAX_PENDING_ROWS,
        INSIGHTS_CHECKPOINT_WAL_BYTES, INSIGHTS_API_KEY and INSIGHTS_INGEST_WORKERS, each falling
        back to its default when unset."""
        return cls(
            data_dir=Path(data_dir),
            public_url=public_url,
            query_timeout_s=float(environ.get("INSIGHTS_QUERY_TIMEOUT_S", DEFAULT_QUERY_TIMEOUT_S)),
            memory_limit=environ.get("INSIGHTS_MEMORY_LIMIT") or None,
            max_pending_rows=int(environ.get("INSIGHTS_MAX_PENDING_ROWS", DEFAULT_MAX_PENDING_ROWS)),
            checkpoint_wal_bytes=int(environ.get("INSIGHTS_CHECKPOINT_WAL_BYTES", CHECKPOINT_WAL_BYTES)),
            admin_key=environ.get(admin_key.ENV_VAR) or None,
            ingest_workers=int(environ["INSIGHTS_INGEST_WORKERS"]) if environ.get("INSIGHTS_INGEST_WORKERS") else None,
        )
