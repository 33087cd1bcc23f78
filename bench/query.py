"""KQL engine speed: our run_query next to the equivalent hand-written DuckDB SQL, in the same run.

Generates N traces and N requests (default 10M each, plus exceptions for the join) into a store
built from schema.py's DDL, with DuckDB's range() rather than Python loops, then times the four
queries of issue 3 section 7 as service `svc-0` (ours goes through compile, scope, execute and
result typing; the baseline is the SQL a person would write, with the same service filter). Then
the lookups of one request (issue 22) through the lookup index, each beside the full scan of the
same query in the same run.

    python bench/query.py [--rows 10000000] [--runs 7] [--lookup-runs 3] [--db /tmp/bench-query.duckdb] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.kql import engine, run_query  # noqa: E402
from collector.store import lookup_index  # noqa: E402
from collector.store.schema import TABLES  # noqa: E402

SERVICE = "svc-0"
HOUR_AGO = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
DAY_AGO = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:00")
SERVICES = 4

QUERIES = [
    (
        "contains + limit",
        'traces | where customDimensions contains "input" | limit 10',
        "SELECT {traces} FROM traces WHERE _service = 'svc-0' "
        "AND CAST(customDimensions AS VARCHAR) ILIKE '%input%' LIMIT 10",
    ),
    (
        "5m buckets",
        "requests | summarize count(), avg(duration), percentile(duration, 95) by bin(timestamp, 5m)",
        "SELECT time_bucket(INTERVAL 5 MINUTE, timestamp) AS timestamp, count(*) AS count_, "
        "avg(duration) AS avg_duration, quantile_disc(duration, 0.95) AS percentile_duration_95 "
        "FROM requests WHERE _service = 'svc-0' GROUP BY 1",
    ),
    (
        "failures top 10",
        "requests | where success == false | summarize count() by resultCode, name | top 10 by count_",
        "SELECT resultCode, name, count(*) AS count_ FROM requests WHERE _service = 'svc-0' "
        "AND success = false GROUP BY resultCode, name ORDER BY count_ DESC LIMIT 10",
    ),
    (
        "join 1h",
        # A fixed hour (the one before the run started), not ago(1h): a window that slides between
        # our run and the baseline's would make their row counts differ by the rows at its edge.
        f"requests | where timestamp > datetime({HOUR_AGO}) | join (exceptions | where timestamp > datetime({HOUR_AGO})) on operation_Id",
        "SELECT r.*, e.* FROM (SELECT DISTINCT ON (operation_Id) {requests} FROM requests "
        f"WHERE _service = 'svc-0' AND timestamp > TIMESTAMP '{HOUR_AGO}') r "
        "JOIN (SELECT {exceptions} FROM exceptions WHERE _service = 'svc-0' "
        f"AND timestamp > TIMESTAMP '{HOUR_AGO}') e ON r.operation_Id = e.operation_Id",
    ),
    (
        "make-series 24h",
        # Issue 18: zero-filled 5-minute counts and mean durations per endpoint over a fixed day,
        # against the SQL a person would write for the same arrays (bins crossed with the groups).
        f"requests | make-series count(), avg(duration) default=0 on timestamp from datetime({DAY_AGO}) "
        f"to datetime({DAY_AGO}) + 1d step 5m by name",
        "WITH b AS (SELECT name, time_bucket(INTERVAL 5 MINUTE, timestamp, TIMESTAMP '{day}') AS t, "
        "count(*) AS c, avg(duration) AS d FROM requests WHERE _service = 'svc-0' "
        "AND timestamp >= TIMESTAMP '{day}' AND timestamp < TIMESTAMP '{day}' + INTERVAL 1 DAY GROUP BY ALL), "
        "g AS (SELECT DISTINCT name FROM b), "
        "s AS (SELECT unnest(range(TIMESTAMP '{day}', TIMESTAMP '{day}' + INTERVAL 1 DAY, INTERVAL 5 MINUTE)) AS t) "
        "SELECT g.name, list(coalesce(b.c, 0) ORDER BY s.t), list(coalesce(b.d, 0) ORDER BY s.t), "
        "list(s.t ORDER BY s.t) FROM g CROSS JOIN s LEFT JOIN b ON b.name = g.name AND b.t = s.t GROUP BY g.name",
    ),
]


def generate(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    """Traces (half of them score.py prints with `input` in customDimensions), requests and
    exceptions for 1% of the requests, spread over the last 7 days, round-robin over services."""
    for table in TABLES.values():
        con.execute(table.ddl())
    con.execute("CREATE MACRO uuid_from_i(i) AS regexp_replace(md5('x' || i), "
                "'^(.{8})(.{4})(.{4})(.{4})(.{12})$', '\\1-\\2-\\3-\\4-\\5')")
    step_us = 7 * 86400 * 1_000_000 // rows
    now = "CAST(now() AS TIMESTAMP)"
    con.execute(f"""
        INSERT INTO traces (timestamp, message, severityLevel, customDimensions, operation_Id,
                            itemType, itemCount, cloud_RoleName, _service, _seq)
        SELECT {now} - to_microseconds(i * {step_us}),
               CASE WHEN i % 2 = 0 THEN 'STDOUT' ELSE 'handled ' || md5('op' || i) || ' in ' || (i % 997) || ' ms' END,
               1 + i % 3,
               CASE WHEN i % 2 = 0
                    THEN '{{"Contents": {{"input": [' || (i % 101) || ', ' || (i % 13) || '], "request": "r' || i || '"}}}}'
                    ELSE '{{"Contents": "worker ' || (i % 8) || ' ready", "Request Id": "' || i || '"}}' END,
               md5('op' || i), 'trace', 1, 'score', 'svc-' || (i % {SERVICES}), i
        FROM range({rows}) t(i)""")
    con.execute(f"""
        INSERT INTO requests (timestamp, id, name, url, success, resultCode, duration, operation_Id,
                              customDimensions, itemType, itemCount, _service, _seq, itemId)
        SELECT {now} - to_microseconds(i * {step_us}), 'q' || i,
               CASE WHEN i % 10 = 0 THEN 'GET /health' ELSE 'POST /score' END,
               'http://127.0.0.1:5001/score', i % 50 <> 0,
               CASE WHEN i % 50 <> 0 THEN '200' WHEN i % 100 = 0 THEN '500' ELSE '503' END,
               (i % 1000) / 10.0 + 1, md5('op' || i), '{{"x-request-id": "' || uuid_from_i(i) || '"}}',
               'request', 1, 'svc-' || (i % {SERVICES}), i, md5('item' || i)
        FROM range({rows}) t(i)""")
    con.execute(f"""
        INSERT INTO exceptions (timestamp, problemId, type, message, operation_Id, severityLevel,
                                itemType, itemCount, _service, _seq)
        SELECT {now} - to_microseconds(i * {step_us}), 'ValueError at score.py:12', 'ValueError',
               'bad input ' || i, md5('op' || i), 3, 'exception', 1, 'svc-' || (i % {SERVICES}), i
        FROM range(0, {rows}, 100) t(i)""")
    con.execute("CHECKPOINT")


def lookups(rows: int) -> list[tuple[str, str, str]]:
    """(name, KQL, service) of the queries that find one request, about ids of rows 40% of the way
    into the generated ones (what `generate` puts in them, recomputed here)."""
    i = rows * 2 // 5 // 100 * 100  # a request of svc-0 with an exception
    op, other = (hashlib.md5(f"op{n}".encode()).hexdigest() for n in (i, i + 4))
    odd = hashlib.md5(f"op{i + 1}".encode()).hexdigest()  # a trace of svc-1 whose message names it
    request_id = re.sub(r"^(.{8})(.{4})(.{4})(.{4})(.{12})$", r"\1-\2-\3-\4-\5", hashlib.md5(f"x{i}".encode()).hexdigest())
    item = hashlib.md5(f"item{i}".encode()).hexdigest()
    return [
        ("search id", f'search "{op}"', SERVICE),
        ("union 3 ==", f'union traces, requests, exceptions | where operation_Id == "{op}"', SERVICE),
        ("requests ==", f'requests | where operation_Id == "{op}"', SERVICE),
        ("union * in", f'union * | where operation_Id in ("{op}", "{other}")', SERVICE),
        ("itemId ==", f'requests | where itemId == "{item}"', SERVICE),
        ("x-request-id", f'requests | where customDimensions["x-request-id"] == "{request_id}"', SERVICE),
        ("message has", f'traces | where message has "{odd}"', "svc-1"),
    ]


def time_lookups(con: duckdb.DuckDBPyConnection, rows: int, runs: int) -> None:
    """Each lookup narrowed by the index and as the full scan of the same query (the engine with
    the narrowing switched off), alternating, same process and file."""
    print(f"{'lookup':<14} {'indexed p50 ms':>15} {'full scan p50 ms':>17} {'rows':>5}")
    narrowed = engine.lookup.narrowed
    for name, kql, service in lookups(rows):
        cursor = con.cursor()

        def full(cursor=cursor, kql=kql, service=service):
            engine.lookup.narrowed = lambda scope, *_: scope
            try:
                return run_query(cursor, kql, services=[service], timeout_s=600)
            finally:
                engine.lookup.narrowed = narrowed

        fast = run_query(cursor, kql, services=[service])
        assert sorted(map(repr, fast.rows)) == sorted(map(repr, full().rows)), name
        assert '"_seq" IN (' in fast.sql, f"{name} was not narrowed"
        ours, scan = map(_p50, _time([lambda c=cursor, k=kql, s=service: run_query(c, k, services=[s]), full], runs))
        print(f"{name:<14} {ours:>15.1f} {scan:>17.1f} {len(fast.rows):>5}")


def _p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _time(fns, runs: int) -> list[list[float]]:
    """Samples of each of *fns*, run in turn within each round: on a shared machine a burst of
    other work then slows both sides of a comparison, not whichever happened to be running."""
    for fn in fns:
        fn()  # warm: file pages and the translator's first-use cost are not what we measure
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, samples):
            started = time.perf_counter()
            fn()
            out.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--lookup-runs", type=int, default=3, help="the full scans take seconds each")
    parser.add_argument("--db", default="/tmp/bench-query.duckdb")
    parser.add_argument("--keep", action="store_true", help="reuse the database if it has the rows")
    args = parser.parse_args()

    path = Path(args.db)
    fresh = not (args.keep and path.exists())
    if fresh:
        path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    if fresh:
        started = time.perf_counter()
        generate(con, args.rows)
        print(f"generated {args.rows:,} traces and requests in {time.perf_counter() - started:.1f} s")
    for ddl in lookup_index.DDL:
        con.execute(ddl)
    started = time.perf_counter()
    lookup_index.LookupIndex(con)  # indexes the generated rows (as a store opened without an index)
    print(f"lookup index ready in {time.perf_counter() - started:.1f} s")
    columns = {name: ", ".join(f'"{c}"' for c in t.column_names) for name, t in TABLES.items()}

    print(f"{'query':<18} {'ours p50 ms':>12} {'SQL p50 ms':>12} {'ratio':>7} {'rows':>6}")
    for name, kql, sql in QUERIES:
        sql = sql.format(**columns, day=DAY_AGO)
        cursor = con.cursor()
        result = run_query(cursor, kql, services=[SERVICE])
        baseline_rows = cursor.execute(sql).fetchall()
        assert len(result.rows) == len(baseline_rows), (name, len(result.rows), len(baseline_rows))
        ours, hand = map(_p50, _time([lambda cursor=cursor, kql=kql: run_query(cursor, kql, services=[SERVICE]),
                                      lambda cursor=cursor, sql=sql: cursor.execute(sql).fetchall()], args.runs))
        print(f"{name:<18} {ours:>12.1f} {hand:>12.1f} {ours / hand:>6.2f}x {len(result.rows):>6}")
    time_lookups(con, args.rows, args.lookup_runs)
    con.close()


if __name__ == "__main__":
    main()
