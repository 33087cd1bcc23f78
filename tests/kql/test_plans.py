"""The engine reuses a query's scoped SQL (engine._Plans) only where nothing else could change it:
the same text for other services, or with a time window, answers for those, not the first run's."""

from __future__ import annotations

import pytest

from collector.kql import run_query

from .store import build

KQL = 'requests | where name == "POST /score" | project id'


@pytest.fixture(scope="module")
def con():
    connection = build()
    yield connection
    connection.close()


def _ids(con, services, timespan=None) -> list[str]:
    return sorted(r[0] for r in run_query(con.cursor(), KQL, services=services, timespan=timespan).rows)


def test_a_repeated_query_answers_for_its_own_services_and_window(con):
    both = _ids(con, ["a", "b"])
    only_a, only_b = _ids(con, ["a"]), _ids(con, ["b"])
    assert only_a and only_b and sorted(only_a + only_b) == both
    assert _ids(con, ["a"]) == only_a and _ids(con, ["b"]) == only_b and _ids(con, ["a", "b"]) == both
    windowed = _ids(con, ["a", "b"], "2026-01-01T00:02:00Z/2026-01-01T00:08:00Z")
    assert windowed == ["b1", "q2"] and windowed != both
    assert _ids(con, None) == sorted(r[0] for r in con.execute(
        "SELECT id FROM requests WHERE name = 'POST /score'").fetchall())

