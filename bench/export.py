"""Continuous export throughput: 1M mixed items to a folder and to Azurite, against a baseline.

    python bench/export.py [--items 1000000] [--no-azurite]

The rows are generated with DuckDB `range()` straight into the store's tables (the export, not
ingestion, is measured), one service per destination. Each export is one `insights export run`
pass through ExportScheduler, as the collector runs it: plan and checkpoint commits through the
single writer, DuckDB writing NDJSON, publish (fsync + rename, or upload), default blob size.
Baselines, same rows, same run: one plain `COPY (SELECT <row format>) TO file (FORMAT json)` per
table (folder), and that plus one `upload_blob` per table (Azurite). Azurite is started from the
repo's node_modules (`npm ci`).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "export"))
sys.path.insert(0, str(REPO / "tests"))

from collector.store.database import DB_FILENAME, Store  # noqa: E402
from collector.store.services import Registry  # noqa: E402
from exporters.formats import select_sql  # noqa: E402
from exporters.scheduler import ExportScheduler  # noqa: E402
from exporters.settings import RECORD_TYPES, validate  # noqa: E402

COMMON = {
    "timestamp": "TIMESTAMP '2026-01-01' + to_microseconds((i * 7919) % 86400000000)",
    "itemId": "uuid()::VARCHAR",
    "operation_Id": "md5(i::VARCHAR)",
    "operation_ParentId": "substr(md5(i::VARCHAR), 1, 16)",
    "operation_Name": "'POST /score'",
    "cloud_RoleName": "'my-endpoint'",
    "cloud_RoleInstance": "'instance-' || (i % 4)",
    "sdkVersion": "'py3:opencensus-1.1.15'",
    "client_Type": "'PC'",
    "appName": "$service",
    "customDimensions": "json_object('model', 'churn', 'version', i % 10, 'input', "
                        "json_object('rows', i % 100, 'score', (i % 1000) / 1000.0), 'request_id', md5((i + 1)::VARCHAR))",
}
SPECIFIC = {
    "requests": {"itemType": "'request'", "id": "'req-' || i", "name": "'POST /score'", "url": "'http://127.0.0.1:5001/score'",
                 "success": "i % 10 <> 0", "resultCode": "CASE WHEN i % 10 = 0 THEN '500' ELSE '200' END",
                 "duration": "(i % 5000) / 10.0", "performanceBucket": "'<250ms'", "itemCount": "1"},
    "traces": {"itemType": "'trace'", "message": "'scored batch ' || i", "severityLevel": "(i % 5)::INTEGER"},
    "dependencies": {"itemType": "'dependency'", "id": "'dep-' || i", "target": "'db:5432'", "type": "'SQL'",
                     "name": "'SELECT'", "data": "'SELECT * FROM features WHERE id = ' || i", "success": "true",
                     "resultCode": "'0'", "duration": "(i % 500) / 10.0"},
    "exceptions": {"itemType": "'exception'", "problemId": "'ValueError at run'", "type": "'ValueError'",
                   "message": "'bad input ' || i", "outerType": "'ValueError'", "severityLevel": "3",
                   "details": "json_array(json_object('typeName', 'ValueError', 'message', 'bad input', 'line', i % 80))"},
    "customEvents": {"itemType": "'customEvent'", "name": "'model_loaded'"},
    "customMetrics": {"itemType": "'customMetric'", "name": "'queue_length'", "value": "(i % 100)::DOUBLE",
                      "valueCount": "1", "valueSum": "(i % 100)::DOUBLE"},
}


def generate(data_dir: Path, services: list[str], items: int) -> None:
    """`items` rows per service, spread evenly over the six exported tables, `_seq` interleaved
    across tables as ingestion would assign it."""
    store = Store(data_dir)
    with store.reader() as cursor:
        registry = Registry(cursor, store.writer)
    for name in services:
        asyncio.run(registry.create(name))
    store.close()
    tables = [table.name for table in RECORD_TYPES.values()]
    with duckdb.connect(str(data_dir / DB_FILENAME)) as con:
        for offset, service in enumerate(services):
            for position, table in enumerate(tables):
                columns = {**COMMON, **SPECIFIC[table]}
                select = ", ".join(f'{expr} AS "{column}"' for column, expr in columns.items()).replace("$service", f"'{service}'")
                base = offset * items
                con.execute(
                    f'INSERT INTO "{table}" BY NAME SELECT {select}, \'{service}\' AS _service, '
                    f"{base} + i * {len(tables)} + {position} + 1 AS _seq "
                    f"FROM range({items // len(tables) + (position < items % len(tables))}) r(i)"
                )
        con.execute("CHECKPOINT")


def baseline_copy(data_dir: Path, service: str, out: Path) -> tuple[float, list[Path]]:
    """Plain DuckDB: the same row-format SELECT, one COPY per table, no checkpoints, no blobs."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    with duckdb.connect(str(data_dir / DB_FILENAME), read_only=True) as con:
        started = time.perf_counter()
        for record_type, table in RECORD_TYPES.items():
            sql = select_sql(table).replace("$1", f"'{service}'").replace("$2", "0").replace("$3", str(2**62))
            path = out / f"{record_type}.json"
            con.execute(f"COPY ({sql}) TO '{path}' (FORMAT json)")
            files.append(path)
        return time.perf_counter() - started, files


def baseline_upload(files: list[Path], connection_string: str) -> float:
    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(connection_string).get_container_client("baseline")
    container.create_container()
    started = time.perf_counter()
    for path in files:
        with open(path, "rb") as data:
            container.upload_blob(path.name, data, overwrite=True, max_concurrency=2)
    return time.perf_counter() - started


def export_run(data_dir: Path, service: str, settings: dict) -> tuple[float, int]:
    """One manual export pass of the service, as `insights export run` does it; (seconds, items)."""
    store = Store(data_dir)
    with store.reader() as cursor:
        registry = Registry(cursor, store.writer)
    scheduler = ExportScheduler(store, registry, data_dir)
    scheduler.start()
    try:
        asyncio.run(scheduler.configure(service, validate({**settings, "enabled": False})))
        started = time.perf_counter()
        result = scheduler.request_run(service).future.result()
        elapsed = time.perf_counter() - started
    finally:
        scheduler.stop()
        store.close()
    if result["state"] != "done":
        raise SystemExit(f"export failed: {result['error']}")
    return elapsed, result["done"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--no-azurite", action="store_true")
    parser.add_argument("--keep", action="store_true", help="Keep the temp folder (store and blobs) for a look.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        _bench(work, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _bench(work: Path, args) -> None:
    data_dir = work / "data"
    services = ["bench-folder"] + ([] if args.no_azurite else ["bench-azure"])
    started = time.perf_counter()
    generate(data_dir, services, args.items)
    print(f"generated {args.items:,} items per service in {time.perf_counter() - started:.1f} s ({work})")
    rows = []

    seconds, files = baseline_copy(data_dir, "bench-folder", work / "baseline")
    rows.append(("folder", "baseline: DuckDB COPY TO json", args.items, seconds))
    seconds, items = export_run(data_dir, "bench-folder", {"destination": str(work / "blob")})
    rows.append(("folder", "export run (checkpointed blobs)", items, seconds))

    if not args.no_azurite:
        from azurite import Azurite

        emulator = Azurite(_mkdir(work / "azurite")).start()
        try:
            copy_seconds, files = baseline_copy(data_dir, "bench-azure", work / "baseline-azure")
            upload_seconds = baseline_upload(files, emulator.connection_string)
            rows.append(("azurite", "baseline: COPY + upload_blob", args.items, copy_seconds + upload_seconds))
            seconds, items = export_run(data_dir, "bench-azure",
                                        {"destination": emulator.connection_string, "container": "exports"})
            rows.append(("azurite", "export run (checkpointed blobs)", items, seconds))
        finally:
            emulator.stop()
    _report(rows)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _report(rows) -> None:
    print(f"\n{'destination':<12}{'what':<34}{'items':>11}{'seconds':>9}{'items/s':>11}{'vs baseline':>13}")
    baseline = {}
    for destination, what, items, seconds in rows:
        rate = items / seconds
        ratio = f"{rate / baseline[destination]:.2f}x" if destination in baseline else ""
        baseline.setdefault(destination, rate)
        print(f"{destination:<12}{what:<34}{items:>11,}{seconds:>9.2f}{rate:>11,.0f}{ratio:>13}")


if __name__ == "__main__":
    main()
