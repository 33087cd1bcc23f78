"""Export state in DuckDB: each service's settings, and per service and record type a checkpoint.

A checkpoint is the last exported `_seq`, not a timestamp: `_seq` is assigned at commit by the single
writer, so every row committed later has a larger one, however late or out of order its timestamp.
Before a blob is written its range and name are committed as the *pending* plan; after the blob is
published the checkpoint advances past it and the plan is cleared. A crash anywhere in between
leaves the plan, and the next run rewrites exactly that blob under exactly that name.

Reads use the caller's cursor; writes are operations handed to the single writer.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import orjson

from collector.store.writer import Writer
from exporters.formats import BlobRange

DDL = (
    """CREATE TABLE IF NOT EXISTS export_settings (
        service VARCHAR PRIMARY KEY,
        settings JSON NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS export_checkpoints (
        service VARCHAR NOT NULL,
        record_type VARCHAR NOT NULL,
        seq BIGINT NOT NULL,
        items BIGINT NOT NULL,
        blobs BIGINT NOT NULL,
        pending_first BIGINT,
        pending_last BIGINT,
        pending_items BIGINT,
        pending_name VARCHAR,
        updated_at TIMESTAMP NOT NULL,
        PRIMARY KEY (service, record_type)
    )""",
)


@dataclass(frozen=True)
class Plan:
    """A blob about to be written: its range and its name, both fixed before writing."""

    span: BlobRange
    name: str


@dataclass(frozen=True)
class Checkpoint:
    seq: int = 0
    items: int = 0
    blobs: int = 0
    pending: Plan | None = None
    updated_at: datetime | None = None


class Checkpoints:
    def __init__(self, writer: Writer):
        self._writer = writer

    def create_tables(self) -> None:
        self._commit(lambda con: [con.execute(ddl) for ddl in DDL])

    # settings -----------------------------------------------------------------------------------

    @staticmethod
    def load_settings(cursor: duckdb.DuckDBPyConnection) -> dict[str, dict]:
        rows = cursor.execute("SELECT service, settings FROM export_settings").fetchall()
        return {service: orjson.loads(settings) for service, settings in rows}

    def save_settings(self, service: str, settings: dict) -> Future:
        text = orjson.dumps(settings).decode()
        return self._writer.write(operation=lambda con: con.execute(
            "INSERT INTO export_settings VALUES (?, ?, ?) "
            "ON CONFLICT (service) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
            [service, text, _now()],
        ))

    # checkpoints --------------------------------------------------------------------------------

    @staticmethod
    def load(cursor: duckdb.DuckDBPyConnection, service: str) -> dict[str, Checkpoint]:
        """The service's checkpoints by record type (types never exported are absent)."""
        rows = cursor.execute(
            "SELECT record_type, seq, items, blobs, pending_first, pending_last, pending_items, pending_name, updated_at "
            "FROM export_checkpoints WHERE service = ?",
            [service],
        ).fetchall()
        return {row[0]: _checkpoint(row) for row in rows}

    def plan(self, service: str, record_type: str, current: Checkpoint, plan: Plan) -> None:
        """Commit the plan before the blob is written, so a crash rewrites this blob, not another."""
        span = plan.span
        self._commit(lambda con: con.execute(
            "INSERT INTO export_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (service, record_type) DO UPDATE SET pending_first = excluded.pending_first, "
            "pending_last = excluded.pending_last, pending_items = excluded.pending_items, "
            "pending_name = excluded.pending_name, updated_at = excluded.updated_at",
            [service, record_type, current.seq, current.items, current.blobs,
             span.first, span.last, span.items, plan.name, _now()],
        ))

    def advance(self, service: str, record_type: str, plan: Plan, items: int) -> None:
        """Past the published blob: the checkpoint moves to its last `_seq` and the plan is cleared.
        Only the plan that was written may be cleared; anything else would skip or repeat a range."""
        updated = self._commit(lambda con: con.execute(
            "UPDATE export_checkpoints SET seq = ?, items = items + ?, blobs = blobs + 1, pending_first = NULL, "
            "pending_last = NULL, pending_items = NULL, pending_name = NULL, updated_at = ? "
            "WHERE service = ? AND record_type = ? AND pending_name = ?",
            [plan.span.last, items, _now(), service, record_type, plan.name],
        ).fetchone()[0])
        if updated != 1:
            raise RuntimeError(f"checkpoint of {service}/{record_type} has no pending plan {plan.name}")

    def _commit(self, operation):
        """Run `operation` in the writer's next commit and wait; its result."""
        return self._writer.write(operation=operation).result()


def _checkpoint(row: tuple) -> Checkpoint:
    _, seq, items, blobs, first, last, pending_items, name, updated_at = row
    pending = Plan(BlobRange(first, last, pending_items), name) if name is not None else None
    return Checkpoint(seq=seq, items=items, blobs=blobs, pending=pending, updated_at=updated_at)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
