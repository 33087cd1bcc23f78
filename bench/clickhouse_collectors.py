"""Ingestion through one vs two collectors sharing a ClickHouse store, in the same run.

Starts the ClickHouse stand-in (tests/clickhouse/chdb_server.py: chdb behind ClickHouse's HTTP
interface, because no ClickHouse server can run here), migrates a fresh database, then loads it with
tests/loader.py (realistic gzip batches of 500 mixed envelopes, separate processes) first through
one collector, then through two at once (half the connections each, one loader process per
collector), for the same number of seconds. After each phase it counts the service's rows in
ClickHouse: every acknowledged item must be there.

    python bench/clickhouse_collectors.py [--seconds 15] [--connections 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "clickhouse"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from chdb_stand_in import start_server  # noqa: E402
from collector_process import free_port  # noqa: E402
from loader import ITEMS_PER_BATCH  # noqa: E402
from scaleout import migrate, start_collectors  # noqa: E402

TABLES = ("traces", "requests", "dependencies", "exceptions", "customMetrics")
console = Console()


def _loader(url: str, ikey: str, seconds: float, connections: int) -> subprocess.Popen:
    script = f"""
import sys, json, time
sys.path.insert(0, {str(ROOT / 'tests')!r})
from loader import prebuilt, run
bodies = prebuilt({ikey!r}, 32)
started = time.perf_counter()
acked, latencies = run({url!r}, {ikey!r}, {seconds}, {connections}, None, None, bodies)
print(json.dumps([len(acked), time.perf_counter() - started]))
"""
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def load(urls: list[str], ikey: str, seconds: float, connections: int) -> tuple[int, float]:
    """Load every collector at once (connections split between them); (acked items, seconds)."""
    loaders = [_loader(url, ikey, seconds, max(1, connections // len(urls))) for url in urls]
    results = [json.loads(loader.communicate()[0]) for loader in loaders]
    return sum(acked for acked, _ in results) * ITEMS_PER_BATCH, max(wall for _, wall in results)


def stored(server, database: str, service: str) -> int:
    client = server.client()
    union = " UNION ALL ".join(f"SELECT count() AS n FROM `{database}`.`{t}` WHERE `_service` = {{s:String}}"
                               for t in TABLES)
    return int(client.query(f"SELECT sum(n) FROM ({union})", parameters={"s": service}).result_rows[0][0])


def phase(server, url: str, root: Path, count: int, seconds: float, connections: int) -> dict:
    collectors = start_collectors(server, url, root, count)
    try:
        service = collectors[0].create_service(f"bench{count}")
        deadline = time.monotonic() + 30  # the others read services from the store every 2 s
        for other in collectors[1:]:
            with other.admin as client:
                while client.get(f"/api/services/{service['name']}").status_code != 200:
                    assert time.monotonic() < deadline, "the service did not reach every collector"
                    time.sleep(0.2)
        acked, wall = load([c.url for c in collectors], service["instrumentation_key"], seconds, connections)
    finally:
        for collector in collectors:
            collector.stop()
    database = url.rsplit("/", 1)[1].split("?")[0]
    return {"acked": acked, "wall": wall, "rows": stored(server, database, service["name"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "clickhouse", free_port())
        try:
            url = server.fresh_url("bench")
            migrate(server, url)
            results = {}
            for count in (1, 2):
                with console.status(f"{count} collector(s), {args.seconds:.0f} s, {args.connections} connections"):
                    results[count] = phase(server, url, Path(tmp) / f"run-{count}", count, args.seconds,
                                           args.connections)
        finally:
            server.stop()
    table = Table(title="bench/clickhouse_collectors.py (ClickHouse stand-in: chdb behind its HTTP interface)")
    table.add_column("measure")
    for count in results:
        table.add_column(f"{count} collector(s)", justify="right")
    table.add_row("acknowledged items", *(f"{r['acked']:,}" for r in results.values()))
    table.add_row("rows found in ClickHouse", *(f"{r['rows']:,}" for r in results.values()))
    table.add_row("every acknowledged item found", *("yes" if r["rows"] >= r["acked"] else "NO" for r in results.values()))
    table.add_row("items/s", *(f"{r['acked'] / r['wall']:,.0f}" for r in results.values()))
    table.add_row("two / one", "", f"{results[2]['acked'] / results[2]['wall'] / (results[1]['acked'] / results[1]['wall']):.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
