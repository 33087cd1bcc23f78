"""The small query's overhead (issue 22): `traces | where customDimensions contains "input" |
limit 10` through the whole engine beside the hand-written SQL for the same rows, alternating, in
this tree and in another commit's (`--baseline-ref`, exported with git archive), round by round.

Each round runs one process per tree on the same file (bench/query.py's rows, made by it: run
`python bench/query.py --rows 1000000 --db <file> --keep` once first); each process alternates
ours and the SQL `--runs` times and prints the p50s and their ratio, so what the machine's other
work does to one side it does to the other.

    python bench/small_query.py [--db /tmp/bench-query.duckdb] [--runs 300] [--rounds 2] [--baseline-ref main] [--cpu]

`--cpu` times each call by the CPU time of the calling thread, with DuckDB on that one thread
(`SET threads=1`): on cores shared with other work, wall time mostly measures the neighbours (a
2 ms query read 10-20 ms at load 20), CPU time far less so. Both sides run the same way.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_MEASURE = """
import statistics, sys, time, duckdb
sys.path.insert(0, sys.argv[1] + "/bench")
import query as bench
from collector.kql import run_query
from collector.store.schema import TABLES
if __name__ == "__main__":
    connection = duckdb.connect(sys.argv[2], read_only=True)
    if sys.argv[4] == "cpu":
        connection.execute("SET threads=1")
    cursor = connection.cursor()
    columns = {n: ", ".join(f'"{c}"' for c in t.column_names) for n, t in TABLES.items()}
    _, kql, sql = bench.QUERIES[0]
    sql = sql.format(**columns)
    fns = [lambda: run_query(cursor, kql, services=[bench.SERVICE]), lambda: cursor.execute(sql).fetchall()]
    if sys.argv[4] == "cpu":
        ours, hand = [], []
        for fn in fns:
            fn()
        for _ in range(int(sys.argv[3])):
            for fn, out in zip(fns, (ours, hand)):
                started = time.thread_time()
                fn()
                out.append(time.thread_time() - started)
    else:
        ours, hand = bench._time(fns, int(sys.argv[3]))
    p10 = lambda s: sorted(s)[len(s) // 10] * 1000
    print(f"{bench._p50(ours):.2f} {bench._p50(hand):.2f} {p10(ours):.2f} {p10(hand):.2f}")
"""


def measure(tree: Path, db: str, runs: int, clock: str) -> list[float]:
    """(ours p50, SQL p50, ours p10, SQL p10) in ms, measured by *tree*'s code in a process of its own."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(tree), db, str(runs), clock], capture_output=True,
                          text=True, check=True, env={"PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1",
                                                      "PATH": "/usr/bin:/bin"}, cwd=tree)
    return [float(x) for x in done.stdout.split()[-4:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="/tmp/bench-query.duckdb")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline-ref", default="main")
    parser.add_argument("--cpu", action="store_true", help="thread CPU time, DuckDB on one thread (see above)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline_ref], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", base], input=archive, check=True)
        print(f"{'tree':<14} {'ours p50':>9} {'SQL p50':>8} {'ratio':>6} {'ours p10':>9} {'SQL p10':>8} {'ratio':>6}")
        for _ in range(args.rounds):
            for label, tree in ((args.baseline_ref, Path(base)), ("this tree", ROOT)):
                ours, hand, ours10, hand10 = measure(tree, args.db, args.runs, "cpu" if args.cpu else "wall")
                print(f"{label:<14} {ours:>9.2f} {hand:>8.2f} {ours / hand:>5.2f}x {ours10:>9.2f} {hand10:>8.2f} "
                      f"{ours10 / hand10:>5.2f}x", flush=True)


if __name__ == "__main__":
    main()
