"""Alerting under load: 100 one-minute log alert rules over a large store, and what they cost.

Starts a real collector (1-minute rules, as users get them), fills its store with `--fill-rows`
rows spread over the past day, then in the same run:
1. baseline: ingestion throughput for `--seconds` with no rules (realistic gzip batches of 500 mixed
   envelopes stamped now, from a separate process, as bench/ingest.py sends them);
2. the same load with 100 rules at a 1-minute frequency over 5-minute windows (10 kinds of query:
   counts, failures split by result code, averages and percentiles of duration, traces, exceptions),
   each evaluated over the freshest, largest part of the store; the scheduler's lag (how late a
   window was evaluated after it came due) and evaluations from GET /api/alerts/scheduler;
3. latency from a threshold crossed in ingested data to the webhook's arrival at a receiver
   process: `--crossings` rules (1-minute frequency) on services of their own, each crossed at a
   different moment of the minute.

    python bench/alerts.py [--fill-rows 1000000] [--seconds 65] [--crossings 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "alerts"))
sys.path.insert(0, str(ROOT))

from alert_helpers import Receiver, ikey_of, request_envelope, send, wait_for  # noqa: E402
from collector_process import CollectorProcess  # noqa: E402

console = Console()
RULES = 100
LOADER = """
import gzip, json, random, sys, time
from datetime import UTC, datetime, timedelta
sys.path.insert(0, {tests!r})
import loader
from loader import ITEMS_PER_BATCH, _template, run
ikey, seconds, spread_s = {ikey!r}, {seconds}, {spread_s}
FIXED = b"2026-11-23T16:53:49.943891Z"
def stamped(seed):
    at = datetime.now(UTC) - timedelta(seconds=random.uniform(0, spread_s))
    return gzip.compress(_template(ikey, seed % 16).replace(b"__OP__", b"op%d" % seed).replace(
        FIXED, at.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()), compresslevel=1)
bodies = [stamped(i) for i in range(16)]
started = time.perf_counter()
acked, latencies = run({url!r}, ikey, seconds, 8, None, {max_batches}, bodies)
print(json.dumps([len(acked), time.perf_counter() - started]))
"""


def load(collector: CollectorProcess, ikey: str, seconds: float, spread_s: float = 0, max_batches: int | None = None) -> float:
    """Items acknowledged per second by the collector, from a loader process (8 connections)."""
    script = LOADER.format(tests=str(ROOT / "tests"), ikey=ikey, seconds=seconds, spread_s=spread_s,
                           url=collector.url, max_batches=max_batches)
    acked, wall = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                            check=True).stdout)
    return acked * 500 / wall


QUERIES = [
    ("requests", "rows", [], "GreaterThan", 1e9),
    ("requests | where success == false", "rows", ["resultCode"], "GreaterThan", 1e9),
    ("requests", "avg(duration)", [], "GreaterThan", 1e9),
    ("requests | summarize p95 = percentile(duration, 95)", "max(p95)", [], "GreaterThan", 1e9),
    ("traces | where message == 'STDOUT'", "rows", [], "GreaterThan", 1e9),
    ("exceptions | summarize n = count() by type", "total(n)", ["type"], "GreaterThan", 1e9),
    ("dependencies | where success == false", "rows", [], "GreaterThan", 1e9),
    ("customMetrics | where name == 'inference_ms'", "avg(value)", [], "GreaterThan", 1e9),
    ("requests | summarize total = count(), failed = countif(success == false) | extend rate = 100.0 * failed / total",
     "max(rate)", [], "GreaterThan", 1e9),
    ("requests | where duration > 500", "rows", ["name"], "GreaterThan", 1e9),
]


def add_rules(collector: CollectorProcess, service: str) -> None:
    with collector.admin as api:
        for index in range(RULES):
            query, measure, split_by, operator, threshold = QUERIES[index % len(QUERIES)]
            answer = api.post(f"/api/services/{service}/alert-rules", json={
                "name": f"rule-{index:03d}", "query": query, "measure": measure, "split_by": split_by,
                "operator": operator, "threshold": threshold, "frequency": "PT1M", "window": "PT5M"})
            answer.raise_for_status()


def crossing_latencies(collector: CollectorProcess, receiver: Receiver, count: int) -> list[float]:
    """Seconds from rows that cross a rule's threshold being acknowledged to the webhook's arrival."""
    crossings = []
    with collector.admin as api:
        for index in range(count):
            service = collector.create_service(f"cross{index}")
            api.post(f"/api/services/{service['name']}/action-groups", json={"name": "hook", "webhooks": [{"url": receiver.url}]})
            api.post(f"/api/services/{service['name']}/alert-rules", json={
                "name": "failures", "query": "requests | where success == false", "frequency": "PT1M", "window": "PT1M",
                "operator": "GreaterThan", "threshold": 0, "action_groups": ["hook"]})
            crossings.append(service)
    time.sleep(65)  # every rule past its first (empty) window
    sent: dict[str, float] = {}
    start = time.monotonic()
    for index, service in enumerate(crossings):  # spread over a minute: each lands at another moment of it
        time.sleep(max(0.0, start + 60 / count * index - time.monotonic()))
        send(collector, ikey_of(service), [request_envelope(ikey_of(service), success=False)])
        sent[service["name"]] = time.time()
    def fired() -> dict[str, float]:
        """The first Fired notification's arrival, by service."""
        arrived: dict[str, float] = {}
        for entry in receiver.received():
            essentials = entry["json"]["data"]["essentials"]
            if essentials["monitorCondition"] == "Fired":
                arrived.setdefault(essentials["configurationItems"][0], entry["at"])
        return arrived

    wait_for(lambda: len(fired()) >= count, 200, "every crossing's webhook")
    arrived = fired()
    return sorted(arrived[s["name"]] - sent[s["name"]] for s in crossings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fill-rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=65)
    parser.add_argument("--crossings", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as folder:
        collector = CollectorProcess(Path(folder) / "data").start()
        receiver = Receiver(Path(folder) / "receiver")
        try:
            service = collector.create_service("bench")
            ikey = ikey_of(service)
            started = time.perf_counter()
            load(collector, ikey, 3600, spread_s=86400, max_batches=args.fill_rows // 500)
            console.print(f"filled {args.fill_rows:,} rows (spread over 24 h) in {time.perf_counter() - started:.0f} s")
            baseline = load(collector, ikey, args.seconds)
            console.print(f"without rules: {baseline:,.0f} items/s")
            add_rules(collector, service["name"])
            with_rules = load(collector, ikey, args.seconds)
            status = httpx.get(f"{collector.url}/api/alerts/scheduler", headers={"x-api-key": collector.admin_key}).json()
            console.print(f"with {RULES} rules: {with_rules:,.0f} items/s ({(with_rules / baseline - 1) * 100:+.1f}%); "
                          f"scheduler: {status}")
            rows = collector.query("requests | count", service=service["name"])[0]
            console.print(f"requests rows now: {list(rows.values())[0]:,}")
            latencies = crossing_latencies(collector, receiver, args.crossings)
            console.print(f"threshold crossed -> webhook (s): {[round(x, 1) for x in latencies]}; "
                          f"median {statistics.median(latencies):.1f}, max {max(latencies):.1f} (frequency 60 s)")
        finally:
            receiver.stop()
            collector.stop()


if __name__ == "__main__":
    print(datetime.now(UTC).isoformat())
    main()
