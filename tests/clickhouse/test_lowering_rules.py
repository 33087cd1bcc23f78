"""Each lowering rule on its own: the DuckDB SQL the translator writes for one construct, lowered,
then run on ClickHouse's engine in process (chdb) where the meaning is what is tested."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlglot

from collector.kql.clickhouse import rules, typing
from collector.kql.clickhouse.lowering import SETTINGS_BASE, lower
from collector.kql.errors import UNSUPPORTED, KqlError


def _lowered(sql: str, rule) -> str:
    return rule(sqlglot.parse_one(sql, read="duckdb")).sql(dialect="clickhouse")


def _one(client, sql: str, parameters: dict | None = None):
    lowered = lower(sql, parameters or {}, database="default", services=None)
    return client.query(lowered.sql, parameters=lowered.parameters, settings=lowered.settings).result_rows[0]


def test_pinned_clock_is_a_typed_bound_parameter(client):
    text = _lowered("SELECT CAST($kqlnow AS TIMESTAMP) - INTERVAL 1 HOUR", rules.pinned_clock)
    assert "{kql_now: DateTime64(6, 'UTC')}" in text
    (value,) = _one(client, "SELECT CAST($kqlnow AS TIMESTAMP) - INTERVAL 1 HOUR",
                    {"kqlnow": datetime(2026, 1, 1, 0, 10)})
    assert value.replace(tzinfo=None) == datetime(2025, 12, 31, 23, 10)


def test_microsecond_timestamps_keep_microseconds(client):
    assert "DateTime64(6, 'UTC')" in _lowered("SELECT CAST(x AS TIMESTAMP)", rules.microsecond_timestamps)
    (value,) = _one(client, "SELECT CAST('2026-01-01 00:00:00.123456' AS TIMESTAMP)")
    assert value.microsecond == 123456


def test_try_cast_answers_null_instead_of_throwing(client):
    assert _one(client, "SELECT TRY_CAST('abc' AS BIGINT), TRY_CAST('42' AS BIGINT)") == (None, 42)


def test_time_buckets_floor_to_the_step_from_the_origin(client):
    sql = ("SELECT time_bucket(INTERVAL '5m', CAST('2026-01-01 00:09:59' AS TIMESTAMP), "
           "TIMESTAMP '1970-01-01 00:00:00'), time_bucket(INTERVAL '1d', CAST('2026-01-01 10:00:00' AS TIMESTAMP), "
           "TIMESTAMP '1970-01-01 00:00:00'), time_bucket(INTERVAL '7m', CAST('2026-01-01 00:09:59' AS TIMESTAMP), "
           "TIMESTAMP '2026-01-01 00:01:00')")
    five, day, seven = (v.replace(tzinfo=None) for v in _one(client, sql))
    assert five == datetime(2026, 1, 1, 0, 5)
    assert day == datetime(2026, 1, 1)
    assert seven == datetime(2026, 1, 1, 0, 8)


def test_a_month_long_bin_is_refused():
    with pytest.raises(KqlError) as caught:
        _lowered("SELECT time_bucket(INTERVAL '1 month', x, TIMESTAMP '1970-01-01')", rules.time_buckets)
    assert caught.value.code == UNSUPPORTED and "clickhouse store" in str(caught.value)


def test_nearest_rank_percentiles_match_kusto(client):
    sql = ('SELECT quantile_disc("x", 0.5), quantile_disc("x", 0.95), quantile_disc("x", 0.05) '
           'FROM generate_series(CAST(1 AS BIGINT), 100, 1) AS _range("x")')
    # quantileExact would say 51 and 96; Kusto's nearest rank (and DuckDB's quantile_disc) 50 and 95.
    assert "quantile" not in _lowered("SELECT quantile_disc(x, 0.95) FROM t", rules.nearest_rank_percentiles)
    assert _one(client, sql) == (50, 95, 5)
    three = "SELECT quantile_disc(x, 0.95) FROM (SELECT CAST(10.5 AS DOUBLE) AS x UNION ALL SELECT 40.0 UNION ALL SELECT 100.0)"
    assert _one(client, three) == (100.0,)


def test_regex_escape_and_case_insensitive_match(client):
    assert _one(client, "SELECT regexp_matches('A.B', regexp_escape('a.b'), 'i'), "
                        "regexp_matches('AxB', regexp_escape('a.b'), 'i'), regexp_matches('ab', 'A')") == (True, False, False)


def test_integer_division_truncates_exactly(client):
    assert "intDiv" in _lowered("SELECT a // b", rules.integer_division)
    assert _one(client, "SELECT CAST(9007199254740993 AS BIGINT) // 1, CAST(7 AS BIGINT) // NULLIF(0, 0)") == \
        (9007199254740993, None)


def test_limit_errors_raise_only_on_the_rows_that_reach_them(client):
    sql = "SELECT CASE WHEN x > 100 THEN error('kql-limit: too many') ELSE x END FROM (SELECT CAST(5 AS BIGINT) AS x)"
    assert _one(client, sql) == (5,)
    with pytest.raises(Exception, match="kql-limit: too many"):
        _one(client, sql.replace("x > 100", "x > 1"))


def test_function_names(client):
    assert _one(client, "SELECT strlen('héllo'), starts_with('abc', 'a'), ends_with('abc', 'b')") == (6, True, False)


def test_integer_ranges_count_down_and_below_zero(client):
    lowered = lower('SELECT "x" FROM generate_series(CAST(3 AS BIGINT), -3, -2) AS _range("x")', {},
                    database="default", services=None)
    rows = client.query(lowered.sql, settings=lowered.settings).result_rows
    assert [r[0] for r in rows] == [3, 1, -1, -3]
    with pytest.raises(KqlError):
        lower("SELECT * FROM generate_series(TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-02', INTERVAL 1 HOUR) AS _range(t)",
              {}, database="default", services=None)


def test_fold_typeof_keeps_only_the_live_branch():
    sql = ('SELECT CASE WHEN typeof("customDimensions") = \'JSON\' THEN "customDimensions" ->> \'$\' '
           'ELSE CAST("customDimensions" AS INTERVAL) END AS c FROM "__kql_scope__"."traces" AS _s0')
    text = typing.fold_typeof(sqlglot.parse_one(sql, read="duckdb")).sql("duckdb")
    assert "INTERVAL" not in text and "TYPEOF" not in text.upper()
    assert '"customDimensions"' in text  # ClickHouse is case-sensitive: the spelling is kept


def test_scope_is_bound_never_pasted_and_internal_columns_stay_out():
    lowered = lower('SELECT * FROM "__kql_scope__"."requests" AS _s0', {}, database="db",
                    services=["x' OR 1=1 --"])
    assert "OR 1=1" not in lowered.sql
    assert lowered.parameters["kql_services"] == ["x' OR 1=1 --"]
    assert "_seq" not in lowered.sql.replace("_service` IN", "")
    assert lowered.settings["readonly"] == 1 and SETTINGS_BASE["join_use_nulls"] == 1


def test_series_udfs_are_refused_clearly():
    with pytest.raises(KqlError) as caught:
        lower("SELECT kql_compute('series_fir', '[1]', NULL)", {}, database="db", services=["a"])
    assert caught.value.code == UNSUPPORTED and "not supported on the clickhouse store" in str(caught.value)


def test_window_nulls_past_the_edge(client):
    sql = ('SELECT lag("t") OVER (ORDER BY "t") FROM (SELECT CAST(\'2026-01-01\' AS TIMESTAMP) AS "t")')
    assert "toNullable" in _lowered(sql, rules.window_nulls)
    assert _one(client, sql) == (None,)


def test_regex_replace_first_or_every_match(client):
    assert _one(client, "SELECT regexp_replace('a1b2', '[0-9]', '#'), regexp_replace('a1b2', '[0-9]', '#', 'g'), "
                        "regexp_replace('Number is: 42', 'is: (\\d+)', 'was: \\1', 'g')") == \
        ("a#b2", "a#b#", "Number was: 42")


def test_filter_coalesce_leaves_a_plain_predicate_for_the_index(client):
    sql = ("SELECT x FROM (SELECT CAST(NULL AS VARCHAR) AS x UNION ALL SELECT 'op1' UNION ALL SELECT 'op2') "
           "WHERE coalesce((x = 'op1'), FALSE) AND (coalesce(x <> 'op2', FALSE))")
    text = _lowered(sql, rules.filter_coalesce)
    assert "COALESCE" not in text.upper().split("WHERE")[1]
    lowered = lower(sql, {}, database="default", services=None)
    assert client.query(lowered.sql, settings=lowered.settings).result_rows == [("op1",)]


def test_union_by_name_aligns_the_sides_with_nulls_where_a_column_is_absent(client):
    sql = ('SELECT * FROM (SELECT 1 AS "a", \'x\' AS "b" UNION ALL BY NAME '
           'SELECT * FROM (SELECT \'y\' AS "b", 2.5 AS "c"))')
    text = _lowered(sql, rules.union_by_name)
    assert "BY NAME" not in text.upper()
    lowered = lower(sql, {}, database="default", services=None)
    result = client.query(lowered.sql, settings=lowered.settings)
    assert result.column_names == ("a", "b", "c")
    assert sorted(result.result_rows, key=str) == sorted([(1, "x", None), (None, "y", 2.5)], key=str)


def test_epoch_seconds_keep_microseconds_both_ways(client):
    sql = ("SELECT epoch(INTERVAL '5m') AS s, "
           "to_timestamp(floor(epoch(TIMESTAMP '2026-01-01 00:07:59.250001') / epoch(INTERVAL '5m')) "
           "* epoch(INTERVAL '5m')) AS b, to_timestamp(epoch(TIMESTAMP '2026-01-01 00:07:59.250001')) AS t")
    assert "TIME_TO_UNIX" not in _lowered(sql, rules.epoch_seconds)
    step, bucket, same = _one(client, sql)
    assert step == 300
    assert bucket.replace(tzinfo=None) == datetime(2026, 1, 1, 0, 5)
    assert same.replace(tzinfo=None) == datetime(2026, 1, 1, 0, 7, 59, 250001)


def test_regex_extract_all_is_every_match_of_the_group(client):
    sql = (r"SELECT regexp_extract_all('a1 b22 c333', '([a-z])(\d+)') AS whole, "
           r"regexp_extract_all('a1 b22 c333', '([a-z])(\d+)', 2) AS digits, "
           r"len(regexp_extract_all('a1 b22', '\d+')) AS n")
    assert _one(client, sql) == (["a1", "b22", "c333"], ["1", "22", "333"], 2)


def test_day_arithmetic_starts_the_week_on_sunday(client):
    sql = ("SELECT dayofweek(TIMESTAMP '2017-01-01 10:00:00') AS sunday, "
           "dayofweek(TIMESTAMP '2017-01-07 10:00:00') AS saturday, "
           "date_trunc('day', TIMESTAMP '2017-01-04 10:10:17') "
           "- to_days(CAST(dayofweek(TIMESTAMP '2017-01-04 10:10:17') AS INTEGER)) AS week")
    sunday, saturday, week = _one(client, sql)
    assert (sunday, saturday) == (0, 6)
    assert week.replace(tzinfo=None) == datetime(2017, 1, 1)


def test_array_lengths_count_elements_not_characters(client):
    sql = "SELECT len(str_split('aaa_bbb_ccc', '_')) AS parts, len([1, 2]) AS pair, len('héllo') AS chars"
    assert _one(client, sql) == (3, 2, 5)


def test_datetime_formatting_keeps_minutes_and_unpadded_fields(client):
    sql = ("SELECT strftime(TIMESTAMP '2017-01-29 09:07:05', '%y-%m-%d [%H:%M:%S]') AS padded, "
           "strftime(TIMESTAMP '2017-01-29 09:07:05', '%Y-%-m-%-d [%-H:%M:%S] 100%%') AS unpadded")
    assert _one(client, sql) == ("17-01-29 [09:07:05]", "2017-1-29 [9:07:05] 100%")


def test_ordered_lists_keep_the_key_order_and_nulls(client):
    sql = ("SELECT to_json(list(v ORDER BY i)) FROM (SELECT * FROM (VALUES (3, 'c'), (1, NULL), (2, 'b')) "
           "AS t(i, v))")
    text = _lowered(sql, rules.ordered_lists)
    assert "ORDER BY" not in text.upper()
    assert _one(client, sql) == ('[null,"b","c"]',)


def test_bin_numbers_are_one_row_per_number_end_excluded(client):
    sql = "SELECT count(*), min(i), max(i) FROM (SELECT unnest(range(0, 4)) AS i)"
    assert "arrayJoin" in _lowered(sql, rules.bin_numbers)
    assert _one(client, sql) == (4, 0, 3)


def test_series_step_in_microseconds_builds_the_bin_instants(client):
    sql = ("SELECT epoch(b.__kql_s) AS seconds, b.__kql_f + 3 * b.__kql_s AS third FROM "
           "(SELECT TIMESTAMP '2026-01-01 00:00:00' AS __kql_f, INTERVAL '5m' AS __kql_s) AS b")
    seconds, third = _one(client, sql)
    assert seconds == 300
    assert third.replace(tzinfo=None) == datetime(2026, 1, 1, 0, 15)


def test_series_json_is_json_text(client):
    assert _one(client, "SELECT to_json([1, 2]) AS a") == ("[1,2]",)
