"""The injection corpus (tests/kql/injection.txt): quotes, comments, `;`, unicode, bracketed
identifiers, control commands, other databases and internal names. No query may see another
service's rows, write, or fail with anything but a KqlError."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from collector.kql import KqlError, run_query

from .store import build

CORPUS = [line for line in (Path(__file__).parent / "injection.txt").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
FOREIGN = ("secret of b", "bee", "b1", "p9", "op9", "KeyError")


@pytest.fixture(scope="module")
def con():
    connection = build()
    yield connection
    connection.close()


def _snapshot(con) -> list:
    tables = con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()
    counts = [con.execute(f'SELECT count(*), count(DISTINCT _service) FROM "{t}"').fetchone()
              for (t,) in tables]
    return [tables, counts]


@pytest.mark.parametrize("query", CORPUS)
def test_query_stays_in_its_service_and_reads_only(con, query):
    before = _snapshot(con)
    try:
        result = run_query(con.cursor(), query, services=["a"], timeout_s=10)
    except KqlError as error:
        assert error.code and error.message
        assert "Binder Error" not in str(error) and "Catalog Error" not in str(error)
    else:
        text = orjson.dumps(result.rows).decode()
        assert not any(marker in text for marker in FOREIGN), text[:500]
        names = [name for name, _ in result.columns]
        assert "_service" not in names and "_seq" not in names
        assert "_service" not in text and "_seq" not in text
    assert _snapshot(con) == before


def test_admin_sees_every_service_but_never_internal_columns(con):
    result = run_query(con.cursor(), "union withsource=T traces, requests | summarize count() by T",
                       services=None)
    assert sorted(result.rows) == [["requests", 5], ["traces", 4]]
    assert all(name not in ("_service", "_seq") for name, _ in
               run_query(con.cursor(), "traces | take 1", services=None).columns)


def test_no_services_means_no_rows(con):
    assert run_query(con.cursor(), "traces | count", services=[]).rows == [[0]]
