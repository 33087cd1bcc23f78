"""Overview render time with 1M requests in the store, next to a baseline in the same run.

Starts a real collector, imports 1M requests spread over the last 24 hours (plus 10k requests with
their dependencies, traces and exceptions so every chart has data) through the import API in big
chunks, then renders the real Overview page with streamlit's AppTest (the page's script, its five
KQL queries over HTTP, the tiles and the plotly figures; the browser's drawing is not included).
Cold = the dashboard's query cache emptied before each render; warm = served from it (what
auto-refresh and page switches within 10 s get). Baseline: the same page over a service holding
10k requests, so the ratio shows what a million rows cost.

    python bench/dashboard.py [--requests 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "dashboard")]

from collector_process import CollectorProcess  # noqa: E402
from dashboard_seed import rows  # noqa: E402

APP = str(ROOT / "dashboard" / "app.py")
CHUNK = 20_000  # lines per import call: ~7 MB, under the body limit


def seed(collector: CollectorProcess, service: str, requests: int, full: int) -> float:
    """Import `requests` bare requests and `full` requests with their related items; seconds taken."""
    with collector.admin as client:
        client.post("/api/services", json={"name": service}).raise_for_status()
    started = time.perf_counter()
    batch: list[bytes] = []
    for line in rows(requests, minutes=24 * 60, requests_only=True, seed=1):
        batch.append(line)
        if len(batch) == CHUNK:
            collector.import_rows(service, batch)
            batch = []
    batch.extend(rows(full, minutes=24 * 60, seed=2))
    collector.import_rows(service, batch)
    return time.perf_counter() - started


def render_times(service: str, range_label: str, runs: int, cold: bool) -> list[float]:
    from streamlit.testing.v1 import AppTest

    from dashboard import collector_api

    times = []
    for _ in range(runs):
        if cold:
            collector_api.query_all.clear()
        at = AppTest.from_file(APP, default_timeout=120)
        at.session_state["service"] = service
        at.session_state["time_range"] = range_label
        started = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - started)
        assert not at.exception, at.exception
        assert len(at.get("plotly_chart")) == 7, "the Overview did not draw every chart"
    return times


def query_times(collector: CollectorProcess, service: str, timespan: str) -> dict[str, float]:
    """Each Overview query alone, server-side execution time (ms), as the collector reports it."""
    from dashboard import health, time_range

    chosen = next(r for r in time_range.RANGES if r.timespan == timespan)
    result = {}
    with collector.admin as client:
        for name, kql in health.queries(chosen).items():
            body = client.post("/v1/apps/default/query", json={"query": kql, "timespan": timespan, "service": service}).json()
            result[name] = body["statistics"]["query"]["executionTime"] * 1000
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    collector = CollectorProcess(Path(tempfile.mkdtemp(prefix="bench-dashboard-")) / "data").start()
    try:
        os.environ.update(INSIGHTS_URL=collector.url, INSIGHTS_API_KEY=collector.admin_key)
        seconds = seed(collector, "bench-big", args.requests, 10_000)
        seed(collector, "bench-small", 0, 10_000)
        print(f"seeded {args.requests:,} + 10,000 requests in {seconds:.1f} s")
        render_times("bench-small", "Last hour", 1, cold=True)  # warm-up: imports, first connection
        report(collector, args)
    finally:
        collector.stop()


def report(collector: CollectorProcess, args) -> None:
    print("| service | range | requests in range | cold p50 s | cold max s | warm p50 s |")
    print("|---|---|---:|---:|---:|---:|")
    for service, label, timespan in (("bench-small", "Last 24 hours", "P1D"), ("bench-big", "Last 24 hours", "P1D"),
                                     ("bench-big", "Last hour", "PT1H")):
        with collector.admin as client:
            count = client.post("/v1/apps/default/query", json={"query": "requests | count", "timespan": timespan,
                                                                 "service": service}).json()["tables"][0]["rows"][0][0]
        cold = render_times(service, label, args.runs, cold=True)
        warm = render_times(service, label, args.runs, cold=False)
        print(f"| {service} | {label} | {count:,} | {statistics.median(cold):.2f} | {max(cold):.2f} | "
              f"{statistics.median(warm):.2f} |")
    for name, ms in query_times(collector, "bench-big", "P1D").items():
        print(f"query {name}: {ms:.0f} ms (1M requests, last 24 hours)")


if __name__ == "__main__":
    main()
