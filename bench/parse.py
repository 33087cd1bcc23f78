"""The compiled parse alone: CPU per item of `_cenvelope.prepare` (collector/ingest/_cenvelope.c,
the whole C pass from a decompressed body to Arrow buffers) on tests/loader.py's batches, this tree
against another commit's extension in the same run, alternating round by round, each in its own
process. No HTTP, no DuckDB: what the collector's ingest-prepare threads spend per body.

Two sets of bodies: the loader's batches as sent (half their items are traces carrying 4 random
floats in customDimensions), and the same batches' traces alone (where float formatting weighs
most).

    python bench/parse.py [--seconds 5] [--rounds 3] [--baseline-ref main]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from ingest import baseline_tree, tree_env  # noqa: E402

console = Console()

TIMED = """
import gzip, json, sys, time
sys.path.insert(0, {tests!r})
from loader import prebuilt
from collector.ingest import _cenvelope
batches = [gzip.decompress(body) for body in prebuilt("key-a", 16)]
traces = [b"\\n".join(line for line in body.split(b"\\n") if b'"MessageData"' in line) for body in batches]
result = {{}}
for name, bodies in (("batches", batches), ("traces", traces)):
    items = sum(body.count(b"\\n") + 1 for body in bodies)
    for body in bodies:
        assert _cenvelope.prepare(body, "h" * 16) is not None
    rounds, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < {seconds}:
        for body in bodies:
            _cenvelope.prepare(body, "h" * 16)
        rounds += 1
    result[name] = (time.process_time() - cpu) / (rounds * items) * 1e6
print(json.dumps(result))
"""


def measure(env: dict, seconds: float) -> dict[str, float]:
    """µs of CPU per item for each set of bodies, in a fresh process running the given tree."""
    script = TIMED.format(tests=str(ROOT / "tests"), seconds=seconds)
    output = subprocess.run([sys.executable, "-c", script], env=env, cwd="/", capture_output=True, text=True, check=True)
    return json.loads(output.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0, help="timed per set of bodies, per run")
    parser.add_argument("--rounds", type=int, default=3, help="baseline and this tree alternate, this many times each")
    parser.add_argument("--baseline-ref", default="main", help="the commit whose extension is the baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_env = {**os.environ, **baseline_tree(args.baseline_ref, Path(tmp))}
        this_env = {**os.environ, **tree_env(ROOT)}
        runs: dict[str, list[dict[str, float]]] = {args.baseline_ref: [], "this tree": []}
        for _ in range(args.rounds):
            for label, env in ((args.baseline_ref, base_env), ("this tree", this_env)):
                runs[label].append(measure(env, args.seconds))
                console.print(f"{label}: " + ", ".join(f"{k} {v:.2f} µs/item" for k, v in runs[label][-1].items()))
    table = Table(title=f"_cenvelope.prepare, CPU per item (median of {args.rounds})")
    table.add_column("bodies")
    for label in runs:
        table.add_column(label, justify="right")
    table.add_column("this tree / baseline", justify="right")
    for name in ("batches", "traces"):
        base, this = (statistics.median(run[name] for run in runs[label]) for label in runs)
        table.add_row(name, f"{base:.2f} µs", f"{this:.2f} µs", f"{this / base:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
