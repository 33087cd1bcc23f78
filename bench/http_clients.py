"""Keep-alive HTTP clients in processes of their own, timing each POST: the load of the scoring
benches (bench/scoring.py, bench/endpoint.py), which share it so that both measure alike."""

from __future__ import annotations

import http.client
import multiprocessing
import time

BODY = b'{"data": [[1, 2, 3, 4, 5]]}'  # 27 bytes


def client(port: int, count: int, warmup: int, start, results, headers: dict) -> None:
    """POST BODY to /score `warmup` times, wait at the barrier, then `count` timed times."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"content-type": "application/json", **headers}
    latencies, failures = [], 0
    for index in range(warmup + count):
        if index == warmup and start is not None:
            start.wait()
        begun = time.perf_counter()
        connection.request("POST", "/score", body=BODY, headers=headers)
        response = connection.getresponse()
        response.read()
        if index >= warmup:
            latencies.append(time.perf_counter() - begun)
            failures += response.status != 200
    connection.close()
    results.put((latencies, failures, time.perf_counter()))


def measure(port: int, clients: int, total: int, headers: dict | None = None, min_warmup: int = 25) -> dict:
    """p50/p99 (ms), their ratio, requests/s and failures of `clients` processes sending `total`
    requests in all, each after a warm-up of a tenth of its share (at least `min_warmup`)."""
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(clients + 1), context.Queue()
    each = total // clients
    warmup = max(min_warmup, each // 10)
    workers = [context.Process(target=client, args=(port, each, warmup, start, results, headers or {}))
               for _ in range(clients)]
    for worker in workers:
        worker.start()
    start.wait()
    begun = time.perf_counter()
    outcomes = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    elapsed = max(end for _, _, end in outcomes) - begun
    latencies = sorted(latency for lats, _, _ in outcomes for latency in lats)
    p50, p99 = latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000
    return {"p50": p50, "p99": p99, "ratio": p99 / p50, "rps": len(latencies) / elapsed,
            "failed": sum(failures for _, failures, _ in outcomes)}
