"""`insights store copy`: an embedded DuckDB store's telemetry rows into a ClickHouse store (its
services, alerts, endpoints, models and monitors: copy_state.py).

Each App Insights table is read from the DuckDB file (read-only, so no collector may have it open)
in `_seq` order, as Arrow record batches, and inserted into the same table in ClickHouse with
`insert_arrow`; nothing passes through Python rows. Rows keep their `_seq`: DuckDB's are small
integers, far below every `_seq` a ClickHouse writer makes (writer.py), so copied rows sort before
live ones and the export checkpoints kept in the data dir still point at the right rows.

Idempotent by `_seq` range: before a batch is inserted, ClickHouse counts its rows with `_seq`
between the batch's first and last. All there: skipped. None: inserted. Some (a copy interrupted
inside an insert that spanned several days' partitions, which ClickHouse does not make atomic):
that range is deleted and inserted again. So a second copy adds nothing, and an interrupted copy
resumes. The range check assumes one DuckDB store is copied into a database (two stores' `_seq`
ranges would overlap).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from collector.store.clickhouse.location import ClickHouseConnection
from collector.store.clickhouse.schema import delete_statement, quote
from collector.store.database import DB_FILENAME
from collector.store.schema import SEQ_COLUMN, TABLES, Table

BATCH_ROWS = 100_000


@dataclass
class CopyReport:
    table: str
    source_rows: int = 0
    inserted: int = 0
    skipped: int = 0


Progress = Callable[[str, int], None]
"""(table, rows done in this step): called after each batch."""


def source_counts(data_dir: Path) -> dict[str, int]:
    """Rows per table in the DuckDB store (for a progress bar's totals)."""
    with open_source(data_dir) as con:
        present = _tables(con)
        return {name: int(con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])  # type: ignore[index]
                for name in TABLES if name in present}


def copy_store(data_dir: Path, connection: ClickHouseConnection, progress: Progress = lambda table, rows: None,
               batch_rows: int = BATCH_ROWS) -> list[CopyReport]:
    """Copy every telemetry table of the DuckDB store in `data_dir` into `connection`'s database."""
    reports = []
    with open_source(data_dir) as con:
        present = _tables(con)
        for table in TABLES.values():
            if table.name in present:
                reports.append(_copy_table(con, table, connection, progress, batch_rows))
    return reports


def open_source(data_dir: Path) -> duckdb.DuckDBPyConnection:
    """The DuckDB store in `data_dir`, read-only (copy_state.py reads its state through this too)."""
    path = Path(data_dir) / DB_FILENAME
    if not path.exists():
        raise FileNotFoundError(f"no DuckDB store at {path}")
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as error:
        raise RuntimeError(f"cannot open {path} (is a collector running on it? stop it first): {error}") from None


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def _copy_table(con: duckdb.DuckDBPyConnection, table: Table, connection: ClickHouseConnection,
                progress: Progress, batch_rows: int) -> CopyReport:
    report = CopyReport(table.name)
    for batch in _batches(con, table, batch_rows):
        report.source_rows += batch.num_rows
        if _copy_batch(batch, table, connection):
            report.inserted += batch.num_rows
        else:
            report.skipped += batch.num_rows
        progress(table.name, batch.num_rows)
    return report


def _batches(con: duckdb.DuckDBPyConnection, table: Table, batch_rows: int) -> Iterator[pa.Table]:
    """The table's rows in `_seq` order, in batches typed as the store's Arrow schema (JSON as text)."""
    existing = {row[0] for row in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table.name]).fetchall()}
    fields = [field for field in table.arrow_schema if field.name in existing]
    columns = ", ".join(f'"{f.name}"::VARCHAR AS "{f.name}"' if f.name in _dynamic(table) else f'"{f.name}"'
                        for f in fields)
    schema = pa.schema(fields)
    reader = con.sql(f'SELECT {columns} FROM "{table.name}" ORDER BY "{SEQ_COLUMN}"').to_arrow_reader(batch_rows)
    pending: list[pa.RecordBatch] = []
    rows = 0
    for record_batch in reader:
        pending.append(record_batch)
        rows += record_batch.num_rows
        if rows >= batch_rows:
            yield pa.Table.from_batches(pending).cast(schema)
            pending, rows = [], 0
    if rows:
        yield pa.Table.from_batches(pending).cast(schema)


def _dynamic(table: Table) -> set[str]:
    return {c.name for c in table.columns if c.kql_type == "dynamic"}


def _copy_batch(batch: pa.Table, table: Table, connection: ClickHouseConnection) -> bool:
    """Insert the batch unless ClickHouse holds it already; True if it was inserted."""
    seqs = batch.column(SEQ_COLUMN)
    first, last = int(seqs[0].as_py()), int(seqs[-1].as_py())
    client = connection.client()
    name = f"{quote(connection.database)}.{quote(table.name)}"
    params = {"first": first, "last": last}
    span = f"{quote(SEQ_COLUMN)} BETWEEN {{first:Int64}} AND {{last:Int64}}"
    held = int(client.query(f"SELECT count() FROM {name} WHERE {span}", parameters=params).result_rows[0][0])
    if held == batch.num_rows:
        return False
    if held:
        client.command(delete_statement(connection.database, table.name, connection.cluster, span), parameters=params)
    client.insert_arrow(table.name, batch, database=connection.database, settings=connection.insert_settings)
    return True
