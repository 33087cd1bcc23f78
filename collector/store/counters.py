"""Where every item went, per service: `received`, `accepted`, `dropped:disabled`, `rejected:<reason>`,
`capped`, `spilled`, `imported`, `set_aside` (acknowledged, refused by the store: spool.py).

Increments are appended with each commit (an upsert costs more than the rows it counts), summed
when read, and folded into one row per (service, counter) when the writer is idle.
"""

from __future__ import annotations

from collections import Counter

import duckdb

from collector.store.transactions import transaction

DDL = (
    """CREATE TABLE IF NOT EXISTS service_counters (
        service VARCHAR NOT NULL,
        counter VARCHAR NOT NULL,
        value BIGINT NOT NULL
    )""",
)

COMPACT_ROWS = 1_000
"""Increments beyond which an idle writer folds them."""


def set_aside(stats: Counter) -> Counter:
    """A batch's counters as committed when it is set aside: its accepted items count `set_aside`."""
    return Counter({(service, "set_aside" if counter == "accepted" else counter): count
                    for (service, counter), count in stats.items()})


def replayed(stats: Counter) -> Counter:
    """A set-aside batch's counters as committed when it is replayed: its items move from
    `set_aside` back to `accepted`."""
    moved: Counter = Counter()
    for (service, counter), count in stats.items():
        if counter == "accepted":
            moved[(service, "accepted")] += count
            moved[(service, "set_aside")] -= count
    return moved


def append(con: duckdb.DuckDBPyConnection, totals: Counter) -> None:
    """Add (service, counter) -> increment, inside the writer's transaction. As parameters of one
    VALUES list: for the few rows of a group commit, an Arrow table scanned by name cost the writer
    ~0.5 ms more per group (bench/README.md part 22q)."""
    rows = ", ".join(["(?, ?, ?)"] * len(totals))
    con.execute(f"INSERT INTO service_counters VALUES {rows}",
                [value for (service, counter), increment in totals.items() for value in (service, counter, increment)])


def compact(con: duckdb.DuckDBPyConnection) -> None:
    """Fold the appended increments into one row per (service, counter), in the writer's thread."""
    (rows,) = con.execute("SELECT count(*) FROM service_counters").fetchall()[0]
    if rows < COMPACT_ROWS:
        return
    with transaction(con):
        totals = con.sql(  # noqa: F841 (read by DuckDB, by name, below)
            "SELECT service, counter, sum(value)::BIGINT AS value FROM service_counters GROUP BY ALL"
        ).to_arrow_table()
        con.execute("DELETE FROM service_counters")
        con.execute("INSERT INTO service_counters SELECT * FROM totals")


def totals(cursor: duckdb.DuckDBPyConnection, service: str) -> dict[str, int]:
    """The service's counters, summed."""
    rows = cursor.execute(
        "SELECT counter, sum(value)::BIGINT FROM service_counters WHERE service = ? GROUP BY counter", [service]
    ).fetchall()
    return dict(rows)
