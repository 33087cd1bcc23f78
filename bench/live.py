"""Live metrics and the application map: what they cost and how fast they answer.

1. Ingestion throughput with live metrics on and off, in the same run, alternating: real collector
   processes (the same `serve` as `insights up`, with or without the live extension; with it, two
   streams are open, one of them filtered by a condition, so that sampling runs too), loaded from a
   separate process as bench/ingest.py loads them (gzip batches of 500 mixed envelopes).
2. Arrival-to-stream latency at a steady rate (default 20,000 items/s): a paced loader in its own
   process, and probes (one request named `probe-N` every 100 ms) whose appearance in a stream
   filtered by `name contains "probe-"` is timed from the moment each probe was sent (so the
   figure includes the probe's own ingestion and commit: an upper bound).
3. What keeping the map's per-minute rollups costs the writer: the same commits (2,000 requests +
   2,000 dependencies each) into a store with and without them, alternating, in one process.
4. The application map's query time over a large store: requests and dependencies generated
   (20 roles, 100 targets, one day) and committed through a stopped collector's writer, which keeps
   the rollups as at ingestion, then `GET /api/map` over the last 24 h timed on the collector, from the
   rollups and (baseline, same run) by the three KQL queries over the rows (`source=kql`).

    python bench/live.py [--seconds 12] [--rounds 2] [--rate 20000] [--map-rows 10000000]
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import httpx
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from collector_process import NO_PHONE_HOME, CollectorProcess  # noqa: E402
from ingest import cpu_seconds, load  # noqa: E402

console = Console()
SERVE = """
import sys
from pathlib import Path
from collector.server import serve
from collector.settings import CollectorSettings
from exporters import ExportExtension
from live import LiveExtension
extensions = [ExportExtension()] + ([LiveExtension()] if sys.argv[3] == "on" else [])
serve(CollectorSettings.from_env(Path(sys.argv[1]), None), extensions, port=int(sys.argv[2]))
"""


class Collector(CollectorProcess):
    """A collector process with live metrics `on` or `off` (the same serve() as `insights up`)."""

    def __init__(self, data_dir: Path, live: bool):
        super().__init__(data_dir)
        self.live = live

    def start(self, timeout: float = 60.0) -> Collector:
        import os

        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "INSIGHTS_API_KEY": self.admin_key, **NO_PHONE_HOME, "PYTHONPATH": str(ROOT)}
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-c", SERVE, str(self.data_dir), str(self.port),
                                         "on" if self.live else "off"], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"collector did not start: {self.log_path.read_text()[-2000:]}")


def watch(collector: Collector, service: str, condition: str | None, seen: queue.Queue | None = None,
          stop: threading.Event | None = None) -> threading.Thread:
    """A stream reader in a thread: each probe sample's name and arrival time into `seen`."""
    def read() -> None:
        params = {"service": service, **({"condition": condition} if condition else {})}
        try:
            with httpx.stream("GET", f"{collector.url}/api/live/stream", params=params, timeout=None,
                              headers={"x-api-key": collector.admin_key}) as response:
                for line in response.iter_lines():
                    if stop is not None and stop.is_set():
                        return
                    if line.startswith("data:") and seen is not None:
                        now = time.perf_counter()
                        for sample in json.loads(line[5:])["samples"]:
                            seen.put((sample.get("name"), now))
        except httpx.HTTPError:
            return
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def throughput(root: Path, live: bool, seconds: float, connections: int) -> dict:
    collector = Collector(root / f"{'on' if live else 'off'}-{time.monotonic_ns()}" / "data", live).start()
    try:
        service = collector.create_service("bench")
        if live:
            watch(collector, service["name"], None)
            watch(collector, service["name"], "duration > 500")
            time.sleep(0.5)
        cpu_before = cpu_seconds(collector.process.pid)
        acked, latencies, wall = load(collector, service["instrumentation_key"], seconds, connections)
        cpu = cpu_seconds(collector.process.pid) - cpu_before
        items = acked * 500
        result = {"items/s": items / wall, "cpu µs/item": cpu / max(items, 1) * 1e6,
                  "p50 ms": statistics.median(latencies) * 1000 if latencies else None}
        if live:
            time.sleep(0.3)  # the last drain
            with collector.admin as client:
                status = client.get("/api/live/status").json()
            result["live µs/item"] = status["microsecondsPerItem"]
            result["live share of collector CPU"] = status["busySeconds"] / cpu
        return result
    finally:
        collector.stop()


PACED = """
import sys, time, threading, httpx
sys.path.insert(0, {tests!r})
from loader import prebuilt
url, ikey, rate, seconds = {url!r}, {ikey!r}, {rate}, {seconds}
bodies = prebuilt(ikey, 32)
threads, interval = 8, 8 * 500 / rate
sent = [0] * threads
def worker(k):
    with httpx.Client(base_url=url, timeout=30) as client:
        next_at, end, n = time.monotonic() + k * interval / threads, time.monotonic() + seconds, k
        while time.monotonic() < end:
            time.sleep(max(0.0, next_at - time.monotonic()))
            client.post("/v2.1/track", content=bodies[n % len(bodies)],
                        headers={{"content-type": "application/x-json-stream", "content-encoding": "gzip"}})
            sent[k] += 500; n += threads; next_at += interval
ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sum(sent))
"""


def latency(root: Path, rate: int, seconds: float) -> dict:
    collector = Collector(root / "latency" / "data", live=True).start()
    try:
        service = collector.create_service("bench")
        seen: queue.Queue = queue.Queue()
        stop = threading.Event()
        watch(collector, service["name"], 'name contains "probe-"', seen, stop)
        watch(collector, service["name"], None, None, stop)
        time.sleep(1.0)
        loader = subprocess.Popen([sys.executable, "-c", PACED.format(
            tests=str(ROOT / "tests"), url=collector.url, ikey=service["instrumentation_key"], rate=rate,
            seconds=seconds)], stdout=subprocess.PIPE, text=True)
        sent: dict[str, float] = {}
        with httpx.Client(timeout=30) as client:
            end = time.monotonic() + seconds
            number = 0
            while time.monotonic() < end:
                name = f"probe-{number}"
                sent[name] = time.perf_counter()
                client.post(f"{collector.url}/v2.1/track", json=[_probe(service["instrumentation_key"], name)])
                number += 1
                time.sleep(0.1)
        loaded = int(loader.communicate()[0].strip() or 0)
        time.sleep(2.5)
        stop.set()
        arrived: dict[str, float] = {}
        while not seen.empty():
            name, at = seen.get()
            arrived.setdefault(name, at)
        delays = sorted((arrived[name] - at) * 1000 for name, at in sent.items() if name in arrived)
        return {"items/s offered": rate, "items/s sent": loaded / seconds, "probes": len(sent),
                "probes seen": len(delays), "p50 ms": _pct(delays, 50), "p99 ms": _pct(delays, 99),
                "max ms": delays[-1] if delays else None}
    finally:
        collector.stop()


def _probe(ikey: str, name: str) -> dict:
    from datetime import UTC, datetime

    return {"iKey": ikey, "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "name": "Microsoft.ApplicationInsights.Request", "tags": {"ai.cloud.role": "probe"},
            "data": {"baseType": "RequestData", "baseData": {"ver": 2, "id": name, "name": name, "success": True,
                                                             "responseCode": "200", "duration": "0.00:00:00.001"}}}


def _pct(values: list[float], q: float) -> float | None:
    return values[min(len(values) - 1, int(len(values) * q / 100))] if values else None


GENERATE = """
INSERT INTO {table} (timestamp, id, {extra_cols} success, resultCode, duration, itemType, operation_Id,
    operation_ParentId, cloud_RoleName, cloud_RoleInstance, appId, appName, itemId, itemCount, _service, _seq)
SELECT now()::TIMESTAMP - to_microseconds(((({rows} - 1 - i) * 86400000000) // {rows})::BIGINT),
    printf('{prefix}%015x', i),
    {extra_vals} (hash(i) % 50) <> 0, CASE WHEN (hash(i) % 50) <> 0 THEN '200' ELSE '500' END,
    (hash(i * 7) % 400)::DOUBLE, '{item}', printf('%032x', i), {parent},
    {role}, 'inst-' || (i % 3)::VARCHAR, 'k', 'bench', printf('{prefix}%015x', i), 1, 'bench', i
FROM range({first}, {last}) t(i)
"""
CHUNK_ROWS = 200_000
"""Rows per table in one commit while building the map's store (the writer's own group limit)."""


def generated(rows: int, first: int, last: int) -> dict:
    """Rows first..last (of `rows` over one day, oldest first) of both tables, as the writer takes them."""
    from collector.store.schema import TABLES

    con = duckdb.connect()
    tables = {}
    for name in ("requests", "dependencies"):
        con.execute(TABLES[name].ddl())
    # requests: 20 roles; role r (r > 0) is called by role r-1 through target 'svc-r:80', so the
    # dependency with id d<i> is the parent of request r<i> for a fifth of the rows.
    con.execute(GENERATE.format(
        table="requests", rows=rows, first=first, last=last, prefix="r", extra_cols="name,",
        extra_vals="'POST /score',", item="request",
        parent="CASE WHEN i % 5 = 0 THEN printf('d%015x', i) ELSE NULL END",
        role="'role-' || ((i % 20) + CASE WHEN i % 5 = 0 THEN 1 ELSE 0 END)::VARCHAR"))
    con.execute(GENERATE.format(
        table="dependencies", rows=rows, first=first, last=last, prefix="d", item="dependency",
        extra_cols="target, type, name,",
        extra_vals="CASE WHEN i % 5 = 0 THEN 'role-' || ((i % 20) + 1)::VARCHAR || ':80' "
                   "ELSE 'ext-' || (i % 100)::VARCHAR || '.example:443' END, "
                   "CASE WHEN i % 10 = 1 THEN 'SQL' ELSE 'HTTP' END, 'GET /x',",
        parent="NULL", role="'role-' || (i % 20)::VARCHAR"))
    for name in ("requests", "dependencies"):
        tables[name] = con.sql(f"SELECT * EXCLUDE (_seq) FROM {name}").to_arrow_table()
    con.close()
    return tables


def build_store(data_dir: Path, rows: int) -> float:
    """Requests and dependencies into a stopped collector's store through its writer (so the map's
    rollups are kept as at ingestion), CHUNK_ROWS per table and commit; the seconds it took."""
    from collector.store.database import Store

    started = time.perf_counter()
    store = Store(data_dir, max_pending_rows=4 * CHUNK_ROWS)
    try:
        for first in range(0, rows, CHUNK_ROWS):
            store.writer.write(generated(rows, first, min(rows, first + CHUNK_ROWS))).result()
        store.writer.write(operation=lambda con: con.execute("CHECKPOINT")).result()
    finally:
        store.close()
    return time.perf_counter() - started


def map_time(root: Path, rows: int, runs: int) -> dict:
    """GET /api/map over a day from the rollups and (the reference) from the raw rows by KQL."""
    data_dir = root / "map" / "data"
    first = Collector(data_dir, live=True).start()  # creates the tables
    first.create_service("bench")
    first.stop()
    built = build_store(data_dir, rows)
    from datetime import UTC, datetime, timedelta

    end = datetime.now(UTC).replace(tzinfo=None)  # one window for every run: P1D would move with the clock
    timespan = f"{(end - timedelta(days=1)).isoformat()}/{end.isoformat()}"
    collector = Collector(data_dir, live=True).start()
    try:
        with collector.admin as client:
            timings: dict[str, list[float]] = {"rollups": [], "kql": []}
            bodies = {}
            for _ in range(runs):
                for source in timings:
                    started = time.perf_counter()
                    found = client.get("/api/map", params={"timespan": timespan, "source": source}, timeout=600)
                    found.raise_for_status()
                    timings[source].append(time.perf_counter() - started)
                    bodies[source] = found.json()
        body = bodies["rollups"]
        same = _same_counts(bodies["rollups"], bodies["kql"])
        return {"rows per table": rows, "build s (through the writer)": round(built, 1), "nodes": len(body["nodes"]),
                "edges": len(body["edges"]), "role edges": sum(e["targetKind"] == "role" for e in body["edges"]),
                "same counts as KQL": same,
                "map from rollups s (median)": round(statistics.median(timings["rollups"]), 3),
                "each": [round(t, 3) for t in timings["rollups"]],
                "map by KQL over rows s (median)": round(statistics.median(timings["kql"]), 2),
                "each ": [round(t, 2) for t in timings["kql"]]}
    finally:
        collector.stop()


def _same_counts(rolled: dict, raw: dict) -> bool:
    def counts(body: dict) -> tuple:
        return (sorted((n["id"], n["requests"], n["failed"], n["instances"]) for n in body["nodes"]),
                sorted((e["source"], e["target"], e["calls"], e["failed"]) for e in body["edges"]))
    if counts(rolled) != counts(raw):
        console.print("rollups:", counts(rolled), "\nKQL:", counts(raw))
        return False
    return True


def rollup_cost(root: Path, commits: int, rows: int) -> dict:
    """The writer's throughput with the map's rollups kept and not (the hook removed), alternating in
    one process: commits of `rows` requests + `rows` dependencies, the group size under load."""
    from collector.store.database import Store

    batches = [generated(commits * rows, first, first + rows) for first in range(0, commits * rows, rows)]
    results: dict[str, list[float]] = {"on": [], "off": []}
    for round_number in range(2):
        for mode in ("off", "on"):
            store = Store(root / "cost" / f"{mode}-{round_number}")
            if mode == "off":
                store.writer.after_insert.clear()
            try:
                started = time.perf_counter()
                for batch in batches:
                    store.writer.write(batch).result()
                results[mode].append(2 * commits * rows / (time.perf_counter() - started))
            finally:
                store.close()
    off, on = statistics.mean(results["off"]), statistics.mean(results["on"])
    return {"rows per commit": 2 * rows, "commits": commits, "rows/s off": round(off), "rows/s on": round(on),
            "cost %": round(100 * (off - on) / off, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=int, default=20_000)
    parser.add_argument("--map-rows", type=int, default=10_000_000)
    parser.add_argument("--map-runs", type=int, default=3)
    parser.add_argument("--cost-commits", type=int, default=300)
    parser.add_argument("--skip", default="", help="comma-separated: throughput,latency,map,rollups")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    root = Path(tempfile.mkdtemp(prefix="bench-live-"))
    if "throughput" not in skip:
        results: dict[str, list[dict]] = {"off": [], "on": []}
        for round_number in range(args.rounds):
            for mode in ("off", "on"):
                result = throughput(root, mode == "on", args.seconds, args.connections)
                results[mode].append(result)
                console.print(f"round {round_number + 1} live {mode}: {result}")
        off = statistics.mean(r["items/s"] for r in results["off"])
        on = statistics.mean(r["items/s"] for r in results["on"])
        share = statistics.mean(r["live share of collector CPU"] for r in results["on"])
        console.print(f"[bold]throughput[/bold]: off {off:,.0f} items/s, on {on:,.0f} items/s, "
                      f"difference {100 * (off - on) / off:+.1f}%; the live intake's own CPU "
                      f"{100 * share:.1f}% of the collector's (floor: cost at most 5%)")
    if "latency" not in skip:
        console.print(f"[bold]arrival-to-stream[/bold]: {latency(root, args.rate, args.seconds)}")
    if "rollups" not in skip:
        console.print(f"[bold]keeping the map's rollups[/bold]: {rollup_cost(root, args.cost_commits, 2_000)}")
    if "map" not in skip:
        console.print(f"[bold]application map[/bold]: {map_time(root, args.map_rows, args.map_runs)}")


if __name__ == "__main__":
    main()
