"""Issue 18's engine edges that the case files cannot state: what --explain shows, the names the
stages reserve, and that a series UDF is registered once per database whichever cursor asks."""

from __future__ import annotations

import duckdb
import pytest

from collector.kql import KqlError, explain, run_query
from collector.kql.series_functions import UDF_NAME, ensure_registered
from tests.kql.store import build


def test_explain_shows_a_make_series_as_one_scoped_select():
    sql = explain("requests | make-series count() on timestamp from ago(1d) to now() step 1h by name",
                  services=["a"])
    assert sql.startswith("WITH ") and '"_kql_stage1"' in sql and "'a'" in sql


def test_explain_refuses_the_plugins_whose_columns_come_from_the_data():
    with pytest.raises(KqlError) as caught:
        explain("requests | evaluate bag_unpack(customDimensions)")
    assert caught.value.code == "UnsupportedError" and "depends on the data" in caught.value.message


def test_the_stage_names_are_reserved():
    con = build()
    with pytest.raises(KqlError) as caught:
        run_query(con.cursor(), "_kql_stage1 | take 1", services=["a"])
    assert "reserved" in caught.value.message


def test_udfs_register_once_per_database_from_any_cursor():
    con = duckdb.connect()
    first, second = con.cursor(), con.cursor()
    first.execute("SELECT 1")  # an unfinished result on the asking cursor does not get in the way
    ensure_registered(first)
    ensure_registered(second)
    assert second.execute(f"SELECT {UDF_NAME}('series_fill_forward', '[1,null]', NULL)").fetchone()[0] == "[1,1]"
