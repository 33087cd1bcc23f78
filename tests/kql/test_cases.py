"""Every case in tests/kql/cases/: the query, run as service `a`, gives exactly the expected table."""

from __future__ import annotations

import json

import pytest

from collector.kql import KqlError, run_query

from .cases import load
from .store import build

CASES = load()


@pytest.fixture(scope="module")
def con():
    connection = build()
    yield connection
    connection.close()


def _key(row: list) -> str:
    return json.dumps(row, sort_keys=True, default=str)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(con, case):
    if case.error_code:
        with pytest.raises(KqlError) as caught:
            run_query(con.cursor(), case.query, services=["a"])
        assert caught.value.code == case.error_code, caught.value
        assert case.error_text in str(caught.value)
        return
    result = run_query(con.cursor(), case.query, services=["a"])
    assert [list(c) for c in result.columns] == [list(c) for c in case.columns]
    if case.ordered:
        assert result.rows == case.rows
    else:
        assert sorted(result.rows, key=_key) == sorted(case.rows, key=_key)
