"""Autoscale under a load spike: a deployment whose run() waits on I/O (so more worker processes help
even on 2 cores), with autoscale on and off, in the same run.

Each configuration gets the same traffic: `--clients` closed-loop clients (no think time; 100 ms of
back-off after a 429 or 503) for `--spike` seconds after `--warm` seconds of one client. run() sleeps `--io-ms` milliseconds and
max_concurrent_requests is 1 (azmlinfsrv's sync worker), so a worker holds one run() and one
queued request; beyond that it answers 429. Printed per configuration: requests answered 200,
429s and 503s, latency percentiles of the 200s, and the instances over time (from the wrapper's
status file, sampled every 0.5 s).

    python bench/autoscale.py [--clients 12] [--spike 12] [--io-ms 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.update({"APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true", "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
                   "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true"})

from collector_process import CollectorProcess  # noqa: E402

from collector.client import LocalWebservice, Workspace  # noqa: E402

SCORE = """
import json, time
def init():
    pass
def run(raw):
    time.sleep({io_s})   # waits on I/O: a database, a feature store, another model
    return {{"ok": True}}
"""


def spike(url: str, clients: int, warm: float, seconds: float) -> tuple[Counter, list[float]]:
    statuses: Counter = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    start_spike = time.monotonic() + warm
    stop = start_spike + seconds

    def client(index: int) -> None:
        with httpx.Client(timeout=30, trust_env=False) as http:
            while time.monotonic() < stop:
                if index and time.monotonic() < start_spike:
                    time.sleep(0.05)
                    continue
                began = time.perf_counter()
                try:
                    status = http.post(url, content=b'{"x": 1}', headers={"content-type": "application/json"}).status_code
                except httpx.TransportError:
                    status = 0
                took = (time.perf_counter() - began) * 1000
                with lock:
                    statuses[status] += 1
                    if status == 200:
                        latencies.append(took)
                if status in (429, 503):
                    time.sleep(0.1)  # a client backing off, as Retry-After asks

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, latencies


def run_case(ws: Workspace, script: Path, autoscale: bool, args) -> dict:
    options = {"max_concurrent_requests": 1}
    if autoscale:
        options.update(autoscale_enabled=True, autoscale_min_replicas=1, autoscale_max_replicas=args.max_replicas,
                       autoscale_target_utilization=70, autoscale_refresh_seconds=1)
    config = LocalWebservice.deploy_configuration(enable_app_insights=True, **options)
    name = f"bench-autoscale-{'on' if autoscale else 'off'}"
    service = LocalWebservice.deploy(ws, name, script, deployment_config=config)
    timeline: list[tuple[float, int]] = []
    done = threading.Event()
    began = time.monotonic()

    def sample() -> None:
        while not done.is_set():
            timeline.append((time.monotonic() - began, service.wrapper_status().get("workers", 1)))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        statuses, latencies = spike(service.scoring_uri, args.clients, args.warm, args.spike)
        time.sleep(args.cool)
    finally:
        done.set()
        sampler.join()
        events = service.wrapper_status().get("scale_events", [])
        service.delete()
    return {"statuses": statuses, "latencies": latencies, "timeline": timeline, "events": events}


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


def report(label: str, result: dict) -> None:
    statuses, latencies = result["statuses"], result["latencies"]
    total = sum(statuses.values())
    print(f"\n{label}: {total} requests: {statuses[200]} x 200, {statuses[429]} x 429, {statuses[503]} x 503, "
          f"{statuses[0]} transport errors, other {dict((k, v) for k, v in statuses.items() if k not in (0, 200, 429, 503))}")
    if latencies:
        print(f"  latency of the 200s: p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, "
              f"p99 {percentile(latencies, 99):.0f} ms")
    line = " ".join(f"{t:.0f}s:{n}" for t, n in result["timeline"][::2])
    print(f"  instances over time: {line}")
    for event in result["events"]:
        print(f"  scale event: {event['from']} -> {event['to']} at utilization {event['utilization_percent']}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--warm", type=float, default=3.0)
    parser.add_argument("--spike", type=float, default=12.0)
    parser.add_argument("--cool", type=float, default=4.0)
    parser.add_argument("--io-ms", type=int, default=100)
    parser.add_argument("--max-replicas", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        script = Path(root) / "score.py"
        script.write_text(SCORE.format(io_s=args.io_ms / 1000))
        collector = CollectorProcess(Path(root) / "data").start()
        try:
            ws = Workspace(collector.url, api_key=collector.admin_key)
            print(f"spike: {args.clients} clients for {args.spike:g} s after {args.warm:g} s of 1; run() waits "
                  f"{args.io_ms} ms; max_concurrent_requests 1; cores: {os.cpu_count()}")
            off = run_case(ws, script, False, args)
            on = run_case(ws, script, True, args)
        finally:
            collector.stop()
    report("autoscale off (1 worker)", off)
    report(f"autoscale on (1-{args.max_replicas} workers, target 70%, refresh 1 s)", on)


if __name__ == "__main__":
    main()
