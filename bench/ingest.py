"""Ingestion throughput: realistic gzip batches of 500 mixed envelopes from a separate process.

Starts a real collector on a temp data dir, loads it over several connections for a fixed time,
then stops it and counts the rows in the DuckDB file: every acknowledged item must be there.
Baselines, in the same run: the code of another commit (`--baseline-ref`, default main: its tree
exported with `git archive` and run the same way, alternating with this tree round by round), and
the store's ceiling, i.e. the same rows inserted into DuckDB directly as prebuilt Arrow tables with
no HTTP, parsing or mapping. The load starts once the collector has settled after its start (see
`settled`). Also the start of the ingestion pool's workers, as `insights up` spawns them, with
and without re-running the CLI (collector/ingest/workers.py).

    python bench/ingest.py [--seconds 20] [--connections 16] [--rounds 1] [--baseline-ref main]
        [--pure-python-baseline] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import os
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


def settled(pid: int, idle_share: float = 0.05, timeout: float = 180.0) -> float:
    """Seconds until the collector's processes used less than `idle_share` of a core over a
    second: what it does once after start (its KQL compile workers warm their parser up, several
    CPU-seconds on these cores) is not ingestion, and ran into the first seconds of the load."""
    started = time.perf_counter()
    before = cpu_seconds(pid)
    while time.perf_counter() - started < timeout:
        time.sleep(1.0)
        now = cpu_seconds(pid)
        if now - before < idle_share:
            break
        before = now
    return time.perf_counter() - started


def run_collector(label: str, seconds: float, connections: int, env: dict | None = None) -> dict:
    """One loaded collector: its figures, every acknowledged item counted in the file after stop."""
    with tempfile.TemporaryDirectory() as tmp:
        collector = CollectorProcess(Path(tmp) / "data", env=env).start(timeout=90)
        ikey = collector.create_service("bench")["instrumentation_key"]
        with console.status(f"{label}: waiting for the collector to settle after start"):
            settled(collector.process.pid)
        cpu_before = cpu_seconds(collector.process.pid)
        with console.status(f"{label}: loading for {seconds:.0f} s over {connections} connections"):
            acked, latencies, wall = load(collector, ikey, seconds, connections)
        collector_cpu = cpu_seconds(collector.process.pid) - cpu_before
        collector.stop()
        rows = count_rows(collector.data_dir / "telemetry.duckdb")
    items = acked * ITEMS_PER_BATCH
    latencies_ms = sorted(x * 1000 for x in latencies)
    return {"label": label, "items": items, "rows": rows, "rate": items / wall, "cpu_us": collector_cpu / items * 1e6,
            "p50": statistics.median(latencies_ms), "p99": latencies_ms[int(len(latencies_ms) * 0.99) - 1]}


def baseline_tree(ref: str, into: Path) -> dict:
    """The environment that runs commit `ref`'s code: its tree exported (git archive, nothing in
    the repository changes), first on the path, and the current directory kept off it."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    build_extensions(into)
    return tree_env(into)


def tree_env(tree: Path) -> dict:
    """The environment that runs `tree`'s code: first on the path, the current directory kept off it."""
    return {"PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1"}


def build_extensions(tree: Path) -> None:
    """Build an exported tree's compiled extensions as `pip install -e .` would (they are not
    committed): without them a baseline would run its pure-Python paths and flatter this tree."""
    if (tree / "setup.py").exists():
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tree,
                       capture_output=True, check=False)
        built = sorted(str(p.relative_to(tree)) for p in tree.glob("collector/**/*.so"))
        console.print(f"baseline tree's compiled extensions: {', '.join(built) or 'none (pure-Python paths)'}")


def worker_start() -> list[tuple[str, float, int, float]]:
    """(how, seconds until both workers answered, modules in a worker, its RSS in MB), for the
    pool spawned as `insights up` spawns it: plain spawn (re-runs the `insights` script, so the
    whole CLI) and the lean context."""
    script = """
import sys, time, os, json
from insights.cli import main  # what the `insights` console script runs first
if __name__ == "__main__":
    import multiprocessing, psutil
    from concurrent.futures import ProcessPoolExecutor
    from collector.ingest.prepare import worker_init
    from collector.ingest.workers import LEAN_SPAWN
    out = []
    for how, context in (("spawn (main before)", multiprocessing.get_context("spawn")), ("lean spawn", LEAN_SPAWN)):
        started = time.perf_counter()
        pool = ProcessPoolExecutor(2, mp_context=context, initializer=worker_init, initargs=(os.getpid(),))
        counts = [f.result() for f in [pool.submit(eval, "len(__import__('sys').modules)") for _ in range(4)]]
        elapsed = time.perf_counter() - started
        rss = max(p.memory_info().rss for p in psutil.Process().children()) / 2**20
        pool.shutdown()
        out.append((how, elapsed, max(counts), rss))
    print(json.dumps(out))
"""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "insights_entry.py"
        path.write_text(script)
        output = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    return orjson.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1, help="baseline and this tree alternate, this many times each")
    parser.add_argument("--baseline-ref", default="main", help="the commit whose code is the same-run baseline")
    parser.add_argument("--pure-python-baseline", action="store_true",
                        help="baseline: this tree with the compiled path off (INSIGHTS_INGEST_PURE_PYTHON=1) instead of another commit")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.pure_python_baseline:
            base_label, base_env = "pure-Python path", {"INSIGHTS_INGEST_PURE_PYTHON": "1"}
        else:
            base_label, base_env = f"baseline {args.baseline_ref}", baseline_tree(args.baseline_ref, Path(tmp))
        for _ in range(args.rounds):
            if not args.skip_baseline:
                results.append(run_collector(base_label, args.seconds, args.connections, base_env))
            results.append(run_collector("this tree", args.seconds, args.connections))
    items = max(r["items"] for r in results)
    with console.status("baseline: DuckDB alone"):
        ceiling = baseline(items)
    with console.status("ingestion workers' start"):
        starts = worker_start()
    table = Table(title="bench/ingest.py")
    table.add_column("measure")
    for result in results:
        table.add_column(result["label"], justify="right")
    rows = [
        ("acknowledged items", lambda r: f"{r['items']:,}"),
        ("rows found after stop", lambda r: f"{r['rows']:,}"),
        ("every acknowledged item found", lambda r: "yes" if r["rows"] >= r["items"] else "NO"),
        ("collector items/s", lambda r: f"{r['rate']:,.0f}"),
        ("collector CPU per item (µs, all its processes)", lambda r: f"{r['cpu_us']:.1f}"),
        ("batch latency p50 (ms)", lambda r: f"{r['p50']:.1f}"),
        ("batch latency p99 (ms)", lambda r: f"{r['p99']:.1f}"),
        ("collector / DuckDB Arrow insert", lambda r: f"{r['rate'] / ceiling:.2f}"),
    ]
    for name, cell in rows:
        table.add_row(name, *(cell(r) for r in results))
    console.print(table)
    console.print(f"baseline: DuckDB Arrow insert, 500-row commits: {ceiling:,.0f} items/s")
    ours = [r for r in results if r["label"] == "this tree"]
    theirs = [r for r in results if r["label"] != "this tree"]
    if theirs:
        rate = statistics.median(r["rate"] for r in ours) / statistics.median(r["rate"] for r in theirs)
        cpu = statistics.median(r["cpu_us"] for r in ours) / statistics.median(r["cpu_us"] for r in theirs)
        console.print(f"this tree / {base_label}: items/s {rate:.2f}x, CPU per item {cpu:.2f}x")
    for how, seconds, modules, rss in starts:
        console.print(f"ingestion pool of 2, {how}: ready in {seconds:.2f} s, {modules} modules and {rss:.0f} MB RSS per worker")


if __name__ == "__main__":
    main()
