"""The application map and shared live metrics on the ClickHouse store (chdb in process, through
clickhouse-connect as the store runs it, on the store's own DDL).

1. The map over one day: bench/live.py's generated requests and dependencies (20 roles, 100
   external targets, a fifth of the calls answered by another role), inserted with Arrow, then
   `map_rows` (collector/store/clickhouse/map_rollups.py: what GET /api/map answers there) timed
   over the last 24 h; baseline in the same run: the three KQL queries over the same rows
   (live/appmap.py, what `source=kql` runs), lowered to ClickHouse. Wall and CPU seconds (the
   process's, chdb's threads included: on shared cores the CPU figure moves less).
2. Sharing live metrics (collector/store/clickhouse/live.py): one publish of a busy second (100 role
   instances, 30 failure samples), and one read of what PEERS other collectors published in their
   last second, as each collector does about once a second.

    python bench/clickhouse_map.py [--rows 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import clickhouse_connect
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collector.kql import run_query  # noqa: E402
from collector.store.clickhouse import tables  # noqa: E402
from collector.store.clickhouse.live import Calls, LiveShare, SharedSample, SharedSecond  # noqa: E402
from collector.store.clickhouse.location import ClickHouseConnection  # noqa: E402
from collector.store.clickhouse.map_rollups import ClickHouseMapRollups  # noqa: E402
from collector.store.clickhouse.schema import create_statements  # noqa: E402
from collector.store.schema import SEQ_COLUMN  # noqa: E402
from live.appmap import build_map, map_from_rollups  # noqa: E402

DATABASE = "bench"
CHUNK_ROWS = 200_000
PEERS = 3


def _bench_live():
    """bench/live.py (its name would shadow the `live` package on sys.path)."""
    spec = importlib.util.spec_from_file_location("bench_live", ROOT / "bench" / "live.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(connection: ClickHouseConnection, rows: int) -> float:
    """Both tables' rows into ClickHouse; rows/s (both tables counted)."""
    generated = _bench_live().generated
    client = connection.client()
    for statement in create_statements(DATABASE):
        client.command(statement)
    tables.create_missing(connection)  # live_share, as `insights store migrate` makes it
    started, seq = time.perf_counter(), 0
    for first in range(0, rows, CHUNK_ROWS):
        for name, table in generated(rows, first, min(rows, first + CHUNK_ROWS)).items():
            table = table.append_column(SEQ_COLUMN, pa.array(range(seq, seq + table.num_rows), pa.int64()))
            seq += table.num_rows
            client.insert_arrow(name, table, database=DATABASE)
    return 2 * rows / (time.perf_counter() - started)


def map_times(connection: ClickHouseConnection, runs: int) -> dict:
    end = datetime.now(UTC).replace(tzinfo=None, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(hours=24, minutes=2)  # every row, in one window for both
    window = f"{start.isoformat()}/{end.isoformat()}"
    rollups = ClickHouseMapRollups(connection)

    def query(text: str) -> list[dict]:
        result = run_query(connection, text, services=None, timespan=window, timeout_s=300)
        names = [name for name, _ in result.columns]
        return [dict(zip(names, row, strict=True)) for row in result.rows]

    timings: dict[str, list[float]] = {"map_rows": [], "kql": []}
    cpu: dict[str, list[float]] = {"map_rows": [], "kql": []}
    found: dict[str, dict] = {}
    for _ in range(runs):
        for name, make in (("map_rows", lambda: map_from_rollups(rollups.map_rows(None, start, end), 24 * 60)),
                           ("kql", lambda: build_map(query, 24 * 60))):
            began, began_cpu = time.perf_counter(), time.process_time()
            found[name] = make()
            timings[name].append(time.perf_counter() - began)
            cpu[name].append(time.process_time() - began_cpu)

    def calls(answer: dict) -> dict:
        return {(edge["source"], edge["target"]): edge["calls"] for edge in answer["edges"]}

    return {"map from the rows s (median)": round(statistics.median(timings["map_rows"]), 3),
            "each": [round(t, 3) for t in timings["map_rows"]],
            "CPU s (median, chdb's threads included)": round(statistics.median(cpu["map_rows"]), 3),
            "KQL map s (median, baseline)": round(statistics.median(timings["kql"]), 3),
            "KQL each": [round(t, 3) for t in timings["kql"]],
            "KQL CPU s (median)": round(statistics.median(cpu["kql"]), 3),
            "same edges and calls": calls(found["map_rows"]) == calls(found["kql"]),
            "nodes / edges": f"{len(found['map_rows']['nodes'])} / {len(found['map_rows']['edges'])}"}


def sharing_times(connection: ClickHouseConnection, runs: int) -> dict:
    """One busy second published by each of PEERS collectors, then read by another, `runs` times."""
    peers = [LiveShare(connection, f"peer-{n}") for n in range(PEERS)]
    reader = LiveShare(connection, "reader")
    calls = Calls(200, 3, 200 * 42.0, {bin_: 10 for bin_ in range(60, 80)})
    second = int(time.time())
    publish, read = [], []
    for run in range(runs):
        second += 1
        seconds = [SharedSecond(second, "bench", f"role-{n % 20}", f"inst-{n}", calls, calls, 1, 12.5, 2**28)
                   for n in range(100)]
        samples = [SharedSample(second, "bench", {"table": "requests", "id": f"f{run}-{n}", "success": False})
                   for n in range(30)]
        for peer in peers:
            began = time.perf_counter()
            peer.publish(seconds, samples, second, ["bench"])
            publish.append(time.perf_counter() - began)
        began = time.perf_counter()
        reader.peers(second)
        shared = reader.read(second - 1, second)
        read.append(time.perf_counter() - began)
        assert len(shared.seconds) == 100 * PEERS and len(shared.samples) == 30 * PEERS
    return {"publish ms (median; 100 instances, 30 samples)": round(statistics.median(publish) * 1000, 1),
            f"marks + read of {PEERS} peers' second ms (median)": round(statistics.median(read) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="requests, and as many dependencies")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        connection = ClickHouseConnection(lambda: clickhouse_connect.get_client(dsn=f"chdb://{folder}/db"), DATABASE)
        print(f"loaded {args.rows:,} requests + {args.rows:,} dependencies: {load(connection, args.rows):,.0f} rows/s")
        print("application map over 24 h:", map_times(connection, args.runs))
        print("sharing live metrics:", sharing_times(connection, args.runs * 4))


if __name__ == "__main__":
    main()
