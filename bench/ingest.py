"""Ingestion throughput: realistic gzip batches of 500 mixed envelopes from a separate process.

Starts a real collector on a temp data dir, loads it over several connections for a fixed time,
then stops it and counts the rows in the DuckDB file: every acknowledged item must be there.
Baseline, in the same run: the store's ceiling, i.e. the same rows inserted into DuckDB directly
as prebuilt Arrow tables with no HTTP, parsing or mapping.

    python bench/ingest.py [--seconds 20] [--connections 16]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import orjson
import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from collector_process import CollectorProcess  # noqa: E402
from loader import ITEMS_PER_BATCH, batch_body  # noqa: E402

PREBUILT = 64
"""Distinct batches the loader compresses before it starts (see tests/loader.py)."""
TABLES = ("traces", "requests", "dependencies", "exceptions", "customMetrics")
console = Console()


def load(collector: CollectorProcess, ikey: str, seconds: float, connections: int) -> tuple[int, list[float], float]:
    """Run tests/loader.py in its own process; returns (acked batches, latencies, seconds of loading)."""
    script = f"""
import sys, json, time
sys.path.insert(0, {str(ROOT / 'tests')!r})
from loader import prebuilt, run
bodies = prebuilt({ikey!r}, {PREBUILT})
started = time.perf_counter()
acked, latencies = run({collector.url!r}, {ikey!r}, {seconds}, {connections}, None, None, bodies)
print(json.dumps([len(acked), latencies, time.perf_counter() - started]))
"""
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    acked, latencies, wall = orjson.loads(output)
    return acked, latencies, wall


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the collector and its ingestion workers)."""
    process = psutil.Process(pid)
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def count_rows(db_path: Path) -> int:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return sum(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in TABLES)


def baseline(items: int) -> float:
    """Items/s for DuckDB alone: the pipeline's rows, prebuilt as Arrow, inserted in 500-row commits."""
    sys.path.insert(0, str(ROOT))
    import pyarrow as pa

    from collector.ingest.envelope import map_envelope
    from collector.ingest.values import dumps_dynamic
    from collector.store.schema import TABLES as SCHEMA

    envelopes = [orjson.loads(line) for line in __import__("gzip").decompress(batch_body("k", "op", 1)).split(b"\n")]
    by_table: dict[str, list[dict]] = {}
    for envelope in envelopes:
        for table, row in map_envelope(envelope):
            for column in SCHEMA[table].columns:
                if column.kql_type == "dynamic":
                    row[column.name] = dumps_dynamic(row.get(column.name))
            row.update(_service="svc", _seq=1)
            by_table.setdefault(table, []).append(row)
    arrow = {t: pa.Table.from_pylist(rows, schema=SCHEMA[t].arrow_schema) for t, rows in by_table.items()}
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(f"{tmp}/b.duckdb")
        for table in SCHEMA.values():
            con.execute(table.ddl())
        batches = max(1, items // ITEMS_PER_BATCH)
        started = time.perf_counter()
        for _ in range(batches):
            con.execute("BEGIN")
            for table, data in arrow.items():
                con.register("_b", data)
                con.execute(f'INSERT INTO "{table}" SELECT * FROM _b')
                con.unregister("_b")
            con.execute("COMMIT")
        elapsed = time.perf_counter() - started
        con.close()
    return batches * ITEMS_PER_BATCH / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        collector = CollectorProcess(Path(tmp) / "data").start()
        ikey = collector.create_service("bench")["instrumentation_key"]
        cpu_before = cpu_seconds(collector.process.pid)
        with console.status(f"loading for {args.seconds:.0f} s over {args.connections} connections"):
            acked, latencies, wall = load(collector, ikey, args.seconds, args.connections)
        collector_cpu = cpu_seconds(collector.process.pid) - cpu_before
        collector.stop()
        rows = count_rows(collector.data_dir / "telemetry.duckdb")
    items = acked * ITEMS_PER_BATCH
    with console.status("baseline: DuckDB alone"):
        ceiling = baseline(items)
    latencies_ms = sorted(x * 1000 for x in latencies)
    table = Table(title="bench/ingest.py")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("acknowledged items", f"{items:,}")
    table.add_row("rows found after stop", f"{rows:,}")
    table.add_row("every acknowledged item found", "yes" if rows >= items else "NO")
    table.add_row("collector items/s", f"{items / wall:,.0f}")
    table.add_row("collector CPU per item (µs, all its processes)", f"{collector_cpu / items * 1e6:.1f}")
    table.add_row("batch latency p50 (ms)", f"{statistics.median(latencies_ms):.1f}")
    table.add_row("batch latency p99 (ms)", f"{latencies_ms[int(len(latencies_ms) * 0.99) - 1]:.1f}")
    table.add_row("baseline: DuckDB Arrow insert items/s", f"{ceiling:,.0f}")
    table.add_row("collector / baseline", f"{items / wall / ceiling:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
