"""Where every item went, per service, in ClickHouse: store/counters.py's counters (`received`,
`accepted`, `dropped:disabled`, `rejected:<reason>`, ...) summed over all collectors.

Each collector appends its increments to a SummingMergeTree keyed by (service, counter): merges
fold them into one row per key in the background (what DuckDB's `compact` does by hand), and a
read sums whatever is not folded yet, so the totals are exact at any moment.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from collector.store.clickhouse import control


def append(connection: control.Connection, totals: Counter) -> None:
    """Add (service, counter) -> increment; synchronous (the caller acknowledges after it)."""
    if not totals:
        return
    services, counters = zip(*totals, strict=True)
    increments = pa.table({"service": list(services), "counter": list(counters),
                           "value": pa.array(list(totals.values()), pa.int64())})
    connection.client().insert_arrow(control.table(connection, "service_counters"), increments,
                                     settings=control.write_settings(connection))


def totals(connection: control.Connection, service: str) -> dict[str, int]:
    """The service's counters, summed over every collector."""
    rows = connection.client().query(
        f"SELECT counter, sum(value) FROM {control.table(connection, 'service_counters')} "
        "WHERE service = {service:String} GROUP BY counter",
        parameters={"service": service}, settings=control.read_settings(connection)).result_rows
    return {counter: int(value) for counter, value in rows}
