"""The store side of ingestion alone: the writer thread and DuckDB's threads, per item.

The ingest bench's batches (tests/loader.py: 500 mixed envelopes each) are prepared once, then
submitted to a real Store's writer `--batches` at a time (8 = the writer's group target of 4,000
rows), each group awaited before the next: nothing else runs in the process, so its CPU time is
the store side's cost (the writer's INSERTs and commit, the map rollups, the lookup index,
DuckDB's worker threads; with the ingest spool, its intake thread too, and the figures run until the
last batch is in DuckDB). Baseline, in the same run and alternating: the code of `--baseline-ref`
(exported with `git archive`, as bench/ingest.py does). bench/ingest.py gives the whole collector.

    python bench/store_writer.py [--groups 60] [--batches 8] [--rounds 3] [--baseline-ref main]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISTINCT = 32
"""Distinct prepared batches, submitted round-robin."""


def measure(groups: int, batches: int) -> dict:
    """One store's figures (run in a child process, on the tree first on its path)."""
    import psutil
    from loader import ITEMS_PER_BATCH, batch_body

    from collector.ingest.prepare import prepare_body
    from collector.store.database import Store
    from collector.store.writer import Overloaded

    try:
        from collector.allocator import keep_freed_memory
    except ImportError:  # a baseline from before it
        pass
    else:
        keep_freed_memory()  # as `serve` does
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "data")
        routing = {"bench": ("bench", True)}
        prepared = [prepare_body(batch_body("bench", f"op{n}", n), "gzip", routing, Path(folder)) for n in range(DISTINCT)]
        submit = [(p.tables, p.stats) for p in prepared]

        def write(n: int):
            """As an SDK does: a batch refused for now (the spool's writer behind) is sent again."""
            while True:
                try:
                    return store.writer.write(*submit[n % DISTINCT])
                except Overloaded:
                    time.sleep(0.01)

        for future in [write(n) for n in range(batches)]:  # warm-up group
            future.result()
        process = psutil.Process()
        cpu, started = time.process_time(), time.perf_counter()
        for group in range(groups):
            for future in [write(group * batches + n) for n in range(batches)]:
                future.result()
        getattr(store.writer, "sync", lambda: None)()  # with a spool: until the last is in DuckDB
        items = groups * batches * ITEMS_PER_BATCH
        figures = {"cpu_us": (time.process_time() - cpu) / items * 1e6,
                   "wall_us": (time.perf_counter() - started) / items * 1e6,
                   "rss_mb": process.memory_info().rss / 2**20}
        store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=60)
    parser.add_argument("--batches", type=int, default=8, help="batches of 500 items per group commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-ref", default="main")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.groups, args.batches)))
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from ingest import baseline_tree, tree_env

    with tempfile.TemporaryDirectory() as folder:
        trees = {f"baseline {args.baseline_ref}": baseline_tree(args.baseline_ref, Path(folder)),
                 "this tree": tree_env(ROOT)}
        results: dict[str, list[dict]] = {label: [] for label in trees}
        for round_ in range(1, args.rounds + 1):
            for label, env in trees.items():
                path = f"{env['PYTHONPATH']}{os.pathsep}{ROOT / 'tests'}"
                out = subprocess.run([sys.executable, __file__, "--child", "--groups", str(args.groups),
                                      "--batches", str(args.batches)], env={**os.environ, **env, "PYTHONPATH": path},
                                     capture_output=True, text=True, check=True).stdout
                figures = json.loads(out.strip().splitlines()[-1])
                results[label].append(figures)
                load = os.getloadavg()[0]
                print(f"round {round_} {label:16s} CPU per item {figures['cpu_us']:6.2f} µs  wall per item "
                      f"{figures['wall_us']:6.2f} µs  RSS {figures['rss_mb']:.0f} MB  (load {load:.1f})", flush=True)
    medians = {label: statistics.median(f["cpu_us"] for f in runs) for label, runs in results.items()}
    base, this = medians[f"baseline {args.baseline_ref}"], medians["this tree"]
    print(f"median CPU per item: baseline {base:.2f} µs, this tree {this:.2f} µs ({this / base:.2f}x)")


if __name__ == "__main__":
    main()
