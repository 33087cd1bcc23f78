"""A small store for KQL tests: the real DDL from schema.py, a few rows for services `a` and `b`.

Cases run as service `a`; rows of `b` are there so that any leak shows up in a result.
"""

from __future__ import annotations

import duckdb

from collector.store.schema import TABLES

_ROWS = {
    "traces": (
        "timestamp, message, severityLevel, customDimensions, operation_Id, itemType, itemCount",
        [
            ("2026-01-01 00:00:00", "STDOUT", 1, '{"Contents": {"input": [1, 2]}, "Request Id": "r1"}', "op1"),
            ("2026-01-01 00:01:00", "hello world", 2, '{"Contents": "plain"}', "op2"),
            ("2026-01-01 00:02:30", "Request failed: timeout=30s", 3, None, "op2"),
        ],
        [("2026-01-01 00:02:00", "secret of b", 3, '{"input": "bee"}', "op9")],
    ),
    "requests": (
        "timestamp, id, name, url, success, resultCode, duration, operation_Id, customDimensions, itemType, itemCount",
        [
            ("2026-01-01 00:00:00", "q1", "POST /score", "http://x/score", True, "200", 10.5, "op1", "{}"),
            ("2026-01-01 00:03:00", "q2", "POST /score", "http://x/score", False, "500", 100.0, "op2", '{"model": "m1"}'),
            ("2026-01-01 00:06:00", "q3", "GET /health", "http://x/health", True, "200", 1.0, "op3", None),
            ("2026-01-01 00:09:59", "q4", "POST /score", "http://x/score", False, "503", 40.0, "op4", None),
        ],
        [("2026-01-01 00:07:00", "b1", "POST /score", "http://b/score", False, "500", 50.0, "op9", None)],
    ),
    "exceptions": (
        "timestamp, problemId, type, message, operation_Id, severityLevel, details, itemType, itemCount",
        [
            ("2026-01-01 00:03:00", "p1", "ValueError", "bad input", "op2", 3, '[{"message": "bad"}, {"message": "input"}]'),
            ("2026-01-01 00:09:59", "p2", "TimeoutError", "too slow", "op4", 3, None),
        ],
        [("2026-01-01 00:07:00", "p9", "KeyError", "secret of b", "op9", 3, None)],
    ),
}


def build(path: str = ":memory:") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(path)
    for table in TABLES.values():
        con.execute(table.ddl())
    for table, (columns, mine, theirs) in _ROWS.items():
        item_type = TABLES[table].item_type
        seq = 0
        for service, rows in (("a", mine), ("b", theirs)):
            for row in rows:
                seq += 1
                values = (*row, item_type, 1, service, seq)
                marks = ", ".join("?" * len(values))
                con.execute(f"INSERT INTO {table} ({columns}, _service, _seq) VALUES ({marks})", values)
    return con
