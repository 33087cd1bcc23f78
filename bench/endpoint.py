"""The endpoint router's cost: a deployment's wrapper called directly vs through the endpoint's
router, in one run, interleaved.

    python bench/endpoint.py [--rounds 3] [--requests 5000]

One collector; one endpoint with two deployments of the trivial score.py (run() returns [1]), each an
`insights score` with --max_concurrent_requests 4, telemetry on. Latency: 1 keep-alive client,
sequential 27-byte JSON POSTs (with the endpoint key, which the wrapper ignores), after a warm-up;
`router` is the endpoint with traffic blue=100. Throughput: 8 client processes; `direct` is the blue
wrapper alone, `router` the endpoint split blue=50 green=50. Each cell is the median of the rounds.
Also the endpoint host's CPU time per request routed (its router, telemetry and watch threads), a
figure the machine's other load moves far less than latencies.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import http_clients  # noqa: E402
import psutil  # noqa: E402
from collector_process import CollectorProcess  # noqa: E402

from collector.client import OnlineEndpoint, Workspace  # noqa: E402

SCRIPT = ROOT / "tests" / "scoring" / "scripts" / "trivial_score.py"


def measure(port: int, key: str, clients: int, total: int) -> dict:
    return http_clients.measure(port, clients, total, {"authorization": f"Bearer {key}"}, min_warmup=50)


def wrapper_port(data_dir: Path, endpoint: str, deployment: str) -> int:
    """The port the host started the deployment's wrapper on (its log's last start line)."""
    text = (data_dir / "endpoints" / endpoint / f"{deployment}.log").read_text()
    return int(re.findall(r"--- starting deployment \S+ \(generation \d+\) on port (\d+)", text)[-1])


def host_process(collector: CollectorProcess) -> psutil.Process:
    """The endpoint host the collector started (`python -m endpoints host`)."""
    for child in psutil.Process(collector.process.pid).children(recursive=True):
        if "endpoints" in child.cmdline() and "host" in child.cmdline():
            return child
    raise RuntimeError("no endpoint host under the collector")


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        collector = CollectorProcess(Path(tmp) / "data").start()
        try:
            run(collector, Path(tmp) / "data", args.rounds, args.requests)
        finally:
            collector.stop()


def run(collector: CollectorProcess, data_dir: Path, rounds: int, requests: int) -> None:
    endpoint = OnlineEndpoint.create(Workspace(collector.url, api_key=collector.admin_key), "bench-ep",
                                     rate_limit=1_000_000)
    for name in ("blue", "green"):
        endpoint.create_deployment(name, SCRIPT, max_concurrent_requests_per_instance=4)
    key = endpoint.created["primary_key"]
    router_port = int(endpoint.scoring_uri.rsplit(":", 1)[1].split("/")[0])
    direct_port = wrapper_port(data_dir, "bench-ep", "blue")
    host = host_process(collector)
    cells: dict[str, list[dict]] = {}
    cpu_per_request: list[float] = []
    for _ in range(rounds):
        endpoint.update(traffic="blue=100,green=0")
        time.sleep(0.5)
        cells.setdefault("latency direct", []).append(measure(direct_port, key, 1, requests))
        cells.setdefault("latency router", []).append(measure(router_port, key, 1, requests))
        endpoint.update(traffic="blue=50,green=50")
        time.sleep(0.5)
        cells.setdefault("throughput direct (1 wrapper)", []).append(measure(direct_port, key, 8, requests * 2))
        before = cpu_seconds(host)
        cells.setdefault("throughput router (2 deployments)", []).append(measure(router_port, key, 8, requests * 2))
        routed = requests * 2 + 8 * max(50, requests * 2 // 8 // 10)  # the measured requests and the warm-ups
        cpu_per_request.append((cpu_seconds(host) - before) / routed * 1e6)
    print(f"{'configuration':36} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'failed':>7}")
    medians = {}
    for name, found in cells.items():
        medians[name] = {k: statistics.median(c[k] for c in found) for k in ("p50", "p99", "rps", "failed")}
        m = medians[name]
        print(f"{name:36} {m['p50']:8.3f} {m['p99']:8.3f} {m['rps']:8.0f} {m['failed']:7.0f}")
    added_p50 = medians["latency router"]["p50"] - medians["latency direct"]["p50"]
    added_p99 = medians["latency router"]["p99"] - medians["latency direct"]["p99"]
    share = medians["throughput router (2 deployments)"]["rps"] / medians["throughput direct (1 wrapper)"]["rps"]
    print(f"endpoint host CPU per routed request: {statistics.median(cpu_per_request):.0f} us (load average "
          f"{os.getloadavg()[0]:.1f})")
    print(f"router adds {added_p50:.3f} ms at p50 (floor 0.5), {added_p99:.3f} ms at p99 (floor 2); "
          f"throughput with two deployments {share:.0%} of one wrapper's (floor 80%)")


if __name__ == "__main__":
    main()
