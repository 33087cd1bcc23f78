"""The writer's cost of keeping the lookup index (collector/store/lookup_index.py), alone.

One process, one store per side: commits of `--rows` telemetry rows shaped as the ingest bench's
mix (half of them prints with JSON `Contents`, requests with GUID ids and a request-id dimension,
dependencies, exceptions), through `store.writer`, with the index kept and with its hook removed,
alternating rounds. The writer does nothing else here, so this is the most the index can take
from ingestion; bench/ingest.py gives the whole collector's figure.

    python bench/lookup_writer.py [--commits 150] [--rows 4000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.store.database import Store  # noqa: E402
from collector.store.schema import TABLES  # noqa: E402


def batch(rows: int) -> dict:
    """Arrow tables of `rows` mixed rows (50% traces, 25% requests, 15% dependencies, 10% exceptions)."""
    now = int(time.time() * 1e6)
    made: dict[str, list[dict]] = {"traces": [], "requests": [], "dependencies": [], "exceptions": []}
    for i in range(rows):
        operation, common = uuid.uuid4().hex, {"timestamp": now, "_service": "bench", "itemId": str(uuid.uuid4())}
        common |= {"operation_Id": operation, "operation_ParentId": f"|{operation}.{i:x}.", "cloud_RoleName": "score",
                   "cloud_RoleInstance": "host-1", "sdkVersion": "py3:2.0.0"}
        kind = i % 20
        if kind < 10:
            made["traces"].append(common | {"itemType": "trace", "message": "STDOUT", "severityLevel": 1,
                                            "customDimensions": json.dumps({"Contents": {"input": [i % 101, 0.5], "rows": 3}})})
        elif kind < 15:
            made["requests"].append(common | {"itemType": "request", "id": uuid.uuid4().hex[:16], "name": "POST /score",
                                              "url": "http://127.0.0.1:5001/score", "success": True, "resultCode": "200",
                                              "duration": 12.5, "customDimensions": json.dumps(
                                                  {"Request Id": str(uuid.uuid4()), "Client Request Id": ""})})
        elif kind < 18:
            made["dependencies"].append(common | {"itemType": "dependency", "id": uuid.uuid4().hex[:16], "type": "HTTP",
                                                  "name": "GET /model", "target": "storage:443", "success": True,
                                                  "resultCode": "200", "duration": 3.0})
        else:
            made["exceptions"].append(common | {"itemType": "exception", "type": "ValueError", "message": f"bad input {i}",
                                                "details": json.dumps([{"message": "bad input", "parsedStack": []}])})
    return {name: TABLES[name].to_arrow(table_rows) for name, table_rows in made.items()}


def rate(indexed: bool, commits: int, rows: int, batches: list[dict]) -> float:
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "data", keep_lookup_index=indexed)
        started = time.perf_counter()
        for n in range(commits):
            store.writer.write(tables=batches[n % len(batches)]).result()
        elapsed = time.perf_counter() - started
        store.close()
    return commits * rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=150)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    batches = [batch(args.rows) for _ in range(8)]
    print(f"{'round':<6} {'rows/s, index off':>18} {'rows/s, index on':>17} {'writer cost':>12}")
    for round_ in range(1, args.rounds + 1):
        off = rate(False, args.commits, args.rows, batches)
        on = rate(True, args.commits, args.rows, batches)
        print(f"{round_:<6} {off:>18,.0f} {on:>17,.0f} {1 - on / off:>11.0%}")


if __name__ == "__main__":
    main()
