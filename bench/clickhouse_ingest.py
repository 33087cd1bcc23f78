"""Ingestion throughput into ClickHouse beside DuckDB, in the same run: the same load (bench/ingest.py's
loader: gzip batches of 500 mixed envelopes over several connections, from a separate process)
against a collector on the embedded DuckDB store, then against a collector with `--store
clickhouse://...` on the ClickHouse stand-in (tests/clickhouse/chdb_server.py: chdb behind
ClickHouse's HTTP interface, since no ClickHouse server can run here). Every acknowledged item must
be found in the store afterwards.

    python bench/clickhouse_ingest.py [--seconds 20] [--connections 16] [--prefill 10000000]

`--prefill N` adds a run into stores that already hold ~N rows, on both stores in the same run, each
against its empty-store figure. The rows are made by a bulk path, not through HTTP (minutes, not
hours): bench/query.py's generator writes them into a collector's DuckDB store file (N/2 traces, N/2
requests, N/200 exceptions over the last 7 days), `insights store copy`'s code moves the same rows
into a migrated ClickHouse database; the DuckDB collector builds its lookup index over them when it
opens the file, as for any store without one, and each load starts once the collector settled.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "clickhouse"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from chdb_stand_in import start_server  # noqa: E402
from collector_process import CollectorProcess, free_port  # noqa: E402
from ingest import TABLES, count_rows, cpu_seconds, load, settled  # noqa: E402
from loader import ITEMS_PER_BATCH  # noqa: E402
from query import generate  # noqa: E402

from collector.store.clickhouse.copy import copy_store  # noqa: E402
from collector.store.clickhouse.location import PASSWORD_ENV, ClickHouseConnection, parse  # noqa: E402
from collector.store.database import DB_FILENAME  # noqa: E402

console = Console(width=200)


def run(collector: CollectorProcess, seconds: float, connections: int) -> dict:
    """Load a started collector once it settled; its figures (the rows are counted by the caller)."""
    ikey = collector.create_service("bench")["instrumentation_key"]
    settled(collector.process.pid, timeout=1800)
    cpu_before = cpu_seconds(collector.process.pid)
    acked, latencies, wall = load(collector, ikey, seconds, connections)
    cpu = cpu_seconds(collector.process.pid) - cpu_before
    items = acked * ITEMS_PER_BATCH
    latencies_ms = sorted(x * 1000 for x in latencies)
    return {"items": items, "items/s": items / wall, "cpu µs/item": cpu / max(items, 1) * 1e6,
            "p50": statistics.median(latencies_ms), "p99": latencies_ms[int(len(latencies_ms) * 0.99) - 1]}


def prefilled_dir(tmp: Path, rows: int) -> Path:
    """A collector's data dir whose DuckDB store file holds ~`rows` rows (bench/query.py's generator)."""
    data_dir = tmp / "duckdb-full" / "data"
    data_dir.mkdir(parents=True)
    with duckdb.connect(str(data_dir / DB_FILENAME)) as con:
        generate(con, rows // 2)
    return data_dir


def duckdb_run(data_dir: Path, seconds: float, connections: int) -> dict:
    """Load a collector on the DuckDB store in `data_dir` (empty or prefilled); every row counted after."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    before = count_rows(data_dir / DB_FILENAME) if (data_dir / DB_FILENAME).exists() else 0
    started = time.perf_counter()
    collector = CollectorProcess(data_dir).start(timeout=1800)  # a prefilled store is indexed before it serves
    figures = {"open s": time.perf_counter() - started, **run(collector, seconds, connections)}
    collector.stop()
    figures["found"] = count_rows(collector.data_dir / DB_FILENAME) - before
    return figures


def clickhouse_run(server, tmp: Path, seconds: float, connections: int, copy_from: Path | None = None) -> dict:
    """Load a collector on a fresh migrated ClickHouse database on `server`, first filled with the
    DuckDB store in `copy_from` if given (`insights store copy`'s code); every row counted after."""
    url = server.fresh_url("full" if copy_from else "bench")
    env = {PASSWORD_ENV: server.password}
    subprocess.run([sys.executable, "-m", "collector", "store", "migrate", "--store", url],
                   env={**os.environ, **env}, check=True, capture_output=True)
    location = parse(url, env)
    assert location is not None
    connection = ClickHouseConnection.at(location)
    started = time.perf_counter()
    if copy_from is not None:
        copy_store(copy_from, connection)
    copy_s = time.perf_counter() - started
    before = _clickhouse_rows(connection)
    folder = tmp / Path(url).name
    folder.mkdir()
    collector = CollectorProcess(folder / "data", env={"INSIGHTS_STORE": url, **env}).start(timeout=120)
    figures = {"copy s": copy_s, "held": before, **run(collector, seconds, connections)}
    collector.stop()
    figures["found"] = _clickhouse_rows(connection) - before
    return figures


def _clickhouse_rows(connection: ClickHouseConnection) -> int:
    client = connection.client()
    return sum(client.query(f"SELECT count() FROM `{connection.database}`.`{t}`").result_rows[0][0] for t in TABLES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--prefill", type=int, default=0, help="also ingest into stores already holding ~N rows")
    args = parser.parse_args()
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        server = start_server(tmp / "clickhouse", free_port(), password=secrets.token_hex(12))
        try:
            with console.status("DuckDB, empty store (baseline)"):
                runs["DuckDB empty"] = duckdb_run(tmp / "duckdb" / "data", args.seconds, args.connections)
            with console.status("ClickHouse (chdb stand-in), empty store"):
                runs["ClickHouse empty"] = clickhouse_run(server, tmp, args.seconds, args.connections)
            if args.prefill:
                with console.status(f"generating {args.prefill:,} rows into a DuckDB store file"):
                    started = time.perf_counter()
                    full = prefilled_dir(tmp, args.prefill)
                    console.print(f"generated {count_rows(full / DB_FILENAME):,} rows in {time.perf_counter() - started:.0f} s")
                with console.status("ClickHouse: copying the rows in, then loading"):
                    runs["ClickHouse full"] = clickhouse_run(server, tmp, args.seconds, args.connections, copy_from=full)
                with console.status("DuckDB: opening (indexing) the prefilled store, then loading"):
                    runs["DuckDB full"] = duckdb_run(full, args.seconds, args.connections)
        finally:
            server.stop()
    console.print(_table(runs))


def _table(found: dict[str, dict]) -> Table:
    order = [name for name in ("DuckDB empty", "DuckDB full", "ClickHouse empty", "ClickHouse full") if name in found]
    runs = {name: found[name] for name in order}
    table = Table(title="bench/clickhouse_ingest.py")
    table.add_column("measure")
    for name in runs:
        table.add_column(name, justify="right")
    row = table.add_row
    if "ClickHouse full" in runs:
        held = f"{runs['ClickHouse full']['held']:,}"
        row("rows held before the load", *(held if name.endswith("full") else "0" for name in runs))
        row("prefill: DuckDB open (index) / ClickHouse copy (s)", "", f"{runs['DuckDB full']['open s']:.0f}", "",
            f"{runs['ClickHouse full']['copy s']:.0f}")
    row("acknowledged items", *(f"{f['items']:,}" for f in runs.values()))
    row("rows found after stop", *(f"{f['found']:,}" for f in runs.values()))
    row("every acknowledged item found", *("yes" if f["found"] >= f["items"] else "NO" for f in runs.values()))
    row("collector items/s", *(f"{f['items/s']:,.0f}" for f in runs.values()))
    row("collector CPU per item (µs)", *(f"{f['cpu µs/item']:.1f}" for f in runs.values()))
    row("batch latency p50 / p99 (ms)", *(f"{f['p50']:.0f} / {f['p99']:.0f}" for f in runs.values()))
    empty = {"DuckDB": runs["DuckDB empty"], "ClickHouse": runs["ClickHouse empty"]}
    row("items/s vs the same store empty", *(f"{f['items/s'] / empty[name.split()[0]]['items/s']:.2f}" for name, f in runs.items()))
    row("CPU per item vs the same store empty", *(f"{f['cpu µs/item'] / empty[name.split()[0]]['cpu µs/item']:.2f}"
                                                   for name, f in runs.items()))
    row("items/s vs DuckDB at the same size", *(f"{f['items/s'] / runs[name.replace('ClickHouse', 'DuckDB')]['items/s']:.2f}"
                                                  for name, f in runs.items()))
    return table


if __name__ == "__main__":
    main()
