"""What model monitoring keeps in the store: monitor definitions, frozen reference sketches, the
collected feature values a run reads, and the results it writes (`modelMonitorResults`).

Definitions and sketches are JSON documents owned by monitoring/ (this module does not look
inside them). Collected values are read straight from `modelData`'s JSON with one parse per row
(`json_extract_string` with a list of paths), numbers cast by DuckDB, so a run over a million rows
never builds a Python object per value. Feature names reach SQL only as bound parameters (the JSON
paths), never as text in the statement.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from datetime import UTC, datetime

import duckdb
import orjson
import pyarrow as pa

from collector.store.schema import SERVICE_COLUMN, TABLES
from collector.store.writer import Writer

DDL = (
    """CREATE TABLE IF NOT EXISTS model_monitors (
        service VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        definition JSON NOT NULL,
        created_at TIMESTAMP NOT NULL,
        last_window_end TIMESTAMP,
        PRIMARY KEY (service, name)
    )""",
    """CREATE TABLE IF NOT EXISTS monitor_references (
        service VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        sketch JSON NOT NULL,
        rows BIGINT NOT NULL,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (service, name)
    )""",
)

RESULTS = TABLES["modelMonitorResults"]


def json_path(feature: str) -> str:
    """The JSON path of a top-level key, quoted (a key may hold dots or spaces)."""
    return '$."' + feature.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MonitorState:
    def __init__(self, reader: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]], writer: Writer):
        self._reader = reader
        self._writer = writer

    # monitors -----------------------------------------------------------------------------------

    def save_monitor(self, service: str, name: str, definition: dict) -> Future:
        text = orjson.dumps(definition).decode()
        return self._writer.write(operation=lambda con: con.execute(
            "INSERT INTO model_monitors VALUES (?, ?, ?, ?, NULL) ON CONFLICT (service, name) DO UPDATE SET "
            "definition = excluded.definition", [service, name, text, _now()]))

    def monitors(self, service: str | None = None) -> list[dict]:
        """Definitions (with `service`, `created_at`, `last_window_end`), of one service or all."""
        sql = "SELECT service, name, definition, created_at, last_window_end FROM model_monitors"
        params: list = []
        if service is not None:
            sql += " WHERE service = ?"
            params.append(service)
        with self._reader() as cursor:
            rows = cursor.execute(sql + " ORDER BY service, name", params).fetchall()
        return [{**orjson.loads(definition), "service": svc, "name": name, "created_at": created,
                 "last_window_end": last} for svc, name, definition, created, last in rows]

    def monitor(self, service: str, name: str) -> dict | None:
        return next((m for m in self.monitors(service) if m["name"] == name), None)

    def delete_monitor(self, service: str, name: str) -> Future:
        return self._writer.write(operation=lambda con: con.execute(
            "DELETE FROM model_monitors WHERE service = ? AND name = ? RETURNING name", [service, name]).fetchall())

    def mark_window(self, service: str, name: str, window_end: datetime) -> Future:
        return self._writer.write(operation=lambda con: con.execute(
            "UPDATE model_monitors SET last_window_end = greatest(coalesce(last_window_end, ?), ?) "
            "WHERE service = ? AND name = ?", [window_end, window_end, service, name]))

    # references ---------------------------------------------------------------------------------

    def save_reference(self, service: str, name: str, sketch: dict, rows: int) -> Future:
        text = orjson.dumps(sketch).decode()
        return self._writer.write(operation=lambda con: con.execute(
            "INSERT INTO monitor_references VALUES (?, ?, ?, ?, ?) ON CONFLICT (service, name) DO UPDATE SET "
            "sketch = excluded.sketch, rows = excluded.rows, created_at = excluded.created_at",
            [service, name, text, rows, _now()]))

    def reference(self, service: str, name: str) -> dict | None:
        with self._reader() as cursor:
            row = cursor.execute("SELECT sketch FROM monitor_references WHERE service = ? AND name = ?",
                                 [service, name]).fetchone()
        return orjson.loads(row[0]) if row else None

    def references(self, service: str) -> list[dict]:
        with self._reader() as cursor:
            rows = cursor.execute("SELECT name, rows, created_at FROM monitor_references WHERE service = ? ORDER BY name",
                                  [service]).fetchall()
        return [{"name": name, "rows": count, "created_at": created} for name, count, created in rows]

    def delete_reference(self, service: str, name: str) -> Future:
        return self._writer.write(operation=lambda con: con.execute(
            "DELETE FROM monitor_references WHERE service = ? AND name = ? RETURNING name", [service, name]).fetchall())

    # collected values ---------------------------------------------------------------------------

    def feature_names(self, service: str, collection: str, start: datetime, end: datetime, limit: int = 1000) -> list[str]:
        """The keys of the window's first rows: the features when a monitor names none."""
        with self._reader() as cursor:
            rows = cursor.execute(
                'SELECT DISTINCT unnest(json_keys("data")) FROM (SELECT "data" FROM "modelData" '
                f'WHERE "{SERVICE_COLUMN}" = ? AND collection = ? AND "timestamp" >= ? AND "timestamp" < ? '
                "AND json_type(\"data\") = 'OBJECT' LIMIT ?)", [service, collection, start, end, limit]).fetchall()
        return sorted(row[0] for row in rows)

    def collected(self, service: str, collection: str, start: datetime, end: datetime,
                  numerical: list[str], categorical: list[str]) -> pa.Table:
        """The window's rows of `collection`: per numerical feature `n{i}` (the number, NaN when
        absent or not a number) and `t{i}` (true when present but not a number); per categorical
        feature `c{j}` (the value as text, null when absent).

        One `json_transform` parses each row once into typed fields (text that is not a number is
        null there); only where a number came out null is the raw value looked at again, to tell
        a missing value from a type error."""
        features = [*numerical, *categorical]
        structure = orjson.dumps({f: ("DOUBLE" if i < len(numerical) else "VARCHAR")
                                  for i, f in enumerate(features)}).decode() if features else '{"_": "VARCHAR"}'
        columns, paths = [], []
        for i, feature in enumerate(numerical):
            columns.append(f"coalesce(struct_extract_at(s, {i + 1}), 'NaN'::DOUBLE) AS n{i}")
            columns.append(f"coalesce(CASE WHEN struct_extract_at(s, {i + 1}) IS NULL THEN "
                           f"json_extract_string(d, ?) IS NOT NULL END, false) AS t{i}")
            paths.append(json_path(feature))
        for j in range(len(categorical)):
            columns.append(f"struct_extract_at(s, {len(numerical) + j + 1}) AS c{j}")
        sql = (f'SELECT {", ".join(columns) or "1 AS none"} FROM (SELECT json_transform("data", ?) AS s, "data" AS d '
               f'FROM "modelData" WHERE "{SERVICE_COLUMN}" = ? AND collection = ? AND "timestamp" >= ? AND "timestamp" < ?)')
        with self._reader() as cursor:
            return cursor.sql(sql, params=[*paths, structure, service, collection, start, end]).to_arrow_table()

    # results ------------------------------------------------------------------------------------

    def write_results(self, service: str, rows: list[dict]) -> Future:
        """Result rows (the modelMonitorResults columns, timestamps as epoch microseconds)."""
        stored = [{**row, SERVICE_COLUMN: service, "itemType": RESULTS.item_type} for row in rows]
        return self._writer.write({RESULTS.name: RESULTS.to_arrow(stored)})

    def results(self, service: str, monitor: str, since: datetime | None = None, limit: int = 10_000) -> list[dict]:
        names = RESULTS.column_names
        with self._reader() as cursor:
            rows = cursor.execute(
                f'SELECT {", ".join(_quoted(n) for n in names)} FROM "{RESULTS.name}" WHERE "{SERVICE_COLUMN}" = ? '
                'AND monitor = ? AND "windowEnd" >= coalesce(?, TIMESTAMP \'1970-01-01\') '
                'ORDER BY "windowEnd" DESC, feature, metric LIMIT ?', [service, monitor, since, limit]).fetchall()
        return [dict(zip(names, row, strict=True)) for row in rows]


def _quoted(name: str) -> str:
    return f'"{name}"'


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
