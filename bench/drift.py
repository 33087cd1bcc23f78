"""Drift monitor speed: 20 features, 1M collected rows against a 100k-row reference, and
Evidently's DataDriftPreset on the same data in the same run.

    python bench/drift.py [--rows 1000000] [--reference-rows 100000] [--no-evidently]

The collected rows go straight into a store's `modelData` table (collection, not ingestion, is
measured elsewhere), as the wrapper stores them: one JSON object per row. Timed: freezing the
reference (a CSV read and sketched once, at upload), and a monitor run as the collector runs it
(`monitoring.run.run_monitor`: reading the 20 features out of the JSON rows in DuckDB, sketching
the window on the reference's bins, every data-drift and data-quality metric, writing the
results). Baseline in the same run: Evidently's `Report([DataDriftPreset()])` over the same two
frames, already in memory as pandas (it reads nothing), in .venv-evidently (telemetry off). 16
numerical features (4 of them shifted) and 4 categorical ones (1 shifted).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collector.store.database import Store  # noqa: E402
from collector.store.schema import TABLES  # noqa: E402
from monitoring.definition import MonitorSpec  # noqa: E402
from monitoring.references import read_table, sketch_table  # noqa: E402
from monitoring.run import run_monitor  # noqa: E402

EVIDENTLY_PYTHON = REPO / ".venv-evidently" / "bin" / "python"
START = datetime(2026, 1, 1)
SHIFTED = {"n0", "n1", "n2", "n3", "c0"}


def frame(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {}
    for i in range(16):
        shift = 0.5 if shifted and f"n{i}" in SHIFTED else 0.0
        columns[f"n{i}"] = rng.normal(i, 1 + i / 10, rows) + shift * (1 + i / 10)
    for i in range(4):
        weights = np.array([0.4, 0.3, 0.2, 0.1])
        if shifted and f"c{i}" in SHIFTED:
            weights = weights[::-1]
        columns[f"c{i}"] = rng.choice(np.array(["a", "b", "c", "d"]), rows, p=weights)
    return pd.DataFrame(columns)


def load_collected(store: Store, current: pd.DataFrame) -> None:
    """The rows as modelData rows, in 100k-row commits through the single writer."""
    table = TABLES["modelData"]
    for begin in range(0, len(current), 100_000):
        part = current.iloc[begin:begin + 100_000]
        data = part.to_json(orient="records", lines=True).splitlines()
        n = len(data)
        stamps = (np.int64(START.timestamp() * 1e6) + np.arange(begin, begin + n, dtype=np.int64) * 1000)
        arrays = {"timestamp": pa.array(stamps).cast(pa.timestamp("us")), "collection": pa.array(["model_inputs"] * n),
                  "rowIndex": pa.array(np.arange(n) % 10), "data": pa.array(data), "itemType": pa.array(["modelData"] * n),
                  "_service": pa.array(["bench"] * n)}
        columns = [arrays.get(f.name, pa.nulls(n, f.type)) for f in table.incoming_schema]
        store.writer.write({"modelData": pa.Table.from_arrays(columns, schema=table.incoming_schema)}).result()


def ours(store: Store, reference_csv: Path) -> tuple[float, float, float, list[str]]:
    started = time.perf_counter()
    sketch = sketch_table(read_table(reference_csv, "csv"))
    store.monitors.save_reference("bench", "training", sketch, sketch["rows"]).result()
    freeze_s = time.perf_counter() - started
    spec = MonitorSpec(reference="training", window_seconds=86_400)
    started, cpu = time.perf_counter(), time.process_time()
    result = run_monitor(store.monitors, "bench", "drift", spec, START + timedelta(days=1), START)
    return freeze_s, time.perf_counter() - started, time.process_time() - cpu, sorted(result.drifted)


EVIDENTLY_SCRIPT = """
import sys, time, json
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
started, cpu = time.perf_counter(), time.process_time()
snapshot = Report([DataDriftPreset()]).run(current, reference)
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"seconds": elapsed, "cpu": cpu}))
"""


def evidently(reference: pd.DataFrame, current: pd.DataFrame, folder: Path) -> dict | None:
    if not EVIDENTLY_PYTHON.exists():
        print("(.venv-evidently missing: run .ci/run's setup to compare with Evidently)")
        return None
    reference.to_parquet(folder / "reference.parquet")
    current.to_parquet(folder / "current.parquet")
    env = {"PATH": os.environ.get("PATH", ""), "DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
    completed = subprocess.run([str(EVIDENTLY_PYTHON), "-c", EVIDENTLY_SCRIPT, str(folder / "reference.parquet"),
                                str(folder / "current.parquet")], capture_output=True, text=True, env=env)
    if completed.returncode != 0:
        print(completed.stderr[-2000:])
        return None
    import json

    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--no-evidently", action="store_true")
    args = parser.parse_args()
    reference, current = frame(args.reference_rows, 1, False), frame(args.rows, 2, True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        reference.to_csv(folder / "reference.csv", index=False)
        store = Store(folder / "data")
        try:
            started = time.perf_counter()
            load_collected(store, current)
            print(f"loaded {args.rows:,} collected rows (20 features, JSON) in {time.perf_counter() - started:.1f} s")
            freeze_s, run_s, run_cpu, drifted = ours(store, folder / "reference.csv")
        finally:
            store.close()
        print(f"reference of {args.reference_rows:,} rows frozen as sketches (read + sketch, once): {freeze_s:.2f} s")
        print(f"monitor run over {args.rows:,} rows x 20 features: {run_s:.2f} s ({run_cpu:.2f} s CPU, all threads); "
              f"drifted: {', '.join(drifted)}")
        print(f"expected drifted: {', '.join(sorted(SHIFTED))}")
        if args.no_evidently:
            return
        theirs = evidently(reference, current, folder)
        if theirs is not None:
            print(f"Evidently DataDriftPreset on the same frames (in memory): {theirs['seconds']:.2f} s "
                  f"({theirs['cpu']:.2f} s CPU)")
            print(f"ratio Evidently / ours: {theirs['seconds'] / run_s:.1f}x wall clock, {theirs['cpu'] / run_cpu:.1f}x CPU")
        print(f"load average after the run: {os.getloadavg()[0]:.1f} (2 cores)")


if __name__ == "__main__":
    main()
