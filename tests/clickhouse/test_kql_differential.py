"""The differential test: every case of tests/kql/cases, run as service `a` on DuckDB (the oracle,
Kusto's semantics as tests/kql/test_cases proves them) and on ClickHouse's engine in process
(chdb, through clickhouse-connect as the ClickHouse store runs it, on 21a's DDL), same rows, same
query through the same engine entry point (`run_query`): the same answer for every case. (A
construct no rule lowers answers 400 "... not supported on the clickhouse store", never different
rows; a case meeting one fails here.)

Rows compare in order where the case says `=> ordered`, as multisets otherwise. Every value that
is not a real compares exactly (strings, longs, datetimes, timespans, bools, nulls, the structure
of a dynamic value). A real compares to a relative 1e-9 (an absolute 1e-12 near zero), also inside
a dynamic value (a series' JSON text): the two engines sum in different orders (numpy's pairwise
sums in the DuckDB path's series UDF, ClickHouse's own arraySum), so one rounding step may differ
in the last bits while the answer is the same; 1e-9 is a million times wider than such a step and
far narrower than any different answer (a wrong index, bin or formula).
"""

from __future__ import annotations

import json
import math

import pytest
from kql_differential_store import build_both

from collector.kql import KqlError, run_query
from tests.kql.cases import load

CASES = load()


@pytest.fixture(scope="module")
def stores():
    duck, clickhouse = build_both()
    yield duck, clickhouse
    duck.close()
    clickhouse.client().close()


def _answer(con, query: str) -> tuple:
    try:
        result = run_query(con, query, services=["a"])
    except KqlError as exc:
        return ("error", exc.code, str(exc))
    return ("rows", [list(c) for c in result.columns], result.rows)


def _key(row: list) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, str) and isinstance(b, str) and a != b and a[:1] in "[{" and b[:1] in "[{":
        try:  # a dynamic value's JSON text
            return _close(json.loads(a), json.loads(b))
        except ValueError:
            return False
    return a == b


def _same_rows(expected: list, got: list, ordered: bool) -> bool:
    if not ordered:
        expected, got = sorted(expected, key=_key), sorted(got, key=_key)
    return _close(expected, got)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_same_answer_on_clickhouse(stores, case):
    duck, clickhouse = stores
    oracle = _answer(duck.cursor(), case.query)
    answer = _answer(clickhouse, case.query)
    if oracle[0] == "error":
        assert answer[:2] == oracle[:2], answer
        return
    assert answer[0] == "rows", answer
    assert answer[1] == oracle[1]
    assert _same_rows(oracle[2], answer[2], case.ordered), (oracle[2], answer[2])
