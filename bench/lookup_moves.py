"""The latency of each group commit while the lookup index moves its recent entries into sorted
runs (collector/store/lookup_index.py), this tree against another commit, in the same run.

One process per tree and round, alternating: `--commits` commits of `--rows` rows shaped as the
ingest bench's mix (bench/lookup_writer.py's `batch`) through a real store's writer, each timed
from `write` to its acknowledgement. A move of a million entries at once shows as a few commits
far slower than the rest (max, p99.5); moved a hash slice per commit, it should not. The index's
own part of each commit (`LookupIndex.flush`: entries inserted, moves) is timed apart, since a
commit's latency also holds checkpoints and fsyncs, which on shared cores swamp it.

    python bench/lookup_moves.py [--commits 300] [--rows 4000] [--rounds 2] [--baseline-ref main]
    python bench/lookup_moves.py --slices [--rounds 2]

`--slices` times the move itself on a file of `--entries` random entries (1M): the seal, each
group's slice, the drop, against the one statement that moved them all in one commit before.
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
sys.path.insert(0, str(ROOT / "bench"))

from ingest import build_extensions  # noqa: E402

CHILD = """
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {bench!r})
from lookup_writer import batch
from collector.store.database import Store
from collector.store import lookup_index
flushes = []
real_flush = lookup_index.LookupIndex.flush
def timed_flush(self, con):
    began = time.perf_counter()
    real_flush(self, con)
    flushes.append(time.perf_counter() - began)
lookup_index.LookupIndex.flush = timed_flush
batches = [batch({rows}) for _ in range(8)]
latencies = []
with tempfile.TemporaryDirectory() as folder:
    store = Store(Path(folder) / "data")
    started = time.perf_counter()
    for n in range({commits}):
        began = time.perf_counter()
        store.writer.write(tables=batches[n % len(batches)]).result()
        latencies.append(time.perf_counter() - began)
    wall = time.perf_counter() - started
    with store.reader() as con:
        runs = con.execute("SELECT count(*) FROM lookup_terms").fetchone()[0]
    store.close()
print(json.dumps([latencies, wall, runs, flushes]))
"""


def measure(tree: Path, commits: int, rows: int) -> dict:
    """One store's commits in a fresh process running `tree`'s code."""
    script = CHILD.format(bench=str(ROOT / "bench"), rows=rows, commits=commits)
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1"}
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env).stdout
    latencies, wall, runs, flushes = json.loads(output.strip().splitlines()[-1])
    ms = sorted(x * 1000 for x in latencies)
    index = sorted(x * 1000 for x in flushes)
    return {"index_p99": index[int(len(index) * 0.99) - 1], "index_max": index[-1], "index_total": sum(index),
            "p50": statistics.median(ms), "p99": ms[int(len(ms) * 0.99) - 1], "p995": ms[int(len(ms) * 0.995) - 1],
            "max": ms[-1], "rows_s": commits * rows / wall, "moved": runs}


def slices(entries: int, rounds: int) -> None:
    """The move of `entries` entries, sliced (this tree) and in one commit (the former `compact`)."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    from collector.store import lookup_index

    rng = np.random.default_rng(1)
    made = pa.table({"h": rng.integers(0, 2**63, entries, dtype=np.uint64) * 2 + 1,  # noqa: F841 (scanned by name)
                     "t": np.zeros(entries, np.uint8), "seq": np.arange(entries, dtype=np.int64)})
    with tempfile.TemporaryDirectory() as folder:
        con = duckdb.connect(f"{folder}/moves.duckdb")
        con.execute("SET checkpoint_threshold = '1GB'")  # as the store sets it: no checkpoint inside a commit
        for ddl in lookup_index.DDL:
            con.execute(ddl)

        def committed(work) -> tuple[object, float]:
            began = time.perf_counter()
            con.execute("BEGIN")
            result = work()
            con.execute("COMMIT")
            return result, (time.perf_counter() - began) * 1000

        for _ in range(rounds):
            con.execute("INSERT INTO lookup_recent SELECT * FROM made")
            con.execute("CHECKPOINT")
            move, seal_ms = committed(lambda: lookup_index.seal(con, entries))
            steps = []
            while move is not None:
                move, ms = committed(lambda: move.step(con))  # noqa: B023 (called at once)
                steps.append(ms)
            print(f"sliced: seal {seal_ms:.0f} ms, {len(steps) - 1} slices p50 {statistics.median(steps[:-1]):.0f} ms, "
                  f"max {max(steps[:-1]):.0f} ms, drop {steps[-1]:.0f} ms; all {seal_ms + sum(steps):.0f} ms", flush=True)
            con.execute("DELETE FROM lookup_terms")
            con.execute("INSERT INTO lookup_recent SELECT * FROM made")
            con.execute("CHECKPOINT")
            _, whole = committed(lambda: (con.execute("INSERT INTO lookup_terms SELECT h, t, seq FROM lookup_recent ORDER BY h"),
                                          con.execute("DELETE FROM lookup_recent")))
            print(f"in one commit (before): {whole:.0f} ms", flush=True)
            con.execute("DELETE FROM lookup_terms")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline-ref", default="main")
    parser.add_argument("--slices", action="store_true")
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.slices:
        sys.path.insert(0, str(ROOT))
        slices(args.entries, args.rounds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline_ref], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        build_extensions(Path(tmp))
        print(f"{'tree':<22} {'p50 ms':>8} {'p99 ms':>8} {'p99.5 ms':>9} {'max ms':>8} {'rows/s':>9} {'entries in runs':>16}"
              f" {'index p99 ms':>13} {'index max ms':>13} {'index total s':>14}")
        for _ in range(args.rounds):
            for label, tree in ((args.baseline_ref, Path(tmp)), ("this tree", ROOT)):
                r = measure(tree, args.commits, args.rows)
                print(f"{label:<22} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['p995']:>9.1f} {r['max']:>8.1f} "
                      f"{r['rows_s']:>9,.0f} {r['moved']:>16,} {r['index_p99']:>13.1f} {r['index_max']:>13.1f}"
                      f" {r['index_total'] / 1000:>14.1f}", flush=True)
        print(f"load average at the end: {os.getloadavg()[0]:.1f} ({time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()
