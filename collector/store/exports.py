"""What continuous export keeps in the store and reads from it: each service's settings, a checkpoint
per service and record type, the ranges of rows past it, and those rows written as NDJSON.

A checkpoint is the last exported `_seq`, not a timestamp: `_seq` is assigned at commit by the single
writer, so every row committed later has a larger one, however late or out of order its timestamp.
Before a blob is written its range and name are committed as the *pending* plan; after the blob is
published the checkpoint advances past it and the plan is cleared. A crash anywhere in between
leaves the plan, and the next run rewrites exactly that blob under exactly that name. (The order of
those steps is export's, in exporters/export.py; this module keeps the state they move.)

Reads take a cursor of their own; writes are operations handed to the single writer.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson

from collector.store import lookup_index, map_rollups
from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN, Table
from collector.store.writer import Writer

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

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class BlobRange:
    """The items of one blob: a service's rows of one type with first <= _seq <= last."""

    first: int
    last: int
    items: int


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


class ExportState:
    """The store's side of continuous export; its reads open a cursor each, its writes go through
    the single writer."""

    def __init__(self, reader: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]], writer: Writer):
        self._reader = reader
        self._writer = writer

    # settings -----------------------------------------------------------------------------------

    def load_settings(self) -> dict[str, dict]:
        with self._reader() as cursor:
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

    def checkpoints(self, service: str) -> dict[str, Checkpoint]:
        """The service's checkpoints by record type (types never exported are absent)."""
        with self._reader() as cursor:
            rows = cursor.execute(
                "SELECT record_type, seq, items, blobs, pending_first, pending_last, pending_items, pending_name, "
                "updated_at FROM export_checkpoints WHERE service = ?",
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

    # the rows past a checkpoint -----------------------------------------------------------------

    def next_range(self, table: Table, service: str, after: int, max_items: int) -> BlobRange | None:
        """Up to max_items of the service's rows past `after`, in `_seq` order; None if there are none."""
        with self._reader() as cursor:
            first, last, items = cursor.execute(
                f'SELECT min(s), max(s), count(*) FROM (SELECT "{SEQ_COLUMN}" AS s FROM "{table.name}" '
                f'WHERE "{SERVICE_COLUMN}" = ? AND "{SEQ_COLUMN}" > ? ORDER BY s LIMIT ?)',
                [service, after, max_items],
            ).fetchall()[0]
        return BlobRange(first, last, items) if items else None

    def count_after(self, table: Table, service: str, after: int) -> int:
        """The service's rows past `after`: the lag of a checkpoint."""
        with self._reader() as cursor:
            (count,) = cursor.execute(
                f'SELECT count(*) FROM "{table.name}" WHERE "{SERVICE_COLUMN}" = ? AND "{SEQ_COLUMN}" > ?',
                [service, after],
            ).fetchall()[0]
        return int(count)

    def write_ndjson(self, table: Table, service: str, span: BlobRange, path: Path) -> int:
        """Write the range's rows to `path` as NDJSON in the row format; the number of items written."""
        with self._reader() as cursor:
            return write_ndjson(cursor, table, service, span, path)

    def delete_expired(self, service: str, tables: list[str], cutoff: datetime, guarded: dict[str, str]) -> int:
        """Retention: delete the service's rows older than `cutoff` from `tables`, except, in a table
        `guarded` maps to a record type, rows that export has not yet delivered (past that type's
        checkpoint). The number of rows deleted. The map's rollups of those hours are rebuilt in
        the same commit (map_rollups.trim)."""
        def operation(con: duckdb.DuckDBPyConnection) -> int:
            deleted = sum(_delete(con, service, table, cutoff, guarded.get(table)) for table in tables)
            if deleted and {"requests", "dependencies"} & set(tables):
                map_rollups.trim(con, service, cutoff)
            return deleted
        return self._commit(operation)


def select_sql(table: Table) -> str:
    """The row-format SELECT for a table: every stored column, by name, in schema order, with the
    service and `_seq` range as placeholders ($1 service, $2 first, $3 last).

    A non-finite real (NaN or Infinity, which OTLP can carry) becomes null: JSON has no spelling
    for it, and DuckDB would write a bare `NaN` that no JSON parser, import included, accepts."""
    columns = []
    for column in table.columns:
        quoted = f'"{column.name}"'
        if column.kql_type == "datetime":
            columns.append(f"strftime({quoted}, '{TIMESTAMP_FORMAT}') AS {quoted}")
        elif column.kql_type == "real":
            columns.append(f"CASE WHEN isfinite({quoted}) THEN {quoted} END AS {quoted}")
        elif column.name == "itemType":
            columns.append(f"coalesce({quoted}, '{table.item_type}') AS {quoted}")
        else:
            columns.append(quoted)
    return (
        f'SELECT {", ".join(columns)} FROM "{table.name}" '
        f'WHERE "{SERVICE_COLUMN}" = $1 AND "{SEQ_COLUMN}" BETWEEN $2 AND $3'
    )


def write_ndjson(cursor: duckdb.DuckDBPyConnection, table: Table, service: str, span: BlobRange, path: Path) -> int:
    """Write the range's rows to `path` as NDJSON in the row format; the number of items written.

    DuckDB writes the JSON itself (`COPY ... TO (FORMAT json)`): dynamic columns are JSON-typed, so
    they come out as objects, and no row passes through Python; that is what makes several hundred
    thousand items per second possible on two cores. COPY takes no prepared parameters, so the
    placeholders are filled with literals: two integers, and the service name quoted (the registry
    allows only letters, digits and '-' anyway).
    """
    sql = select_sql(table)
    sql = sql.replace("$1", _literal(service)).replace("$2", str(int(span.first))).replace("$3", str(int(span.last)))
    target = str(path).replace("'", "''")
    (count,) = cursor.execute(f"COPY ({sql}) TO '{target}' (FORMAT json)").fetchall()[0]
    return int(count)


def _delete(con: duckdb.DuckDBPyConnection, service: str, table: str, cutoff: datetime, record_type: str | None) -> int:
    sql = f'DELETE FROM "{table}" WHERE "{SERVICE_COLUMN}" = ? AND "timestamp" < ?'
    params: list = [service, cutoff]
    if record_type is not None:
        sql += (
            f' AND "{SEQ_COLUMN}" <= coalesce((SELECT seq FROM export_checkpoints '
            "WHERE service = ? AND record_type = ?), 0)"
        )
        params += [service, record_type]
    deleted = con.execute(sql + f' RETURNING "{SEQ_COLUMN}"', params).fetchnumpy()[SEQ_COLUMN]
    lookup_index.forget(con, table, deleted)  # the same commit: see lookup_index
    return len(deleted)


def _checkpoint(row: tuple) -> Checkpoint:
    _, seq, items, blobs, first, last, pending_items, name, updated_at = row
    pending = Plan(BlobRange(first, last, pending_items), name) if name is not None else None
    return Checkpoint(seq=seq, items=items, blobs=blobs, pending=pending, updated_at=updated_at)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
