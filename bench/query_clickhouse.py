"""KQL on both stores in the same run: bench/query.py's queries and the rare-term lookups, through
`run_query`, on DuckDB and on ClickHouse's engine in process (chdb, through clickhouse-connect as
the ClickHouse store runs it, on the store's own DDL with its skip indexes), same rows.

The rows are bench/query.py's (N traces, N requests, N/100 exceptions over 7 days, 4 services),
generated in DuckDB and copied into chdb with Arrow inserts, plus one needle trace per store (a
rare operation_Id and a rare word in its message) for the lookups a user runs to find one request,
next to a full scan of the same table.

    python bench/query_clickhouse.py [--rows 1000000] [--runs 5] [--lookup-index]   # --rows 10000000 for 10M

`--lookup-index` then builds the DuckDB store's lookup index (issue 22; on by default in a DuckDB
store) over the same rows and times the rare-term lookups on DuckDB with it, beside chdb's skip
indexes: the comparison a user of either store gets by default.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import clickhouse_connect
import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from query import DAY_AGO, QUERIES, SERVICE, _p50, _time, generate  # noqa: E402

from collector.kql import KqlError, run_query  # noqa: E402
from collector.store import lookup_index  # noqa: E402
from collector.store.clickhouse.location import ClickHouseConnection  # noqa: E402
from collector.store.clickhouse.schema import create_statements  # noqa: E402
from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN, TABLES  # noqa: E402

DATABASE = "bench"
NEEDLE_OP = "op-needle-7f3a"
NEEDLE_WORD = "zebracorn"

LOOKUPS = [
    ("operation_Id ==", f'traces | where operation_Id == "{NEEDLE_OP}"'),
    ("message has", f'traces | where message has "{NEEDLE_WORD}"'),
    ("search", f'search in (traces) "{NEEDLE_WORD}" | project message'),
    ("full scan", f'traces | where message contains "{NEEDLE_WORD}"'),
    ("count", "traces | count"),
]


def add_needle(con: duckdb.DuckDBPyConnection) -> None:
    """One trace of SERVICE with a rare operation_Id and a rare word (the row a user looks for)."""
    con.execute(f"""INSERT INTO traces (timestamp, message, severityLevel, operation_Id, itemType,
                    itemCount, _service, _seq)
                    VALUES (CAST(now() AS TIMESTAMP), 'disk quota {NEEDLE_WORD} exceeded', 3,
                            '{NEEDLE_OP}', 'trace', 1, '{SERVICE}', -1)""")


def copy_to_clickhouse(con: duckdb.DuckDBPyConnection, client) -> float:
    """Every table's rows into ClickHouse (Arrow batches of 1M); returns rows/s."""
    for statement in create_statements(DATABASE):
        client.command(statement)
    started, total = time.perf_counter(), 0
    for table in TABLES.values():
        dynamic = {c.name for c in table.columns if c.kql_type == "dynamic"}
        names = [*table.column_names, SERVICE_COLUMN, SEQ_COLUMN]
        select = ", ".join(f'CAST("{n}" AS VARCHAR) AS "{n}"' if n in dynamic else f'"{n}"' for n in names)
        reader = con.sql(f'SELECT {select} FROM "{table.name}"').to_arrow_reader(1_000_000)
        for batch in reader:
            if batch.num_rows:
                client.insert_arrow(f"`{DATABASE}`.`{table.name}`", pa.Table.from_batches([batch]))
                total += batch.num_rows
    return total / (time.perf_counter() - started)


TIMEOUT_S = 600
"""A scan of 10M rows on a shared machine can take longer than the query API's 30 s."""


def _run(con, kql: str):
    return run_query(con, kql, services=[SERVICE], timeout_s=TIMEOUT_S)


def _answer(con, kql: str) -> int | str:
    try:
        return len(_run(con, kql).rows)
    except KqlError as exc:
        return f"refused: {exc}"


def time_indexed_lookups(duck: duckdb.DuckDBPyConnection, clickhouse: ClickHouseConnection, runs: int) -> None:
    """The rare-term lookups again, DuckDB now with the lookup index its store keeps by default."""
    started = time.perf_counter()
    for ddl in lookup_index.DDL:
        duck.execute(ddl)
    lookup_index.LookupIndex(duck)  # indexes the rows already there, as a store opened without an index
    print(f"DuckDB lookup index built in {time.perf_counter() - started:.1f} s")
    print(f"{'lookup':<18} {'DuckDB+index ms':>15} {'chdb p50 ms':>12} {'ratio':>7} {'rows':>8}")
    for name, kql in LOOKUPS[:3]:
        duck_rows, ch_rows = _answer(duck.cursor(), kql), _answer(clickhouse, kql)
        flag = "" if duck_rows == ch_rows else f"  (DuckDB {duck_rows} rows)"
        on_duck, on_ch = map(_p50, _time([lambda kql=kql: _run(duck.cursor(), kql), lambda kql=kql: _run(clickhouse, kql)],
                                         runs))
        print(f"{name:<18} {on_duck:>15.1f} {on_ch:>12.1f} {on_ch / on_duck:>6.2f}x {ch_rows:>8}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lookup-index", action="store_true", help="then time the lookups on DuckDB with its lookup index")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-kql-ch-"))
    duck = duckdb.connect(str(work / "bench.duckdb"))
    started = time.perf_counter()
    generate(duck, args.rows)
    add_needle(duck)
    print(f"generated {args.rows:,} traces and requests in DuckDB in {time.perf_counter() - started:.1f} s")
    client = clickhouse_connect.get_client(dsn=f"chdb://{work / 'chdb'}")
    rate = copy_to_clickhouse(duck, client)
    print(f"copied into chdb at {rate:,.0f} rows/s (Arrow inserts); OPTIMIZE FINAL so parts are merged")
    for table in TABLES:
        client.command(f"OPTIMIZE TABLE `{DATABASE}`.`{table}` FINAL")
    clickhouse = ClickHouseConnection(lambda: client, DATABASE)

    queries = [(name, kql) for name, kql, _ in QUERIES] + LOOKUPS
    print(f"{'query':<18} {'DuckDB p50 ms':>14} {'chdb p50 ms':>12} {'ratio':>7} {'rows':>8}")
    for name, kql in queries:
        kql = kql.replace("{day}", DAY_AGO)
        duck_rows, ch_rows = _answer(duck.cursor(), kql), _answer(clickhouse, kql)
        if isinstance(ch_rows, str):
            print(f"{name:<18} {'':>14} {'':>12} {'':>7}  clickhouse {ch_rows}")
            continue
        flag = "" if duck_rows == ch_rows else f"  (DuckDB {duck_rows} rows)"
        on_duck, on_ch = map(_p50, _time([lambda kql=kql: _run(duck.cursor(), kql), lambda kql=kql: _run(clickhouse, kql)],
                                         args.runs))
        print(f"{name:<18} {on_duck:>14.1f} {on_ch:>12.1f} {on_ch / on_duck:>6.2f}x {ch_rows:>8}{flag}")
    if args.lookup_index:
        time_indexed_lookups(duck, clickhouse, args.runs)
    client.close()
    duck.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
