"""Scoring wrapper vs azmlinfsrv: the same trivial score.py (run() returns [1]), both sending
telemetry to one collector, interleaved in one run, with 1 and 8 concurrent keep-alive clients.

    python bench/scoring.py [--rounds 3] [--requests 10000] [--azmlinfsrv /work/main/.venv-azmlinfsrv/bin/azmlinfsrv]

azmlinfsrv (PyPI azureml-inference-server-http) pins OpenTelemetry 1.33, so it lives in its own venv:
    python -m venv .venv-azmlinfsrv && .venv-azmlinfsrv/bin/pip install azureml-inference-server-http

Method as in reference/azmlinfsrv.md: http.client, a 27-byte JSON POST, keep-alive requested (azmlinfsrv
closes every connection, so its requests include a connect); 1 client sends N sequential requests after
N/10 warm-up; 8 client processes send N in total after a warm-up each. Each cell is the median of the
rounds; the servers alternate within each round. N is large enough that a cell spans several of the
wrapper's 0.5 s export cycles, so its p99 is the steady state's, not the luck of whether an export
fell inside it. Our wrapper runs with --max_concurrent_requests 4, so that 8 clients stay within its
429 limit (2 x 4 pending).

Two more runs of our wrapper tell where a p99 comes from: with telemetry off (the machine's own
noise), and with telemetry on but sent to a null receiver that acknowledges without storing (the
whole export path of the wrapper, without the collector's ingestion CPU, which here competes with the
servers and the clients for the same cores; see ## Scoring in bench/README.md). `--collector-nice N`
lowers the collector's priority (its worker processes too).
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path, where this file (scoring.py) would
# shadow the `scoring` package for whatever imports it here: the folder goes last instead.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path.append(sys.path.pop(0))
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "scoring")]

from collector_process import NO_PHONE_HOME, CollectorProcess, free_port  # noqa: E402
from http_clients import BODY, measure  # noqa: E402

SCRIPT = ROOT / "tests" / "scoring" / "scripts" / "trivial_score.py"


def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            if httpx.post(f"{url}/score", content=BODY, headers={"content-type": "application/json"}, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def start_azmlinfsrv(binary: str, service: dict, collector_url: str, workdir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, **NO_PHONE_HOME, "AML_APP_INSIGHTS_ENABLED": "true",
           "AML_APP_INSIGHTS_KEY": service["instrumentation_key"],
           "APPLICATIONINSIGHTS_CONNECTION_STRING": f"InstrumentationKey={service['instrumentation_key']};IngestionEndpoint={collector_url}/",
           "SERVICE_NAME": service["name"], "GUNICORN_CMD_ARGS": "--no-control-socket"}
    env.pop("VIRTUAL_ENV", None)
    process = subprocess.Popen([binary, "--entry_script", str(SCRIPT), "--port", str(port)], env=env, cwd=workdir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, port


def start_ours(service: dict, workdir: Path, concurrency: int, telemetry: bool = True) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, **NO_PHONE_HOME, "APPLICATIONINSIGHTS_CONNECTION_STRING": service["connection_string"],
           "AML_APP_INSIGHTS_ENABLED": "true" if telemetry else "false"}
    command = [sys.executable, "-m", "scoring", "score", "--entry_script", str(SCRIPT), "--port", str(port),
               "--host", "127.0.0.1", "--service", service["name"], "--spool_dir", str(workdir / f"spool-{port}"),
               "--max_concurrent_requests", str(concurrency)]
    process = subprocess.Popen(command, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, port


class NullReceiver(http.server.BaseHTTPRequestHandler):
    """Answers every track POST with 200, as the collector does once it has stored a body, and stores nothing."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = b'{"itemsReceived": 0, "itemsAccepted": 0, "errors": []}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def serve_null_receiver(port: int) -> None:
    http.server.ThreadingHTTPServer(("127.0.0.1", port), NullReceiver).serve_forever()


@dataclass
class ReceiverProcess:
    process: subprocess.Popen
    url: str

    def connection_string(self, service: dict) -> str:
        return f"InstrumentationKey={service['instrumentation_key']};IngestionEndpoint={self.url}/"


def start_null_receiver() -> ReceiverProcess:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--null-receiver", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)  # it answers any POST, /score included
    except RuntimeError:
        process.kill()
        raise
    return ReceiverProcess(process, url)


def _renice(pid: int, increment: int) -> None:
    """A process and its children (the collector's ingestion workers); later children inherit it."""
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        children = []
    for target in [pid, *map(int, children)]:
        os.setpriority(os.PRIO_PROCESS, target, os.getpriority(os.PRIO_PROCESS, target) + increment)


def _row(name: str, cells: dict) -> str:
    def med(clients, key):
        return statistics.median(run[key] for run in cells[clients])

    return (f"| {name} | {med(1, 'p50'):.2f} | {med(1, 'p99'):.2f} | {med(1, 'ratio'):.1f}x | {med(1, 'rps'):.0f} "
            f"| {med(8, 'p50'):.2f} | {med(8, 'p99'):.2f} | {med(8, 'ratio'):.1f}x | {med(8, 'rps'):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--azmlinfsrv", default=str(ROOT / ".venv-azmlinfsrv" / "bin" / "azmlinfsrv"))
    parser.add_argument("--collector-nice", type=int, default=0, help="Lower the collector's priority by this much.")
    parser.add_argument("--null-receiver", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.null_receiver:
        serve_null_receiver(args.null_receiver)
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    collector = CollectorProcess(workdir / "data").start()
    if args.collector_nice:
        _renice(collector.process.pid, args.collector_nice)
    processes = []
    try:
        servers = {}
        if Path(args.azmlinfsrv).exists():
            process, port = start_azmlinfsrv(args.azmlinfsrv, collector.create_service("bench-azml"), collector.url, workdir)
            processes.append(process)
            servers["azmlinfsrv 1.5.1, 1 worker, App Insights on"] = (process, port)
        else:
            print(f"azmlinfsrv not found at {args.azmlinfsrv}; measuring our wrapper only", file=sys.stderr)
        ours = collector.create_service("bench-ours")
        process, port = start_ours(ours, workdir, concurrency=4)
        processes.append(process)
        servers["insights score, 1 worker, telemetry on"] = (process, port)
        receiver = start_null_receiver()
        processes.append(receiver.process)
        process, port = start_ours(dict(ours, connection_string=receiver.connection_string(ours)), workdir, concurrency=4)
        processes.append(process)
        servers["insights score, 1 worker, telemetry on, to a null receiver (no ingestion here)"] = (process, port)
        process, port = start_ours(ours, workdir, concurrency=4, telemetry=False)
        processes.append(process)
        servers["insights score, 1 worker, telemetry off (baseline: machine noise)"] = (process, port)
        for process, port in servers.values():
            _wait_ready(f"http://127.0.0.1:{port}", process)
        cells = {name: {1: [], 8: []} for name in servers}
        for round_ in range(args.rounds):
            for name, (_, port) in servers.items():
                for clients in (1, 8):
                    result = measure(port, clients, args.requests)
                    cells[name][clients].append(result)
                    print(f"round {round_ + 1} {name} {clients} client(s): p50 {result['p50']:.2f} ms, "
                          f"p99 {result['p99']:.2f} ms ({result['ratio']:.1f}x), {result['rps']:.0f} req/s, "
                          f"{result['failed']} failed", file=sys.stderr)
        print("| server | 1 client p50 ms | p99 ms | p99/p50 | req/s | 8 clients p50 ms | p99 ms | p99/p50 | req/s |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for name in servers:
            print(_row(name, cells[name]))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        collector.stop()


if __name__ == "__main__":
    main()
