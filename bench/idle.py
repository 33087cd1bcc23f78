"""An idle collector's CPU: a fresh collector (no traffic, no rules, no tests, no monitors, no
exports) of this tree and of another commit's (`--baseline-ref`), started at the same moment so
that both run under the same load, each one's CPU (its process and its children: the ingestion
pool and the KQL compile workers) printed at its start and per window of its first minutes of service, and per thread of the
collector's own process over the last windows (what still polls once it has settled).

    python bench/idle.py [--minutes 2] [--window 30] [--baseline-ref main]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent / "tests")]
from collector_process import CollectorProcess  # noqa: E402
from ingest import ROOT, baseline_tree, cpu_seconds  # noqa: E402

console = Console()
PY_SPY = Path(sys.executable).parent / "py-spy"


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of `pid` (by native thread id)."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[int(tid)] = (int(stat[11]) + int(stat[12])) / ticks
    return seconds


def thread_names(pid: int) -> dict[int, str]:
    """Python's names of the threads of `pid` (py-spy dump), where py-spy is installed."""
    if not PY_SPY.exists():
        return {}
    dump = subprocess.run([str(PY_SPY), "dump", "--pid", str(pid)], capture_output=True, text=True).stdout
    return {int(tid): name for tid, name in re.findall(r'Thread (\d+) \(\w+\): "([^"]+)"', dump)}


def watch(label: str, env: dict | None, minutes: float, window: float, results: dict) -> None:
    """One collector: the CPU of its start (spawn to answering /healthz), then per window over its
    first `minutes` of service, and per thread of its process over the second half of those."""
    with tempfile.TemporaryDirectory() as tmp:
        spawned = time.perf_counter()
        collector = CollectorProcess(Path(tmp) / "data", env=env).start(timeout=600)
        pid, ready = collector.process.pid, time.perf_counter()
        before = start_cpu = cpu_seconds(pid)
        windows, edge = [], ready + window
        threads_from: dict[int, float] = {}
        while edge <= ready + minutes * 60 + 0.01:
            time.sleep(max(0.0, edge - time.perf_counter()))
            now = cpu_seconds(pid)
            windows.append(now - before)
            before, edge = now, edge + window
            if not threads_from and edge - ready > minutes * 30:
                threads_from = thread_cpu(pid)
        threads_to, names = thread_cpu(pid), thread_names(pid)
        collector.stop()
    used = {names.get(tid, str(tid)): cpu - threads_from.get(tid, 0.0) for tid, cpu in threads_to.items()}
    results[label] = {"windows": windows, "threads": used, "ready": ready - spawned, "start_cpu": start_cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2)
    parser.add_argument("--window", type=float, default=30)
    parser.add_argument("--baseline-ref", default="main")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tree:
        env = baseline_tree(args.baseline_ref, Path(tree))
        results: dict = {}
        labels = {args.baseline_ref: env, "this tree": None}
        threads = [threading.Thread(target=watch, args=(label, env, args.minutes, args.window, results))
                   for label, env in labels.items()]
        load = os.getloadavg()[0]
        with console.status(f"two idle collectors for {args.minutes:g} min"):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    show(results, args.window, load, os.getloadavg()[0])


def show(results: dict, window: float, load_before: float, load_after: float) -> None:
    table = Table(title=f"idle collector CPU seconds per {window:g} s once it answers (load {load_before:.1f} -> {load_after:.1f})")
    table.add_column("window")
    for label in results:
        table.add_column(label, justify="right")
    count = max(len(r["windows"]) for r in results.values())
    for index in range(count):
        cells = [f"{r['windows'][index]:.2f}" if index < len(r["windows"]) else "" for r in results.values()]
        table.add_row(f"{index * window:g}-{(index + 1) * window:g} s", *cells)
    table.add_row("start: seconds to answer /healthz", *[f"{r['ready']:.1f}" for r in results.values()])
    table.add_row("start: CPU seconds until then", *[f"{r['start_cpu']:.2f}" for r in results.values()])
    table.add_row("share of a core, last window",
                  *[f"{r['windows'][-1] / window:.1%}" for r in results.values()])
    console.print(table)
    for label, result in results.items():
        busy = sorted(((cpu, name) for name, cpu in result["threads"].items() if cpu >= 0.01), reverse=True)
        console.print(f"{label}, collector threads over the second half (CPU s): "
                      + (", ".join(f"{name} {cpu:.2f}" for cpu, name in busy) or "none above 0.01"))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
