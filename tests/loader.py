"""A load generator for the collector: realistic batches of mixed envelopes, several connections.

Used by the kill -9 test (it records every batch the collector acknowledged) and by bench/ingest.py.
Run as a separate process: `python tests/loader.py URL IKEY --seconds S --acked FILE`.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import random
import threading
import time
import uuid

import httpx

ITEMS_PER_BATCH = 500


def envelope(ikey: str, operation_id: str, index: int, rng: random.Random) -> dict:
    """One of the mix a scoring service sends: prints, requests, dependencies, exceptions, metrics."""
    kind = index % 10
    tags = {"ai.operation.id": operation_id, "ai.cloud.role": "score.py", "ai.cloud.roleInstance": "pod-1",
            "ai.internal.sdkVersion": "py3.11.7:oc0.11.4:ext1.1.15"}
    base = {"iKey": ikey, "time": "2026-11-23T16:53:49.943891Z", "tags": tags}
    duration = f"0.00:00:00.{rng.randint(1, 999):03d}"
    if kind < 5:
        payload = {"input": {"data": [rng.random() for _ in range(4)]}, "output": [rng.randint(0, 9)]}
        data = {"baseType": "MessageData", "baseData": {"message": "STDOUT", "severityLevel": 1,
                "properties": {"Contents": payload, "Request Id": str(uuid.UUID(int=rng.getrandbits(128)))}}}
    elif kind < 7:
        code = rng.choice(["200", "200", "200", "500", "408"])
        data = {"baseType": "RequestData", "baseData": {"id": f"{index:016x}", "name": "POST /score", "duration": duration,
                "responseCode": code, "success": code == "200", "url": "http://127.0.0.1:5001/score",
                "properties": {"Container Id": "pod-1", "Service Name": "svc"}}}
    elif kind < 8:
        data = {"baseType": "RemoteDependencyData", "baseData": {"id": f"d{index:015x}", "name": "GET /features",
                "duration": duration, "resultCode": "200", "success": True, "type": "HTTP",
                "target": "features:8000", "data": "http://features:8000/f?id=1"}}
    elif kind < 9:
        data = {"baseType": "ExceptionData", "baseData": {"severityLevel": 3, "exceptions": [{"typeName": "ValueError",
                "message": "bad input", "hasFullStack": True, "parsedStack": [{"level": 0, "method": "run",
                "fileName": "score.py", "line": 12}]}]}}
    else:
        data = {"baseType": "MetricData", "baseData": {"metrics": [{"name": "inference_ms", "value": rng.random() * 50,
                "count": 1}], "properties": {"model": "resnet"}}}
    return {**base, "name": "Microsoft.ApplicationInsights." + data["baseType"][:-4], "data": data}


def batch_body(ikey: str, operation_id: str, seed: int) -> bytes:
    return gzip.compress(_template(ikey, seed % TEMPLATES).replace(b"__OP__", operation_id.encode()), compresslevel=1)


TEMPLATES = 16
_templates: dict[tuple[str, int], bytes] = {}


def _template(ikey: str, seed: int) -> bytes:
    """NDJSON of one batch with a placeholder operation id: generating envelopes is slow, and the
    loader must not be what limits the collector."""
    key = (ikey, seed)
    if key not in _templates:
        rng = random.Random(seed)
        items = [envelope(ikey, "__OP__", i, rng) for i in range(ITEMS_PER_BATCH)]
        _templates[key] = "\n".join(json.dumps(i) for i in items).encode()
    return _templates[key]


def prebuilt(ikey: str, count: int) -> list[bytes]:
    """Distinct batch bodies compressed ahead of a timed run: compressing costs the loader ~5 µs per
    item, CPU that a collector on the same cores would otherwise lose to it."""
    return [batch_body(ikey, f"batch-{number}", number) for number in range(count)]


def run(
    url: str, ikey: str, seconds: float, connections: int, acked_path: str | None, max_batches: int | None,
    bodies: list[bytes] | None = None,
):
    """Send until time runs out or the collector dies; returns (acked batch ids, latencies in s).

    With `bodies` (see `prebuilt`), those are sent in turn and operation ids repeat. Without, every
    batch is made new and its operation id is unique, as the kill -9 test needs to tell batches apart."""
    acked, latencies, lock = [], [], threading.Lock()
    counter = itertools.count()
    deadline = time.monotonic() + seconds
    acked_file = open(acked_path, "a", buffering=1) if acked_path else None

    def batch(number: int) -> tuple[str, bytes]:
        if bodies:
            number %= len(bodies)
            return f"batch-{number}", bodies[number]
        return f"batch-{number}", batch_body(ikey, f"batch-{number}", number)

    def worker():
        with httpx.Client(base_url=url, timeout=30) as client:
            while time.monotonic() < deadline:
                number = next(counter)
                if max_batches is not None and number >= max_batches:
                    return
                operation_id, body = batch(number)
                started = time.perf_counter()
                try:
                    response = client.post("/v2.1/track", content=body, headers={
                        "content-type": "application/x-json-stream", "content-encoding": "gzip"})
                except httpx.TransportError:
                    return  # the collector is gone
                if response.status_code == 503:
                    time.sleep(float(response.headers.get("retry-after", "1")))
                    continue
                response.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - started)
                    acked.append(operation_id)
                    if acked_file:
                        acked_file.write(operation_id + "\n")

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return acked, latencies


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("ikey")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--acked")
    parser.add_argument("--max-batches", type=int)
    args = parser.parse_args()
    acked, _ = run(args.url, args.ikey, args.seconds, args.connections, args.acked, args.max_batches)
    print(len(acked))
