"""Model monitoring's state in ClickHouse: store/monitors.py's MonitorState (same methods, same
return shapes), so that a monitor or reference created through one collector is seen by every other,
and runs read `modelData` where it is.

- Definitions and references are ReplacingMergeTree rows keyed by (service, name), each change a
  new row with a larger version (the writer's clock in microseconds), a delete a row with
  `is_deleted`; read with FINAL.
- `last_window_end` is not updated in place (ClickHouse has no UPDATE): each finished window is a
  row of `monitor_windows`, and the last one is their maximum. Rows carry the monitor's
  `created_at`, so a monitor deleted and created again starts with no window done, as on DuckDB.
- Results go to the `modelMonitorResults` telemetry table through the ClickHouse writer (KQL, the
  dashboard and alert rules read them there), and are read back with ClickHouse SQL.
- Collected values are read from `modelData`'s `data` (JSON text in a String column, schema.py)
  and come back as one Arrow table. Each row is parsed once (`JSONExtract` into a named Tuple of
  every feature's text; a row that is not an object has no features, although JSONExtract would
  read an array's items by position); only a value whose text is not a number (a boolean, null, an array,
  text) is looked at again with the type-aware JSON functions, as is a whole number in a
  categorical feature (was it written `100` or `100.0`?). The results are what store/monitors.py's
  `json_transform` gives on DuckDB: a JSON number or boolean is its value; a JSON string is cast
  to a number after trimming blanks (`"3.5"` is 3.5, `"abc"` a type error); null, a missing key,
  an array or an object are not numbers (null or absent count as missing, the others as type
  errors). As categories, a string is its text, a double prints as DuckDB prints it (`100.0`,
  `1.5`), anything else as its JSON text. Known difference: DuckDB also reads digits grouped with
  `_` in a string (`"1_000"`) as a number; ClickHouse does not. Feature names reach SQL only as
  bound parameters (the Tuple's type is one, its names quoted).
"""

from __future__ import annotations

from concurrent.futures import Future
from datetime import UTC, datetime

import orjson
import pyarrow as pa

from collector.store.clickhouse import control
from collector.store.clickhouse.schema import quote
from collector.store.monitors import RESULTS
from collector.store.schema import SERVICE_COLUMN
from collector.store.writer import Writer

TABLES: dict[str, control.TableSpec] = {
    "model_monitors": (
        "service String, name String, definition String, created_at DateTime64(6, 'UTC'), version UInt64, "
        "is_deleted UInt8", "ReplacingMergeTree", "version, is_deleted", "ORDER BY (service, name)"),
    "monitor_windows": (
        "service String, name String, created_at DateTime64(6, 'UTC'), window_end DateTime64(6, 'UTC')",
        "MergeTree", "", "ORDER BY (service, name, created_at, window_end)"),
    "monitor_references": (
        "service String, name String, sketch String CODEC(ZSTD(1)), rows Int64, created_at DateTime64(6, 'UTC'), "
        "version UInt64, is_deleted UInt8", "ReplacingMergeTree", "version, is_deleted", "ORDER BY (service, name)"),
}

_TIME = "DateTime64(6, 'UTC')"
_WINDOW = (f"{quote(SERVICE_COLUMN)} = {{service:String}} AND collection = {{collection:String}} "
           f"AND timestamp >= {{start:{_TIME}}} AND timestamp < {{end:{_TIME}}}")


class MonitorState:
    def __init__(self, connection: control.Connection, writer: Writer) -> None:
        self._connection = connection
        self._writer = writer

    # monitors -----------------------------------------------------------------------------------

    def save_monitor(self, service: str, name: str, definition: dict) -> Future:
        def save() -> None:
            current = self._monitor_row(service, name)
            created = current[1] if current else _now()
            self._put_monitor(service, name, orjson.dumps(definition).decode(), created, deleted=False)
        return control.submit(save)

    def monitors(self, service: str | None = None) -> list[dict]:
        """Definitions (with `service`, `created_at`, `last_window_end`), of one service or all."""
        where = "AND service = {service:String}" if service is not None else ""
        params = {"service": service} if service is not None else {}
        rows = self._query(f"SELECT service, name, definition, created_at FROM {self._table('model_monitors')} FINAL "
                           f"WHERE NOT is_deleted {where} ORDER BY service, name", params)
        windows = {(svc, name, created): last for svc, name, created, last in self._query(
            f"SELECT service, name, created_at, max(window_end) FROM {self._table('monitor_windows')} "
            f"WHERE 1 {where} GROUP BY service, name, created_at", params)}
        return [{**orjson.loads(definition), "service": svc, "name": name, "created_at": _naive(created),
                 "last_window_end": _naive(windows.get((svc, name, created)))}
                for svc, name, definition, created in rows]

    def monitor(self, service: str, name: str) -> dict | None:
        return next((m for m in self.monitors(service) if m["name"] == name), None)

    def delete_monitor(self, service: str, name: str) -> Future:
        """The future's result: [(name,)] if there was such a monitor, else []."""
        def delete() -> list[tuple[str]]:
            current = self._monitor_row(service, name)
            if current is None:
                return []
            self._put_monitor(service, name, current[0], current[1], deleted=True)
            return [(name,)]
        return control.submit(delete)

    def mark_window(self, service: str, name: str, window_end: datetime) -> Future:
        def mark() -> None:
            current = self._monitor_row(service, name)
            if current is not None:
                self._insert("monitor_windows", service=service, name=name, created_at=current[1],
                             window_end=_utc(window_end))
        return control.submit(mark)

    def _monitor_row(self, service: str, name: str) -> tuple[str, datetime] | None:
        """(definition, created_at) of the monitor as the store has it now."""
        rows = self._query(f"SELECT definition, created_at FROM {self._table('model_monitors')} FINAL "
                           "WHERE service = {service:String} AND name = {name:String} AND NOT is_deleted",
                           {"service": service, "name": name})
        return (rows[0][0], rows[0][1]) if rows else None

    def _put_monitor(self, service: str, name: str, definition: str, created: datetime, deleted: bool) -> None:
        self._insert("model_monitors", service=service, name=name, definition=definition, created_at=_utc(created),
                     version=_version(), is_deleted=int(deleted))

    # references ---------------------------------------------------------------------------------

    def save_reference(self, service: str, name: str, sketch: dict, rows: int) -> Future:
        text = orjson.dumps(sketch).decode()
        return control.submit(lambda: self._put_reference(service, name, text, rows, deleted=False))

    def reference(self, service: str, name: str) -> dict | None:
        rows = self._query(f"SELECT sketch FROM {self._table('monitor_references')} FINAL WHERE service = {{service:String}} "
                           "AND name = {name:String} AND NOT is_deleted", {"service": service, "name": name})
        return orjson.loads(rows[0][0]) if rows else None

    def references(self, service: str) -> list[dict]:
        rows = self._query(f"SELECT name, rows, created_at FROM {self._table('monitor_references')} FINAL "
                           "WHERE service = {service:String} AND NOT is_deleted ORDER BY name", {"service": service})
        return [{"name": name, "rows": count, "created_at": _naive(created)} for name, count, created in rows]

    def delete_reference(self, service: str, name: str) -> Future:
        def delete() -> list[tuple[str]]:
            if self.reference(service, name) is None:
                return []
            self._put_reference(service, name, "{}", 0, deleted=True)
            return [(name,)]
        return control.submit(delete)

    def _put_reference(self, service: str, name: str, sketch: str, rows: int, deleted: bool) -> None:
        self._insert("monitor_references", service=service, name=name, sketch=sketch, rows=rows, created_at=_utc(_now()),
                     version=_version(), is_deleted=int(deleted))

    # collected values ---------------------------------------------------------------------------

    def feature_names(self, service: str, collection: str, start: datetime, end: datetime, limit: int = 1000) -> list[str]:
        """The keys of the window's first rows: the features when a monitor names none."""
        rows = self._query(
            f"SELECT DISTINCT arrayJoin(JSONExtractKeys(d)) FROM (SELECT ifNull(data, '') AS d "
            f"FROM {self._table('modelData')} WHERE {_WINDOW} AND JSONType(d) = 'Object' LIMIT {{limit:UInt64}})",
            {"service": service, "collection": collection, "start": start, "end": end, "limit": limit})
        return sorted(row[0] for row in rows)

    def collected(self, service: str, collection: str, start: datetime, end: datetime,
                  numerical: list[str], categorical: list[str]) -> pa.Table:
        """The window's rows of `collection`, as store/monitors.py's: per numerical feature `n{i}`
        (the number, NaN when absent or not a number) and `t{i}` (true when present but not a
        number); per categorical feature `c{j}` (the value as text, null when absent)."""
        features = [*numerical, *categorical]
        params: dict = {"service": service, "collection": collection, "start": start, "end": end,
                        "shape": _shape(features), **{f"k{i}": f for i, f in enumerate(features)}}
        columns = []
        for i in range(len(numerical)):
            quick = f"toFloat64OrNull(trimBoth(tupleElement(x, {i + 1}), ' \\t\\n\\r'))"
            exact = _number(f"{{k{i}:String}}")
            columns.append(f"ifNull(if(isNotNull({quick}), {quick}, {exact}), nan) AS n{i}")
            columns.append(f"isNull({quick}) AND isNull({exact}) AND JSONType(d, {{k{i}:String}}) != 'Null' AS t{i}")
        for j in range(len(numerical), len(features)):
            text = f"tupleElement(x, {j + 1})"
            columns.append(f"if(match({text}, '^-?[0-9]+$') AND JSONType(d, {{k{j}:String}}) = 'Double', "
                           f"concat({text}, '.0'), {text}) AS c{j - len(numerical)}")
        sql = (f"SELECT {', '.join(columns) or '1 AS none'} FROM (SELECT ifNull(data, '') AS d, "
               f"JSONExtract(if(startsWith(trimLeft(d), '{{'), d, '{{}}'), {{shape:String}}) AS x FROM {self._table('modelData')} WHERE {_WINDOW})")
        table = self._connection.client().query_arrow(sql, parameters=params, use_strings=True,
                                                      settings=control.read_settings(self._connection))
        return _typed(table, len(numerical), len(categorical))

    # results ------------------------------------------------------------------------------------

    def write_results(self, service: str, rows: list[dict]) -> Future:
        """Result rows (the modelMonitorResults columns, timestamps as epoch microseconds), inserted
        into ClickHouse by the store's writer."""
        stored = [{**row, SERVICE_COLUMN: service, "itemType": RESULTS.item_type} for row in rows]
        return self._writer.write({RESULTS.name: RESULTS.to_arrow(stored)})

    def results(self, service: str, monitor: str, since: datetime | None = None, limit: int = 10_000) -> list[dict]:
        names = RESULTS.column_names
        rows = self._query(
            f"SELECT {', '.join(quote(n) for n in names)} FROM {self._table(RESULTS.name)} "
            f"WHERE {quote(SERVICE_COLUMN)} = {{service:String}} AND monitor = {{monitor:String}} "
            f"AND windowEnd >= {{since:{_TIME}}} ORDER BY windowEnd DESC, feature, metric LIMIT {{limit:UInt64}}",
            {"service": service, "monitor": monitor, "since": since or datetime(1970, 1, 1), "limit": limit})
        return [{name: _naive(value) if isinstance(value, datetime) else value
                 for name, value in zip(names, row, strict=True)} for row in rows]

    # plumbing -----------------------------------------------------------------------------------

    def _table(self, name: str) -> str:
        return control.table(self._connection, name)

    def _query(self, sql: str, parameters: dict) -> list:
        return self._connection.client().query(sql, parameters=parameters,
                                               settings=control.read_settings(self._connection)).result_rows

    def _insert(self, table: str, **row) -> None:
        """One row, sent in the request's body (a reference's sketches are too large for a URL)."""
        self._connection.client().insert(self._table(table), [list(row.values())], column_names=list(row),
                                         settings=control.write_settings(self._connection))


def _shape(features: list[str]) -> str:
    """The named Tuple type that JSONExtract reads every feature of a row into in one parse: each
    value's text (a string unescaped, anything else as its JSON text; null or absent: NULL)."""
    names = [f"`{f.replace(chr(92), chr(92) * 2).replace('`', chr(92) + '`')}` Nullable(String)" for f in features]
    return f"Tuple({', '.join(names) or '`_` Nullable(String)'})"


def _number(key: str) -> str:
    """A top-level JSON value of row `d` as a number, as DuckDB's json_transform(..., DOUBLE) makes it
    (only asked where the value's text is not a number: a boolean, null, an array, text)."""
    kind = f"JSONType(d, {key})"
    return (f"multiIf({kind} IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(d, {key}), "
            f"{kind} = 'Bool', toFloat64(JSONExtractBool(d, {key})), "
            f"{kind} = 'String', toFloat64OrNull(trimBoth(JSONExtractString(d, {key}), ' \\t\\n\\r')), NULL)")


def _typed(table: pa.Table, numerical: int, categorical: int) -> pa.Table:
    """The columns as the DuckDB store's (float64, bool, string), also when the window is empty."""
    fields = [*(f for i in range(numerical) for f in (pa.field(f"n{i}", pa.float64()), pa.field(f"t{i}", pa.bool_()))),
              *(pa.field(f"c{j}", pa.string()) for j in range(categorical))]
    if not fields:
        return table
    schema = pa.schema(fields)
    if table.num_rows == 0:  # an empty answer may come without its columns
        return schema.empty_table()
    return pa.table([table.column(f.name).cast(f.type) for f in fields], schema=schema)


def _naive(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _version() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)
