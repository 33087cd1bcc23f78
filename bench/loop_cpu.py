"""The collector's CPU per item by thread under bench/ingest.py's load: above all its main thread,
the event loop (uvicorn, the app's middleware and routes, the pipeline's async flow), whose cost
is per request and hides in ingest.py's whole-process figure.

Each round starts a collector from the baseline commit's tree and one from this tree, in turn,
loads each as ingest.py does, and reads every thread's CPU (psutil) before and after the load.

    python bench/loop_cpu.py [--seconds 10] [--connections 16] [--rounds 3] [--baseline-ref main]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import psutil
from collector_process import CollectorProcess  # tests/, which ingest.py put on the path
from ingest import ROOT, baseline_tree, console, cpu_seconds, load, settled, tree_env
from loader import ITEMS_PER_BATCH


def thread_cpu(pid: int) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


def measure(label: str, env: dict, seconds: float, connections: int) -> dict:
    """(µs per item) of the main thread, of the busiest other thread, and of the whole collector."""
    with tempfile.TemporaryDirectory() as tmp:
        collector = CollectorProcess(Path(tmp) / "data", env=env).start(timeout=90)
        pid = collector.process.pid
        ikey = collector.create_service("bench")["instrumentation_key"]
        with console.status(f"{label}: waiting for the collector to settle after start"):
            settled(pid)
        threads, total = thread_cpu(pid), cpu_seconds(pid)
        with console.status(f"{label}: loading for {seconds:.0f} s over {connections} connections"):
            acked, _, _ = load(collector, ikey, seconds, connections)
        after, total = thread_cpu(pid), cpu_seconds(pid) - total
        collector.stop()
    items = acked * ITEMS_PER_BATCH
    spent = {tid: cpu - threads.get(tid, 0.0) for tid, cpu in after.items()}
    others = max(cpu for tid, cpu in spent.items() if tid != pid)
    return {"label": label, "main": spent[pid] / items * 1e6, "other": others / items * 1e6, "all": total / items * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-ref", default="main")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base_env = baseline_tree(args.baseline_ref, Path(tmp))
        for _ in range(args.rounds):
            results.append(measure(f"baseline {args.baseline_ref}", base_env, args.seconds, args.connections))
            results.append(measure("this tree", tree_env(ROOT), args.seconds, args.connections))
    for r in results:
        console.print(f"{r['label']:>16}: main thread {r['main']:.3f} µs/item, busiest other thread {r['other']:.2f}, "
                      f"all processes {r['all']:.1f}")
    for key, name in (("main", "main thread"), ("all", "all processes")):
        ours = statistics.median(r[key] for r in results if r["label"] == "this tree")
        theirs = statistics.median(r[key] for r in results if r["label"] != "this tree")
        console.print(f"median {name}: this tree {ours:.3f} vs baseline {theirs:.3f} µs per item ({ours / theirs:.2f}x)")


if __name__ == "__main__":
    main()
