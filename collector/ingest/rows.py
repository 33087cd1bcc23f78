"""Import: rows in the format of DESIGN.md (one JSON object per line, a table's columns by name,
`itemType` naming the table, `timestamp` ISO 8601 UTC, dynamic columns as JSON values), the format
continuous export writes, so exported telemetry loads back losslessly. A bad line is reported by
its number and spoils nothing else."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import orjson
import pyarrow as pa

from collector.ingest.item_ids import item_ids
from collector.ingest.values import ItemError, as_int, dumps_dynamic, finite, parse_time
from collector.store.schema import SERVICE_COLUMN, TABLE_BY_ITEM_TYPE, TABLES, Table

_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "real": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
}
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_TYPE_NAMES = {"string": "a string", "int": "an integer", "long": "an integer", "real": "a number", "bool": "true or false"}


@dataclass
class PreparedRows:
    """An import body made into Arrow tables, with what went wrong by line number."""

    lines: int = 0
    errors: list[dict] = field(default_factory=list)
    tables: dict[str, pa.Table] = field(default_factory=dict)
    stats: Counter = field(default_factory=Counter)
    duplicates: int = 0
    """Good lines not stored because their item (by itemId) is stored already, or came earlier in the body."""
    service: str = ""

    @property
    def imported(self) -> int:
        return self.lines - len(self.errors) - self.duplicates

    def item_ids(self) -> dict[str, list[str]]:
        """Each table's itemIds, to ask the store which it holds already."""
        return {name: table.column("itemId").to_pylist() for name, table in self.tables.items()}

    def drop_stored(self, stored: dict[str, set[str]]) -> None:
        """Leave out the rows whose itemId the service holds already (`stored`, by table) or that
        repeat one earlier in the body: the same item imported twice is stored once."""
        for name, table in list(self.tables.items()):
            seen = set(stored.get(name, ()))
            keep = []
            for item_id in table.column("itemId").to_pylist():
                keep.append(item_id not in seen)
                seen.add(item_id)
            dropped = keep.count(False)
            if dropped:
                self.duplicates += dropped
                kept = table.filter(pa.array(keep, pa.bool_()))
                if kept.num_rows:
                    self.tables[name] = kept
                else:
                    del self.tables[name]
        self.stats[(self.service, "imported")] = self.imported


def prepare_rows(data: bytes, service: str) -> PreparedRows:
    """The service's rows of an NDJSON body; lines that are not rows become errors."""
    prepared = PreparedRows(service=service)
    rows: dict[str, list[dict]] = {}
    ids = item_ids()
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        prepared.lines += 1
        try:
            table, row = row_from_json(orjson.loads(line))
        except orjson.JSONDecodeError as error:
            prepared.errors.append({"line": number, "message": f"not valid JSON: {error}"})
            continue
        except ItemError as error:
            prepared.errors.append({"line": number, "message": str(error)})
            continue
        row[SERVICE_COLUMN] = service
        row.setdefault("appName", service)
        if not row.get("itemId"):
            row["itemId"] = next(ids)
        rows.setdefault(table.name, []).append(row)
    prepared.tables = {name: TABLES[name].to_arrow(table_rows) for name, table_rows in rows.items()}
    prepared.stats[(service, "imported")] = prepared.imported
    return prepared


def row_from_json(obj: object) -> tuple[Table, dict]:
    """The table and stored-form row of one parsed line; ItemError names the offending column."""
    if not isinstance(obj, dict):
        raise ItemError("line", "expected a JSON object")
    item_type = obj.get("itemType")
    table = TABLE_BY_ITEM_TYPE.get(item_type) if isinstance(item_type, str) else None
    if table is None:
        known = ", ".join(sorted(TABLE_BY_ITEM_TYPE))
        raise ItemError("itemType", f"expected one of {known}, got {str(item_type)[:40]!r}")
    columns = {c.name: c for c in table.columns}
    row: dict = {}
    for key, value in obj.items():
        column = columns.get(key)
        if column is None:
            raise ItemError(key, f"unknown column for table {table.name}")
        row[key] = _stored(column.kql_type, value, key)
    if row.get("timestamp") is None:
        raise ItemError("timestamp", "missing")
    return table, row


def _stored(kql_type: str, value: object, key: str) -> object:
    """The value as its column stores it, or an ItemError naming the column: the same bounds as
    ingestion (timestamps in years 1-9999, int 32-bit, real finite, dynamic nested at most
    MAX_NESTING deep), so that no line can fail the whole import."""
    if kql_type == "dynamic":
        return dumps_dynamic(orjson.loads(value) if isinstance(value, str) and value[:1] in "{[" else value, key)
    if value is None:
        return None
    if kql_type == "datetime":
        return parse_time(value, key)
    if not _CHECKS[kql_type](value):
        raise ItemError(key, f"expected {_TYPE_NAMES[kql_type]}, got {orjson.dumps(value).decode()[:40]}")
    if kql_type == "real":
        return finite(value, key)
    if kql_type == "int":
        return as_int(value, key, key)
    if kql_type == "long" and not _LONG_MIN <= value <= _LONG_MAX:
        raise ItemError(key, f"{value} does not fit a 64-bit integer")
    return value
