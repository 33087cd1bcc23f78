"""Batch jobs: what the runner costs per mini-batch, against calling run() in a plain loop.

    python bench/batch.py [--files 10000] [--mini_batch_size 10] [--workers 2] [--rounds 3]

10,000 small files, the trivial score.py of the tests (run() returns its mini-batch), 2 workers.
Baseline, same run: init() once, then run() on each mini-batch in a plain loop in this process (the
least any runner can do). Measured: the Orchestrator in this process (workers started, every
mini-batch sent, answered, its rows appended and logged, the log layout written), without and with
telemetry to a real collector, and `python -m scoring.batch run` end to end as a user runs it
(interpreter and imports included). Overhead per mini-batch = (job time - plain loop time) / mini-batches;
the floor is 2 ms. Each cell is the median of the rounds.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from collector_process import NO_PHONE_HOME, CollectorProcess  # noqa: E402

from scoring.batch import inputs  # noqa: E402
from scoring.batch.orchestrator import Orchestrator  # noqa: E402
from scoring.batch.settings import build  # noqa: E402

SCRIPT = ROOT / "tests" / "batch" / "scripts" / "trivial_score.py"
FLOOR_MS = 2.0


def make_files(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        (folder / f"{index:05d}.txt").write_text(f"{index}\n")


def plain_loop(batches) -> float:
    """init() once, run() on every mini-batch: the baseline."""
    spec = importlib.util.spec_from_file_location("bench_score", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    began = time.perf_counter()
    module.init()
    for batch in batches:
        module.run(list(batch.files))
    return time.perf_counter() - began


def in_process(source: Path, output: Path, args, service: str | None) -> float:
    settings = build(entry_script=str(SCRIPT), input=str(source), output=str(output), service=service, job=None,
                     mini_batch_size=args.mini_batch_size, workers=args.workers, resource_monitor_interval=0)
    began = time.perf_counter()
    root, files = inputs.list_files(settings.input)
    result = Orchestrator(settings, inputs.mini_batches(root, files, settings.mini_batch_size), len(files),
                          show_progress=False).run()
    elapsed = time.perf_counter() - began
    assert result.exit_code == 0, result.message
    assert sum(1 for _ in open(settings.output_file)) == len(files)
    ROUND_TRIPS.extend(_round_trips(output))
    return elapsed


ROUND_TRIPS: list[float] = []
"""Per attempt, from sys/node/*/processNNN.txt: duration (sent -> rows back) minus run() time, ms."""


def _round_trips(output: Path) -> list[float]:
    found = []
    for path in output.glob("logs/sys/node/*/process*.txt"):
        for line in path.read_text().splitlines():
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            found.append(float(fields["duration_ms"]) - float(fields["run_ms"]))
    return found


def end_to_end(source: Path, output: Path, args) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scoring.batch", "run", "--entry_script", str(SCRIPT), "--input", str(source),
                    "--output", str(output), "--workers", str(args.workers), "--mini_batch_size", str(args.mini_batch_size),
                    "--resource_monitor_interval", "0", "--no-progress"], check=True, capture_output=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mini_batch_size", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(NO_PHONE_HOME)
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        os.environ["XDG_CACHE_HOME"] = str(root / "cache")
        source = root / "input"
        make_files(source, args.files)
        batches = inputs.mini_batches(*inputs.list_files(str(source)), args.mini_batch_size)
        collector = CollectorProcess(root / "collector").start()
        os.environ.update(INSIGHTS_URL=collector.url, INSIGHTS_API_KEY=collector.admin_key)
        service = collector.create_service("bench-batch")["name"]
        try:
            cells = {"plain loop": [], "job, telemetry off": [], "job, telemetry on": [], "end to end (CLI)": []}
            for round_ in range(args.rounds):
                cells["plain loop"].append(plain_loop(batches))
                cells["job, telemetry off"].append(in_process(source, root / f"off{round_}", args, None))
                cells["job, telemetry on"].append(in_process(source, root / f"on{round_}", args, service))
                cells["end to end (CLI)"].append(end_to_end(source, root / f"cli{round_}", args))
        finally:
            collector.stop()
    report(cells, args.files, len(batches), args)


def report(cells: dict[str, list[float]], files: int, batches: int, args) -> None:
    baseline = statistics.median(cells["plain loop"])
    print(f"{files} files, {batches} mini-batches of {args.mini_batch_size}, {args.workers} workers, "
          f"median of {args.rounds} rounds")
    print("| run | seconds | files/s | overhead per mini-batch ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in cells.items():
        seconds = statistics.median(values)
        overhead = "" if name == "plain loop" else f"{(seconds - baseline) / batches * 1000:.3f}"
        print(f"| {name} | {seconds:.3f} | {files / seconds:,.0f} | {overhead} |")
    worst = max((statistics.median(v) - baseline) / batches * 1000 for k, v in cells.items() if k != "plain loop")
    trips = sorted(ROUND_TRIPS)
    print(f"per mini-batch inside a job (sent -> rows back, minus run(); per worker, {len(trips)} attempts): "
          f"p50 {trips[len(trips) // 2]:.3f} ms, p99 {trips[int(len(trips) * 0.99)]:.3f} ms")
    print(f"floor: overhead <= {FLOOR_MS} ms per mini-batch: {'met' if worst <= FLOOR_MS else 'NOT met'} "
          f"(worst {worst:.3f} ms)")


if __name__ == "__main__":
    main()
