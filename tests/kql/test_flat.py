"""A filter over one table scoped flat (collector/kql/flat.py) answers what the subquery form of
scope.apply answers, row for row, and never reaches a column the subquery hid."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from collector.kql import KqlError, flat, run_query
from collector.kql import scope as scoping
from collector.kql.compiler import compile_kql

from .store import build

NOW = datetime(2026, 1, 1, 0, 10)

QUERIES = [
    'traces | where customDimensions contains "input" | limit 10',
    'traces | where customDimensions contains "nput"',  # an escape's letters must not match
    'traces | where customDimensions contains "u"',  # a substring of JSON null
    'traces | where customDimensions !contains "input"',
    'traces | where message == "STDOUT" | project message, severityLevel',
    'traces | where not(message has "hello") and severityLevel > 1',
    'traces | where isnull(customDimensions) or customDimensions.Contents == "plain"',
    'traces | where tostring(customDimensions["Request Id"]) startswith "r" | order by timestamp desc | take 2',
    'requests | where success == false | summarize count() by resultCode, name | top 10 by count_',
    'requests | where duration between (5.0 .. 50.0) | where name in ("POST /score", "GET /health")',
    'requests | where duration * 2 > 30',  # a star: left to the subquery form (LEFT below)
    'requests | where operation_Id in ((exceptions | project operation_Id))',  # read as CTEs: left as well
    'requests | where customDimensions.model == "m1" or isempty(customDimensions)',
    'exceptions | where details contains "input" | join kind=inner (requests | where success == false) on operation_Id',
    'union traces, requests | where operation_Id == "op2"',
]
LEFT = {QUERIES[10], QUERIES[11], QUERIES[13], QUERIES[14]}  # a star, CTEs, a union


@pytest.fixture(scope="module")
def con():
    connection = build()
    escaped = [('{"Contents": "i\\u006eput"}', "a"), ('{"Contents": "\\nput"}', "a"), ("null", "a"),
               ('{"Contents": "input"}', "b")]
    for seq, (dims, service) in enumerate(escaped, start=100):
        connection.execute("INSERT INTO traces (timestamp, message, customDimensions, _service, _seq) "
                           "VALUES ('2026-01-01 00:04:00', 'escaped', ?, ?, ?)", [dims, service, seq])
    yield connection
    connection.close()


@pytest.mark.parametrize("kql", QUERIES)
def test_flat_answers_as_the_subquery_form(con, kql):
    compiled = compile_kql(kql, NOW)
    scope = scoping.Scope(["a"])
    plain = scoping.apply(compiled.sql, scope, (), compiled.tables)
    flattened = flat.apply(compiled.sql, scope, (), compiled.tables)
    rows = [sorted(map(repr, con.execute(sql, compiled.parameters or None).fetchall())) for sql in (plain, flattened)]
    assert rows[0] == rows[1]
    assert (flattened == plain) == (kql in LEFT)
    assert "secret of b" not in repr(rows[1])


def test_the_small_query_reads_the_table_once_without_a_type_test(con):
    sql = run_query(con.cursor(), 'traces | where customDimensions contains "input" | limit 10', services=["a"]).sql
    assert sql.count("SELECT") == 1 and "typeof" not in sql and sql.rstrip().endswith("LIMIT 10")
    assert 'FROM "traces" AS _s0 WHERE "_service" IN (\'a\') AND' in sql


@pytest.mark.parametrize("kql", ['traces | where _service == "b"', "traces | where _SEQ > 0",
                                 'traces | where rowid >= 0', 'traces | where isnotempty(["_service"])'])
def test_hidden_columns_stay_hidden(con, kql):
    with pytest.raises(KqlError):
        run_query(con.cursor(), kql, services=["a"])


def test_a_window_and_services_scope_the_flat_form(con):
    result = run_query(con.cursor(), 'requests | where name == "POST /score" | project id',
                       services=["a", "b"], timespan="2026-01-01T00:02:00Z/2026-01-01T00:08:00Z")
    assert sorted(r[0] for r in result.rows) == ["b1", "q2"]
    assert result.sql.count("SELECT") == 2  # the project and the flat filter


def test_every_case_of_the_plan_is_plain_text_and_slots():
    compiled = compile_kql('traces | where message has "x"', NOW)
    parts = flat.plan(compiled.sql, compiled.tables)
    assert ("table", "traces") in parts and ("where", "traces") in parts
    assert all(isinstance(p, str) or p[0] in ("source", "table", "where") for p in parts)
    assert duckdb.tokenize(flat.apply(compiled.sql, scoping.Scope(None), (), compiled.tables))
