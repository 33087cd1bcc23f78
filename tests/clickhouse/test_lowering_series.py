"""series_stats, series_decompose, series_decompose_anomalies and series_fir with a computed filter
on the clickhouse store: lowered from the DuckDB SQL the translator writes and run on ClickHouse's
engine in process (chdb), each held to the DuckDB UDF's own answer (collector/kql/series_functions.py)
on series with nulls, reals, strings and random values. Reals compare to a relative 1e-9 (numpy sums
pairwise, ClickHouse in its own order; see test_kql_differential's docstring), everything else exactly."""

from __future__ import annotations

import json
import random

import pytest
from store_helpers import same_reals, udf_answers

from collector.kql import KqlError, run_query
from collector.kql.errors import LIMIT, UNSUPPORTED
from collector.store.clickhouse.location import ClickHouseConnection


def _compare(client, name: str, options: list | None, series: list[str], refusable: bool = False) -> None:
    """The UDF's answer for each of *series*, or (if *refusable*, one series at a time) a refusal."""
    if refusable:
        answered = 0
        for one in series:
            try:
                _compare(client, name, options, [one])
                answered += 1
            except Exception as exc:  # noqa: BLE001 - chdb's DatabaseError carrying the refusal
                assert "kql-unsupported: " in str(exc), exc
        assert answered >= len(series) // 2, (name, options, answered)
        return
    got, expected = udf_answers(client, name, options, series)
    for text, want, s in zip(got, expected, series, strict=True):
        assert (text is None) == (want is None), (name, options, s, text, want)
        if want is not None:
            assert same_reals(json.loads(text), json.loads(want)), (name, options, s, text, want)


def _random_series(rnd: random.Random, length: int) -> str:
    return json.dumps([None if rnd.random() < 0.15 else
                       rnd.choice([rnd.randint(-50, 50), round(rnd.uniform(-100, 100), rnd.randint(0, 6))])
                       for _ in range(length)])


_SERIES = ["[1,3,5,7]", "[2,null,2]", "[]", "[null]", '[1.5,"a",3,null,-2.25,3]', "[7]", '{"a":1}', "null",
           "[1,2,3,4,5]", "[2,4,2,4,2,4]", "[1,2,1,2,1,2,1,2,1,20,1,2]"]


def test_series_stats_answers_as_the_duckdb_udf(client):
    rnd = random.Random("series_stats")
    _compare(client, "series_stats_dynamic", None, _SERIES + [_random_series(rnd, rnd.randint(1, 30)) for _ in range(4)])


_DECOMPOSE = [[2, "avg"], [3, "linefit", 2]]  # [0] and a line: the differential test's series:12


@pytest.mark.parametrize("options", _DECOMPOSE, ids=[json.dumps(o) for o in _DECOMPOSE])
def test_series_decompose_answers_as_the_duckdb_udf(client, options):
    rnd = random.Random(json.dumps(options))
    _compare(client, "__kql_series_decompose", options, _SERIES + [_random_series(rnd, rnd.randint(1, 40)) for _ in range(4)])


_ANOMALIES = [[1.5, 3, "linefit", 2, "tukey"]]  # [1.5, 0, "avg"]: the differential test's series:14


@pytest.mark.parametrize("options", _ANOMALIES, ids=[json.dumps(o) for o in _ANOMALIES])
def test_series_decompose_anomalies_answers_as_the_duckdb_udf(client, options):
    rnd = random.Random(json.dumps(options))
    series = _SERIES[:2] + _SERIES[-2:] + [_random_series(rnd, rnd.randint(5, 40)) for _ in range(2)]
    _compare(client, "__kql_series_decompose_anomalies", options, series, refusable=True)


def _connection(client) -> ClickHouseConnection:
    return ClickHouseConnection(lambda: client, "default")


def test_a_detected_period_that_ties_is_refused_when_it_runs(client):
    # lags 2, 4 and 6 of a perfectly periodic series all correlate 1: rounding picks the winner (periods.py)
    query = "print y = dynamic([1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2]) | project series_decompose(y)"
    with pytest.raises(KqlError) as caught:
        run_query(_connection(client), query, services=None)
    assert caught.value.code == UNSUPPORTED and "detected period whose best lags tie" in str(caught.value)


def test_a_flag_within_rounding_of_the_threshold_is_refused_when_it_runs(client):
    # residuals -1, 0 (x3), 1 around the mean 2: p10 = -0.6, p90 = 0.6, so the score of 3 is exactly 1/3
    query = "print y = dynamic([1, 2, 2, 2, 3]) | project series_decompose_anomalies(y, 0.3333333333333333, 0, 'avg')"
    with pytest.raises(KqlError) as caught:
        run_query(_connection(client), query, services=None)
    assert caught.value.code == UNSUPPORTED and "at the threshold" in str(caught.value)


def test_series_fir_with_a_computed_filter_past_the_work_limit_answers_the_limit(client):
    query = ("range t from 1 to 20000 step 1 | make-series s = sum(t) on t from 1 to 20001 step 1 "
             "| project f = series_fir(s, s, false)")
    with pytest.raises(KqlError) as caught:
        run_query(_connection(client), query, services=None)
    assert caught.value.code == LIMIT and "200,000,000 steps" in str(caught.value)
