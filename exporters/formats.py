"""The continuous-export format: blob names in the App Insights layout, and NDJSON bodies in the row
format of DESIGN.md (the one `insights import` reads back).

DuckDB writes the JSON itself (`COPY ... TO (FORMAT json)`): dynamic columns are JSON-typed, so they
come out as objects, and no row passes through Python; that is what makes several hundred thousand
items per second possible on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN, Table

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class BlobRange:
    """The items of one blob: a service's rows of one type with first <= _seq <= last."""

    first: int
    last: int
    items: int


def blob_name(service: str, instrumentation_key: str, record_type: str, span: BlobRange, written: datetime) -> str:
    """`{service}_{ikey}/{Type}/{yyyy-MM-dd}/{HH}/{blobId}_{yyyyMMdd_HHmmss}.blob`.

    App Insights uses a random GUID as blobId; ours is the `_seq` range, so the same range always
    gets the same name and a re-export after a crash overwrites instead of duplicating. `written`
    is fixed when the range is planned, for the same reason.
    """
    blob_id = f"{span.first:016d}-{span.last:016d}"
    return (
        f"{service}_{instrumentation_key.replace('-', '')}/{record_type}/"
        f"{written:%Y-%m-%d}/{written:%H}/{blob_id}_{written:%Y%m%d_%H%M%S}.blob"
    )


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
    """Write the range's rows to `path` as NDJSON; the number of items written.

    COPY takes no prepared parameters, so the placeholders are filled with literals: two integers,
    and the service name quoted (the registry allows only letters, digits and '-' anyway).
    """
    sql = select_sql(table)
    sql = sql.replace("$1", _literal(service)).replace("$2", str(int(span.first))).replace("$3", str(int(span.last)))
    target = str(path).replace("'", "''")
    (count,) = cursor.execute(f"COPY ({sql}) TO '{target}' (FORMAT json)").fetchone()
    return int(count)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
