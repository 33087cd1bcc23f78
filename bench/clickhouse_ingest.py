"""Ingestion throughput into ClickHouse beside DuckDB, in the same run: the same load (bench/ingest.py's
loader: gzip batches of 500 mixed envelopes over several connections, from a separate process)
against a collector on the embedded DuckDB store, then against a collector with `--store
clickhouse://...` on the ClickHouse stand-in (tests/clickhouse/chdb_server.py: chdb behind
ClickHouse's HTTP interface, since no ClickHouse server can run here). Every acknowledged item must
be found in the store afterwards.

    python bench/clickhouse_ingest.py [--seconds 20] [--connections 16]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "clickhouse"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from chdb_stand_in import start_server  # noqa: E402
from collector_process import CollectorProcess, free_port  # noqa: E402
from ingest import TABLES, count_rows, cpu_seconds, load  # noqa: E402
from loader import ITEMS_PER_BATCH  # noqa: E402

from collector.store.clickhouse.location import PASSWORD_ENV, ClickHouseConnection, parse  # noqa: E402

console = Console()


def run(collector: CollectorProcess, seconds: float, connections: int) -> dict:
    """Load a started collector; its figures (the rows are counted by the caller)."""
    ikey = collector.create_service("bench")["instrumentation_key"]
    cpu_before = cpu_seconds(collector.process.pid)
    acked, latencies, wall = load(collector, ikey, seconds, connections)
    cpu = cpu_seconds(collector.process.pid) - cpu_before
    items = acked * ITEMS_PER_BATCH
    latencies_ms = sorted(x * 1000 for x in latencies)
    return {"items": items, "items/s": items / wall, "cpu µs/item": cpu / max(items, 1) * 1e6,
            "p50": statistics.median(latencies_ms), "p99": latencies_ms[int(len(latencies_ms) * 0.99) - 1]}


def duckdb_run(tmp: Path, seconds: float, connections: int) -> dict:
    (tmp / "duckdb").mkdir()
    collector = CollectorProcess(tmp / "duckdb" / "data").start()
    figures = run(collector, seconds, connections)
    collector.stop()
    figures["found"] = count_rows(collector.data_dir / "telemetry.duckdb")
    return figures


def clickhouse_run(tmp: Path, seconds: float, connections: int) -> dict:
    server = start_server(tmp / "clickhouse", free_port(), password=secrets.token_hex(12))
    try:
        url = server.fresh_url("bench")
        env = {PASSWORD_ENV: server.password}
        subprocess.run([sys.executable, "-m", "collector", "store", "migrate", "--store", url],
                       env={**__import__("os").environ, **env}, check=True, capture_output=True)
        (tmp / "ch").mkdir()
        collector = CollectorProcess(tmp / "ch" / "data", env={"INSIGHTS_STORE": url, **env}).start(timeout=60)
        figures = run(collector, seconds, connections)
        collector.stop()
        location = parse(url, env)
        assert location is not None
        client = ClickHouseConnection.at(location).client()
        figures["found"] = sum(client.query(f"SELECT count() FROM `{t}`").result_rows[0][0] for t in TABLES)
        figures["stand-in CPU s"] = cpu_seconds(server.process.pid)
    finally:
        server.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with console.status("DuckDB (baseline)"):
            duck = duckdb_run(Path(tmp), args.seconds, args.connections)
        with console.status("ClickHouse (chdb stand-in)"):
            click = clickhouse_run(Path(tmp), args.seconds, args.connections)
    table = Table(title="bench/clickhouse_ingest.py")
    for column in ("measure", "DuckDB (baseline)", "ClickHouse (stand-in)"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    table.add_row("acknowledged items", f"{duck['items']:,}", f"{click['items']:,}")
    table.add_row("rows found after stop", f"{duck['found']:,}", f"{click['found']:,}")
    table.add_row("every acknowledged item found", *("yes" if f["found"] >= f["items"] else "NO" for f in (duck, click)))
    table.add_row("collector items/s", f"{duck['items/s']:,.0f}", f"{click['items/s']:,.0f}")
    table.add_row("collector CPU per item (µs)", f"{duck['cpu µs/item']:.1f}", f"{click['cpu µs/item']:.1f}")
    table.add_row("batch latency p50 / p99 (ms)", f"{duck['p50']:.0f} / {duck['p99']:.0f}", f"{click['p50']:.0f} / {click['p99']:.0f}")
    table.add_row("ClickHouse / DuckDB items/s", "", f"{click['items/s'] / duck['items/s']:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
