"""A new dynamic rule's backfill: a week of 15-minute windows asked one query per window (before:
672 queries) vs one binned query (after: alerts/backfill.py), on both stores, in the same run.

Fills a DuckDB store and a ClickHouse store (chdb in this process: no ClickHouse server runs here)
with `--rows` requests spread over the 8 days before the rule's first window, then for two of the
built-in dynamic rules' shapes (`requests` counted; `requests | summarize p95 = percentile(duration,
95)`, measured max(p95)) and a split-by rule, times both ways and checks they give the same values.

    python bench/alerts_backfill.py [--rows 200000] [--runs 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts import backfill  # noqa: E402
from alerts.specs import rule_spec  # noqa: E402
from collector.store.alerts import Rule, Value  # noqa: E402
from collector.store.clickhouse.location import ClickHouseConnection  # noqa: E402
from collector.store.clickhouse.schema import create_statements  # noqa: E402
from collector.store.database import Store  # noqa: E402
from collector.store.schema import SEQ_COLUMN, TABLES  # noqa: E402

SERVICE = "bench"
BEFORE = datetime(2026, 3, 9, 12, 5)
RULES = {
    "rows": {"query": "requests", "frequency": "PT5M", "window": "PT5M"},
    "p95": {"query": "requests | summarize p95 = percentile(duration, 95)", "measure": "max(p95)",
            "frequency": "PT5M", "window": "PT5M"},
    "failed by region": {"query": "requests | where success == false | extend region = tostring(customDimensions.region)",
                         "frequency": "PT15M", "window": "PT15M", "split_by": ["region"]},
}


def requests(rows: int) -> pa.Table:
    rng = random.Random(7)
    first = BEFORE - timedelta(days=8)
    span_us = 8 * 86_400 * 1_000_000
    epoch_us = int((first - datetime(1970, 1, 1)) / timedelta(microseconds=1))
    return TABLES["requests"].to_arrow([
        {"timestamp": epoch_us + rng.randrange(span_us), "name": "POST /score", "success": rng.random() > 0.05,
         "duration": round(rng.expovariate(1 / 40), 3), "customDimensions": f'{{"region": "{rng.choice("ab")}"}}',
         "itemId": f"r{i}", "itemType": "request", "_service": SERVICE} for i in range(rows)])


def stores(folder: Path, table: pa.Table) -> dict[str, object]:
    duck = Store(folder / "duckdb")
    duck.writer.write({"requests": table}).result()
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=f"chdb://{folder / 'chdb'}")
    for statement in create_statements("bench"):
        client.command(statement)
    client.insert_arrow("requests", table.append_column(SEQ_COLUMN, pa.array(range(table.num_rows), pa.int64())),
                        database="bench")
    clickhouse = SimpleNamespace(backend="clickhouse", clickhouse=ClickHouseConnection(lambda: client, "bench"))
    return {"DuckDB": duck, "ClickHouse (chdb)": clickhouse}


def timed(work) -> tuple[float, list[Value]]:
    started = time.perf_counter()
    values = work()
    return time.perf_counter() - started, values


def same(left: list[Value], right: list[Value]) -> bool:
    a, b = ({(v.window_end, v.dims_key): v.value for v in values} for values in (left, right))
    return a.keys() == b.keys() and all(
        (a[k] is None) == (b[k] is None) and (a[k] is None or abs(a[k] - b[k]) <= 1e-9 * max(1.0, abs(b[k]))) for k in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=1, help="binned runs per rule (the median is shown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        found = stores(Path(folder), requests(args.rows))
        print(f"{args.rows:,} requests over 8 days in each store; a week of windows per rule")
        for store_name, store in found.items():
            for rule_name, body in RULES.items():
                rule = Rule(SERVICE, rule_name, rule_spec({"name": rule_name.replace(" ", "-"), **body,
                                                          "operator": "GreaterThan", "dynamic": "medium"}, 60))
                ends = backfill.window_ends(rule, BEFORE)
                before_s, per_window = timed(partial(backfill.per_window_values, store, rule, ends, 60))
                runs = [timed(partial(backfill.binned_values, store, rule, ends, 60)) for _ in range(args.runs)]
                after_s = statistics.median(seconds for seconds, _ in runs)
                binned = runs[0][1]
                assert binned is not None and same(binned, per_window), (store_name, rule_name)
                print(f"{store_name:<18} {rule_name:<17} {len(ends)} windows: per window {before_s:6.2f} s, "
                      f"binned {after_s:5.2f} s ({before_s / after_s:5.1f}x), {len(binned)} values, same values")
        duck = found["DuckDB"]
        assert isinstance(duck, Store)
        duck.close()


if __name__ == "__main__":
    main()
