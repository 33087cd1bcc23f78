"""A drift monitor run on both stores in the same run: bench/drift.py's data (20 features, 4
numerical and 1 categorical shifted) collected into DuckDB's `modelData` and into ClickHouse's
(chdb in process, through clickhouse-connect, on the store's own DDL), then the same monitor
(`monitoring.run.run_monitor` against the same frozen reference) on each: DuckDB reading the rows
with store/monitors.py's SQL, ClickHouse with store/clickhouse/monitors.py's. Prints both times, and
whether both flagged the same features with the same metric values.

    python bench/drift_clickhouse.py [--rows 1000000] [--reference-rows 100000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import Future
from datetime import timedelta
from pathlib import Path

import clickhouse_connect
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from drift import START, frame, load_collected  # noqa: E402

from collector.store.clickhouse import tables  # noqa: E402
from collector.store.clickhouse.location import ClickHouseConnection  # noqa: E402
from collector.store.clickhouse.monitors import MonitorState  # noqa: E402
from collector.store.clickhouse.schema import create_statements  # noqa: E402
from collector.store.database import Store  # noqa: E402
from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN, TABLES  # noqa: E402
from monitoring.definition import MonitorSpec  # noqa: E402
from monitoring.references import read_table, sketch_table  # noqa: E402
from monitoring.run import run_monitor  # noqa: E402

DATABASE = "bench"


class _ArrowWriter:
    """Stands for the ClickHouse writer (its queue and acknowledgements are not what is measured):
    inserts a write's tables at once, `_seq` numbered from 1."""

    def __init__(self, client) -> None:
        self._client = client

    def write(self, tables: dict[str, pa.Table]) -> Future:
        for name, table in tables.items():
            table = table.append_column(SEQ_COLUMN, pa.array(range(1, table.num_rows + 1), pa.int64()))
            self._client.insert_arrow(f"`{DATABASE}`.`{name}`", table)
        done: Future = Future()
        done.set_result(None)
        return done


def copy_collected(store: Store, client) -> None:
    """DuckDB's modelData rows into ClickHouse, as the ClickHouse writer would have inserted them."""
    for statement in create_statements(DATABASE, tables=[TABLES["modelData"], TABLES["modelMonitorResults"]]):
        client.command(statement)
    table = TABLES["modelData"]
    names = [*table.column_names, SERVICE_COLUMN, SEQ_COLUMN]
    select = ", ".join(f'CAST("{n}" AS VARCHAR) AS "{n}"' if n == "data" else f'"{n}"' for n in names)
    with store.reader() as cursor:
        for batch in cursor.sql(f'SELECT {select} FROM "modelData"').to_arrow_reader(200_000):
            client.insert_arrow(f"`{DATABASE}`.`modelData`", pa.Table.from_batches([batch]))
    client.command(f"OPTIMIZE TABLE `{DATABASE}`.`modelData` FINAL")


def timed_run(state, sketch: dict) -> tuple[float, float, dict]:
    state.save_reference("bench", "training", sketch, sketch["rows"]).result()
    spec = MonitorSpec(reference="training", window_seconds=86_400)
    started, cpu = time.perf_counter(), time.process_time()
    result = run_monitor(state, "bench", "drift", spec, START + timedelta(days=1), START)
    return time.perf_counter() - started, time.process_time() - cpu, {
        (r["signal"], r["feature"], r["metric"]): r["value"] for r in result.results} | {"drifted": sorted(result.drifted)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-drift-ch-"))
    try:
        frame(args.reference_rows, 1, False).to_csv(work / "reference.csv", index=False)
        sketch = sketch_table(read_table(work / "reference.csv", "csv"))
        store = Store(work / "data")
        client = clickhouse_connect.get_client(dsn=f"chdb://{work / 'chdb'}")
        try:
            load_collected(store, frame(args.rows, 2, True))
            copy_collected(store, client)
            print(f"{args.rows:,} collected rows (20 features, JSON) in each store")
            duck_s, duck_cpu, duck = timed_run(store.monitors, sketch)
            connection = ClickHouseConnection(lambda: client, DATABASE)
            tables.create_missing(connection)  # the monitors' tables, as `insights store migrate` makes them
            clickhouse = MonitorState(connection, _ArrowWriter(client))  # type: ignore[arg-type]
            ch_s, ch_cpu, ours = timed_run(clickhouse, sketch)
        finally:
            store.close()
            client.close()
        print(f"monitor run, DuckDB store:     {duck_s:6.2f} s ({duck_cpu:.2f} s CPU in this process)")
        print(f"monitor run, ClickHouse store: {ch_s:6.2f} s ({ch_cpu:.2f} s CPU in this process, chdb's threads included)")
        print(f"ratio ClickHouse / DuckDB: {ch_s / duck_s:.2f}x wall clock")
        drifted = duck.pop("drifted")
        same = ours.pop("drifted") == drifted and ours.keys() == duck.keys() and all(
            abs(ours[k] - v) <= 1e-9 * max(1.0, abs(v)) for k, v in duck.items())
        print(f"drifted on both: {', '.join(drifted)}; same metrics on both stores: {same}")
        print(f"load average after the run: {os.getloadavg()[0]:.1f} (2 cores, shared)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
