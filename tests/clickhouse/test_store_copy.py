"""`insights store copy`: a DuckDB store filled through a real collector, copied into ClickHouse (the
stand-in), row for row; a second copy adds nothing."""

import duckdb
import pytest
from collector_process import CollectorProcess
from export.items import lines, mixed_items
from store_helpers import connection, insights, migrated_url

from collector.store.clickhouse.copy import copy_store
from collector.store.database import DB_FILENAME
from collector.store.schema import TABLES

ITEMS = 600


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A data dir whose DuckDB store holds ITEMS items over three days, imported through the collector."""
    collector = CollectorProcess(tmp_path_factory.mktemp("duckdb-store") / "data").start()
    try:
        service = collector.create_service("copy")["name"]
        answer = collector.import_rows(service, lines(mixed_items(ITEMS)))
        assert answer.get("imported", answer) == ITEMS, answer
    finally:
        collector.stop()
    return collector.data_dir


def _duckdb_rows(data_dir, table: str) -> dict[str, tuple]:
    with duckdb.connect(str(data_dir / DB_FILENAME), read_only=True) as con:
        names = ", ".join(f'"{c}"' for c in TABLES[table].column_names + ["_service", "_seq"])
        return {row[-1]: row for row in con.execute(f'SELECT {names} FROM "{table}"').fetchall()}


def _clickhouse_rows(conn, table: str) -> dict[int, tuple]:
    names = ", ".join(f"`{c}`" for c in TABLES[table].column_names + ["_service", "_seq"])
    return {row[-1]: row for row in conn.client().query(f"SELECT {names} FROM {conn.database}.`{table}`").result_rows}


def test_store_copy_moves_every_row_once(clickhouse_server, filled):
    url = migrated_url(clickhouse_server, "copy")
    conn = connection(clickhouse_server, url)
    first = insights(clickhouse_server, "store", "copy", "--from", str(filled), "--store", url)
    assert first.returncode == 0, first.stderr
    assert f"copied {ITEMS} rows, skipped 0" in first.stdout

    for table in ("requests", "traces", "dependencies", "exceptions", "customEvents", "customMetrics"):
        source, copied = _duckdb_rows(filled, table), _clickhouse_rows(conn, table)
        assert len(source) == len(copied) == ITEMS // 6
        assert copied == source  # every column, JSON text byte for byte, timestamps to the microsecond

    again = copy_store(filled, conn)  # what `insights store copy` runs, in this process
    assert sum(r.inserted for r in again) == 0 and sum(r.skipped for r in again) == ITEMS
    assert sum(len(_clickhouse_rows(conn, table)) for table in TABLES) == ITEMS

    # A copy interrupted inside an insert left part of a range: the next copy redoes that range.
    conn.client().command(f"DELETE FROM {conn.database}.requests WHERE _seq % 3 = 0")
    resumed = {r.table: r for r in copy_store(filled, conn)}
    assert resumed["requests"].inserted == ITEMS // 6 and resumed["traces"].skipped == ITEMS // 6
    assert _clickhouse_rows(conn, "requests") == _duckdb_rows(filled, "requests")


def test_store_copy_refuses_an_unmigrated_store(clickhouse_server, filled):
    done = insights(clickhouse_server, "store", "copy", "--from", str(filled), "--store", clickhouse_server.fresh_url("nomig"))
    assert done.returncode == 1
    assert "insights store migrate" in done.stderr
