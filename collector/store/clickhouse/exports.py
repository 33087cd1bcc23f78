"""Continuous export's state in ClickHouse: store/exports.py's interface (settings, a checkpoint per
service and record type with its pending plan, the rows past it, those rows as NDJSON), shared by N
collectors so that whichever holds the export lease (leases.py) carries on where the last one
stopped.

Exactly once over N writers. The checkpoint is a `_seq`, and `_seq` values from N collectors
interleave: a row with a smaller `_seq` may become visible after one with a larger `_seq` (another
collector's insert still in flight). So export reads only below a *horizon*: writer.py's
`horizon(lag)`, the `_seq` of the wall clock `lag` seconds ago, below which every insert has landed
or been abandoned (inserts give up after INSERT_TIMEOUT_S; `lag` exceeds it plus the collectors'
clock skew). A checkpoint never passes the horizon, so no row can appear behind it later: every
acknowledged row is exported once, never skipped, never twice. Export runs `lag` behind the clock.

Fencing. A checkpoint row's version is (lease epoch, time): readers keep the row with the largest
(FINAL on a ReplacingMergeTree with that version), so the plan and advance of a holder that lost
its lease while paused cannot overwrite its successor's, whatever their clocks say. The steps'
order (plan, write, publish, advance) is exporters/export.py's, unchanged: a successor finding a
pending plan rewrites exactly that blob under that name.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Protocol

import orjson

from collector.store.clickhouse import control
from collector.store.clickhouse.writer import HORIZON_LAG_S, horizon
from collector.store.exports import BlobRange, Checkpoint, Plan
from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN, Table

HORIZON_ENV = "INSIGHTS_EXPORT_HORIZON_S"
"""Overrides HORIZON_LAG_S; lower it only where inserts are known to finish sooner (tests)."""

_CHECKPOINT_COLUMNS = ("record_type, seq, items, blobs, pending_first, pending_last, pending_items, pending_name, "
                       "updated_at")


class Retention(Protocol):
    def delete_expired(self, service: str, tables: list[str], cutoff: datetime, guards: dict[str, int]) -> int: ...


class ExportState:
    """The store's side of continuous export on ClickHouse (see the module docstring)."""

    def __init__(self, connection: control.Connection, retention: Retention,
                 horizon_lag_s: float | None = None) -> None:
        self._connection = connection
        self._retention = retention
        self.horizon_lag_s = float(os.environ.get(HORIZON_ENV, HORIZON_LAG_S)) if horizon_lag_s is None else horizon_lag_s
        self.fence: Callable[[], int] = lambda: 0
        """The epoch of the export lease this collector holds (its writes carry it); 0 without one."""

    # settings -----------------------------------------------------------------------------------

    def load_settings(self) -> dict[str, dict]:
        rows = self._query(f"SELECT service, settings FROM {self._table('export_settings')} FINAL")
        return {service: orjson.loads(settings) for service, settings in rows}

    def save_settings(self, service: str, settings: dict) -> Future:
        text = orjson.dumps(settings).decode()
        return control.submit(lambda: self._command(
            f"INSERT INTO {self._table('export_settings')} (service, settings, updated_at, version) "
            "SELECT {service:String}, {text:String}, now64(6), {version:UInt64}",
            {"service": service, "text": text, "version": time.time_ns() // 1000}))

    # checkpoints --------------------------------------------------------------------------------

    def checkpoints(self, service: str) -> dict[str, Checkpoint]:
        rows = self._query(f"SELECT {_CHECKPOINT_COLUMNS} FROM {self._table('export_checkpoints')} FINAL "
                           "WHERE service = {service:String}", {"service": service})
        return {row[0]: _checkpoint(row) for row in rows}

    def plan(self, service: str, record_type: str, current: Checkpoint, plan: Plan) -> None:
        """Store the plan before the blob is written, so a crash (or a successor) rewrites this blob."""
        self._put(service, record_type, current.seq, current.items, current.blobs, plan)

    def advance(self, service: str, record_type: str, plan: Plan, items: int) -> None:
        """Past the published blob: the checkpoint moves to its last `_seq` and the plan is cleared,
        only if the stored plan is the one written (else a successor has moved on: stop)."""
        current = self.checkpoints(service).get(record_type, Checkpoint())
        if current.pending is None or current.pending.name != plan.name:
            raise RuntimeError(f"checkpoint of {service}/{record_type} has no pending plan {plan.name}")
        self._put(service, record_type, plan.span.last, current.items + items, current.blobs + 1, None)

    def _put(self, service: str, record_type: str, seq: int, items: int, blobs: int, plan: Plan | None) -> None:
        span = plan.span if plan else None
        fence = int(self.fence())
        self._command(
            f"INSERT INTO {self._table('export_checkpoints')} (service, {_CHECKPOINT_COLUMNS}, fence, version) "
            "SELECT {service:String}, {type:String}, {seq:Int64}, {items:Int64}, {blobs:Int64}, "
            "{first:Nullable(Int64)}, {last:Nullable(Int64)}, {pending:Nullable(Int64)}, {name:Nullable(String)}, "
            "now64(6), {fence:UInt64}, {version:UInt128}",
            {"service": service, "type": record_type, "seq": seq, "items": items, "blobs": blobs,
             "first": span.first if span else None, "last": span.last if span else None,
             "pending": span.items if span else None, "name": plan.name if plan else None,
             "fence": fence, "version": (fence << 64) | (time.time_ns() // 1000)})

    # the rows past a checkpoint -----------------------------------------------------------------

    def horizon(self) -> int:
        """The `_seq` below which every row is final (see the module docstring)."""
        return horizon(self.horizon_lag_s)

    def next_range(self, table: Table, service: str, after: int, max_items: int) -> BlobRange | None:
        """Up to max_items of the service's rows past `after` and below the horizon, in `_seq` order."""
        ((first, last, items),) = self._query(
            f"SELECT min(s), max(s), count() FROM (SELECT `{SEQ_COLUMN}` AS s FROM {self._table(table.name)} "
            f"WHERE `{SERVICE_COLUMN}` = {{service:String}} AND s > {{after:Int64}} AND s < {{horizon:Int64}} "
            "ORDER BY s LIMIT {limit:UInt64})",
            {"service": service, "after": after, "horizon": self.horizon(), "limit": max_items})
        return BlobRange(int(first), int(last), int(items)) if items else None

    def count_after(self, table: Table, service: str, after: int) -> int:
        """The service's rows past `after` (stored, whether or not below the horizon yet): the lag."""
        ((count,),) = self._query(
            f"SELECT count() FROM {self._table(table.name)} WHERE `{SERVICE_COLUMN}` = {{service:String}} "
            f"AND `{SEQ_COLUMN}` > {{after:Int64}}", {"service": service, "after": after})
        return int(count)

    def write_ndjson(self, table: Table, service: str, span: BlobRange, path: Path) -> int:
        """Write the range's rows to `path` as NDJSON in the row format (store/exports.py's: the
        table's columns in schema order, ISO timestamps, dynamic columns as objects, non-finite reals
        as null); the number of items written."""
        arrow = self._connection.client().query_arrow(
            select_sql(table, self._table(table.name)),
            parameters={"service": service, "first": span.first, "last": span.last},
            settings=control.read_settings(self._connection))
        dynamic = {column.name for column in table.columns if column.kql_type == "dynamic"}
        with open(path, "wb") as out:
            for row in arrow.to_pylist():
                for name in dynamic:
                    if row[name] is not None:
                        row[name] = orjson.Fragment(row[name])
                out.write(orjson.dumps(row) + b"\n")
        return arrow.num_rows

    def delete_expired(self, service: str, tables: list[str], cutoff: datetime, guarded: dict[str, str]) -> int:
        """Retention (store/clickhouse/retention.py), each guarded table kept at or above its checkpoint."""
        checkpoints = self.checkpoints(service)
        guards = {table: checkpoints[record_type].seq if record_type in checkpoints else 0
                  for table, record_type in guarded.items()}
        return self._retention.delete_expired(service, tables, cutoff, guards)

    # plumbing -----------------------------------------------------------------------------------

    def _table(self, name: str) -> str:
        return control.table(self._connection, name)

    def _query(self, sql: str, parameters: dict | None = None) -> list:
        return self._connection.client().query(sql, parameters=parameters or {},
                                               settings=control.read_settings(self._connection)).result_rows

    def _command(self, sql: str, parameters: dict) -> None:
        self._connection.client().command(sql, parameters=parameters, settings=control.write_settings(self._connection))


def select_sql(table: Table, qualified: str) -> str:
    """The row-format SELECT of store/exports.py in ClickHouse SQL, for one service's `_seq` range."""
    columns = []
    for column in table.columns:
        quoted = f"`{column.name}`"
        if column.kql_type == "datetime":
            columns.append(f"formatDateTime({quoted}, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC') AS {quoted}")
        elif column.kql_type == "real":
            columns.append(f"if(isFinite({quoted}), {quoted}, NULL) AS {quoted}")
        elif column.name == "itemType":
            columns.append(f"coalesce({quoted}, '{table.item_type}') AS {quoted}")
        else:
            columns.append(quoted)
    return (f"SELECT {', '.join(columns)} FROM {qualified} WHERE `{SERVICE_COLUMN}` = {{service:String}} "
            f"AND `{SEQ_COLUMN}` BETWEEN {{first:Int64}} AND {{last:Int64}} ORDER BY `{SEQ_COLUMN}`")


def _checkpoint(row: tuple) -> Checkpoint:
    _, seq, items, blobs, first, last, pending_items, name, updated_at = row
    pending = Plan(BlobRange(first, last, pending_items), name) if name is not None else None
    return Checkpoint(seq=seq, items=items, blobs=blobs, pending=pending,
                      updated_at=updated_at.replace(tzinfo=None) if isinstance(updated_at, datetime) else updated_at)
