"""Waiting for telemetry that SDKs send from background threads."""

import time

import orjson

DYNAMIC = ("customDimensions", "customMeasurements", "details", "payload")


def rows_eventually(collector, table: str, service: dict, count: int = 1, timeout: float = 20.0, where: str = "") -> list[dict]:
    """The service's rows of `table` once `count` have arrived (dynamic columns decoded)."""
    deadline = time.monotonic() + timeout
    query = f"{table} {where} | order by timestamp asc"
    while True:
        rows = collector.query(query, service=service["name"])
        if len(rows) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(rows) == count, f"expected {count} {table} rows, found {len(rows)}: {rows}"
    for row in rows:
        for column in DYNAMIC:
            if isinstance(row.get(column), str):
                row[column] = orjson.loads(row[column])
    return rows
