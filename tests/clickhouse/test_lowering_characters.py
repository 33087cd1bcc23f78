"""String functions count characters on ClickHouse as on DuckDB (characters.py): the translator's
DuckDB SQL for substring, indexof, reverse, toupper/tolower and left/right over non-ASCII text, run
on ClickHouse's engine in process (chdb) and held to DuckDB's own answer."""

from __future__ import annotations

import duckdb
import pytest

from collector.kql.clickhouse.lowering import lower


@pytest.mark.parametrize("text", ["äbc", "naïve café", "日本語テキスト", "plain ascii", ""])
def test_strings_count_and_case_characters_as_duckdb_does(client, text):
    sql = (f"SELECT substring('{text}', 2, 3) AS a, substring('{text}', 3) AS b, "
           f"position('c' IN '{text}') AS c, strpos('{text}', 'テ') AS d, reverse('{text}') AS e, "
           f"upper('{text}') AS f, lower(upper('{text}')) AS g, left('{text}', 2) AS h, right('{text}', 2) AS i")
    lowered = lower(sql, {}, database="default", services=None)
    got = client.query(lowered.sql, parameters=lowered.parameters, settings=lowered.settings).result_rows
    assert [tuple(row) for row in got] == duckdb.sql(sql).fetchall()


def test_indexof_of_a_non_ascii_haystack_counts_characters(client):
    lowered = lower("SELECT (position('b' IN 'äbc') - 1) AS c", {}, database="default", services=None)
    assert client.query(lowered.sql, settings=lowered.settings).result_rows == [(1,)]
