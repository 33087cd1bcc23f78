"""Reading a service's rows back through the collector's query API, waiting for them to arrive."""

from __future__ import annotations

import time

import orjson

DYNAMIC = ("customDimensions", "customMeasurements", "details")


def rows(collector, service: dict, table: str) -> list[dict]:
    found = collector.query(f"{table} | order by timestamp asc", service=service["name"])
    for row in found:
        for column in DYNAMIC:
            if isinstance(row.get(column), str):
                row[column] = orjson.loads(row[column])
    return found


def wait_for(collector, service: dict, table: str, predicate, timeout: float = 20.0) -> list[dict]:
    """The rows of `table` that satisfy `predicate(row)`, once at least one does... or all that must:
    `predicate` may also be a (row predicate, count) pair."""
    test, count = predicate if isinstance(predicate, tuple) else (predicate, 1)
    deadline = time.monotonic() + timeout
    while True:
        matching = [row for row in rows(collector, service, table) if test(row)]
        if len(matching) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(matching) >= count, f"expected {count} matching {table} rows, found {len(matching)}: {matching[:3]}"
    return matching
