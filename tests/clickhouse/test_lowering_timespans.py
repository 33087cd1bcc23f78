"""The rules for timespan values (timespans.py), the translator's one-value lambdas (lets.py) and
lists inside expressions (lists.py): each lowered from the DuckDB SQL the translator writes, run on
ClickHouse's engine in process (chdb) and held to DuckDB's own answer for the same SQL."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from collector.kql import KqlError
from collector.kql.clickhouse.lowering import lower
from collector.kql.clickhouse.timespans import interval_cells
from collector.kql.errors import UNSUPPORTED


def _both(client, sql: str) -> tuple[list, list]:
    """(DuckDB's rows, ClickHouse's rows with interval cells read back) of *sql*."""
    lowered = lower(sql, {}, database="default", services=None)
    result = client.query(lowered.sql, parameters=lowered.parameters, settings=lowered.settings)
    got = [tuple(r) for r in interval_cells(result.column_types, result.result_rows)]
    return duckdb.sql(sql).fetchall(), got


def test_timespans_are_one_unit_so_they_add_scale_and_compare(client):
    sql = ("SELECT INTERVAL '1h' + INTERVAL '30m' AS a, CAST(2 AS BIGINT) * INTERVAL '1h' AS b, "
           "INTERVAL '1d' * CAST(-3 AS BIGINT) AS c, to_microseconds(CAST(93784000000 AS BIGINT)) AS d, "
           "epoch(to_microseconds(CAST(1500000 AS BIGINT))) AS e, INTERVAL '00:30' AS f, "
           "to_seconds(CAST(1.5 AS DOUBLE)) AS g, to_seconds(CAST(0.0000025 AS DOUBLE)) AS g2, INTERVAL '1h' > INTERVAL '59m' AS h, "
           "-(INTERVAL '2s') AS i, to_days(CAST(2 AS INTEGER)) + INTERVAL '1ms' AS j")
    duck, clickhouse = _both(client, sql)
    assert clickhouse == duck
    assert duck[0][0] == timedelta(hours=1, minutes=30)


def test_instants_move_by_timespans(client):
    sql = ("SELECT CAST('2017-01-01 00:00:00' AS TIMESTAMP) + INTERVAL '1d' AS a, "
           "CAST('2017-01-01 00:00:00' AS TIMESTAMP) - CAST(3 AS BIGINT) * INTERVAL '90m' AS b")
    duck, clickhouse = _both(client, sql)
    assert clickhouse == duck


def test_a_real_times_a_timespan_is_refused():
    with pytest.raises(KqlError) as caught:
        lower("SELECT CAST(1.5 AS DOUBLE) * INTERVAL '1h'", {}, database="d", services=None)
    assert caught.value.code == UNSUPPORTED


@pytest.mark.parametrize("text", ["00:01:00", "1:2", "01:02:03.5", "25:00:00", "1:2:3.123456", "0:0"])
def test_text_cast_to_a_timespan_reads_as_duckdb_does(client, text):
    sql = f"SELECT TRY_CAST(CAST('{text}' AS VARCHAR) AS INTERVAL), TRY_CAST(CAST(NULL AS VARCHAR) AS INTERVAL)"
    duck, clickhouse = _both(client, sql)
    assert clickhouse == duck


@pytest.mark.parametrize("text", ["-01:00:00", "00:61:00", "1 hour", "01:02:03.1234567"])
def test_text_in_another_form_is_refused_when_it_runs(client, text):
    lowered = lower(f"SELECT TRY_CAST(CAST('{text}' AS VARCHAR) AS INTERVAL)", {}, database="d", services=None)
    with pytest.raises(Exception, match="kql-unsupported: this timespan text"):
        client.query(lowered.sql, settings=lowered.settings)


def test_a_raising_let_is_inlined_so_only_the_branch_taken_runs(client):
    template = ("SELECT list_transform([CAST({} AS VARCHAR)], lambda _ts: CASE WHEN _ts = 'bad' "
                "THEN error('kql-limit: bad value') ELSE length(_ts) END)[1] AS n")
    duck, clickhouse = _both(client, template.format("'good'"))
    assert clickhouse == duck == [(4,)]
    lowered = lower(template.format("'bad'"), {}, database="d", services=None)
    with pytest.raises(Exception, match="kql-limit: bad value"):
        client.query(lowered.sql, settings=lowered.settings)


def test_typeof_in_a_let_of_regexp_extract_is_varchar(client):
    sql = ("SELECT list_transform([regexp_extract('x=45', 'x=([0-9]+)', 1)], lambda _v: CASE WHEN typeof(_v) = 'VARCHAR' "
           "THEN TRY_CAST(_v AS BIGINT) WHEN typeof(_v) = 'INTERVAL' THEN epoch_us(CAST(_v AS INTERVAL)) END)[1] AS n")
    duck, clickhouse = _both(client, sql)
    assert clickhouse == duck == [(45,)]


def test_ranges_and_filtered_list_lengths_in_expressions(client):
    sql = ("SELECT len(list_filter(range(0, 6), lambda p: p % 2 = 0)) AS a, len(list_filter(range(3, 1), lambda p: true)) AS b, "
           "list_filter(range(-3, 3), lambda p: p < 0)[2] AS c, "
           "len(list_filter(range(0, 4), lambda p: substring('äbäb', p + 1, 1) = 'b')) AS d")
    duck, clickhouse = _both(client, sql)
    assert clickhouse == duck == [(3, 0, -2, 2)]
