"""N collector processes on one ClickHouse store (the stand-in), and a real SDK sending to each, for the
scale-out tests and the bench."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter
from collector_process import CollectorProcess, exports_under
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind

FAST_LEASES = {
    # a lease lasts 3 s and is confirmed 0.3 s after a claim (the stand-in acknowledges inserts at once)
    "INSIGHTS_LEASE_TTL_S": "3",
    "INSIGHTS_LEASE_SETTLE_S": "0.3",
    # export reads rows older than 1 s: inserts into the stand-in finish in milliseconds (a real
    # deployment keeps writer.HORIZON_LAG_S, above the insert timeout)
    "INSIGHTS_EXPORT_HORIZON_S": "1",
}


START_TIMEOUT_S = 120
"""Two collectors starting at once on two shared cores (their ingestion and KQL workers included)."""


def store_env(server, url: str) -> dict:
    return {"INSIGHTS_STORE": url, "INSIGHTS_STORE_PASSWORD": server.password}


def migrate(server, url: str) -> None:
    """`insights store migrate`, as an operator runs it before starting collectors."""
    subprocess.run([sys.executable, "-m", "insights", "store", "migrate"], check=True, capture_output=True,
                   env={**os.environ, **store_env(server, url)}, timeout=120)


def start_collectors(server, url: str, root: Path, count: int, extra_env: dict | None = None) -> list[CollectorProcess]:
    """`count` collectors on the store at `url`, each with its own data dir and collector id."""
    collectors = []
    for index in range(count):
        env = {**exports_under(root), **store_env(server, url), **FAST_LEASES,
               "INSIGHTS_COLLECTOR_ID": str(index + 1), **(extra_env or {})}
        (root / f"collector-{index}").mkdir(parents=True, exist_ok=True)
        collectors.append(CollectorProcess(root / f"collector-{index}" / "data", env=env))
    failures: list[Exception] = []

    def start(collector: CollectorProcess) -> None:
        try:
            collector.start(timeout=START_TIMEOUT_S)
        except Exception as error:  # noqa: BLE001 - reported below, with the collector's log
            failures.append(error)

    threads = [threading.Thread(target=start, args=(collector,)) for collector in collectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        for collector in collectors:
            collector.stop()
        raise RuntimeError(f"collectors did not start: {failures}")
    return collectors


@contextmanager
def collector_pair(server, name: str, root: Path, extra_env: dict | None = None) -> Iterator[list[CollectorProcess]]:
    """Two collectors on a database of their own (named after `name`), migrated as an operator does
    before starting them, with their data dirs under `root`; both stopped when the block ends. The
    scale-out tests' module fixture: `with collector_pair(...) as pair: yield pair`."""
    url = server.fresh_url(name)
    migrate(server, url)
    pair = start_collectors(server, url, root, 2, extra_env)
    try:
        yield pair
    finally:
        for collector in pair:
            collector.stop()


def connection_string(collector: CollectorProcess, service: dict) -> str:
    """The service's connection string pointing at this collector (the API's names the one that answered)."""
    return f"InstrumentationKey={service['instrumentation_key']};IngestionEndpoint={collector.url}/"


class _Keep(SpanProcessor):
    def __init__(self) -> None:
        self.ended: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


class Sender:
    """azure-monitor-opentelemetry-exporter, unmodified, sending request spans to one collector batch by
    batch; it records which spans the collector acknowledged (the exporter's SUCCESS) and which it sent."""

    def __init__(self, connection_string: str, name: str) -> None:
        provider = TracerProvider()
        self.exporter = AzureMonitorTraceExporter(connection_string=connection_string, disable_offline_storage=True,
                                                  tracer_provider=provider)
        self._kept = _Keep()
        provider.add_span_processor(self._kept)
        self.tracer = provider.get_tracer(name)
        self.name = name
        self.sent: set[str] = set()
        self.acknowledged: set[str] = set()

    def send_batch(self, size: int) -> bool:
        """`size` request spans in one export call; whether the collector acknowledged them."""
        for index in range(size):
            with self.tracer.start_as_current_span("POST /score", kind=SpanKind.SERVER,
                                                   attributes={"sender": self.name, "index": index}):
                pass
        spans, self._kept.ended = self._kept.ended, []
        ids = {format(span.context.span_id, "016x") for span in spans}
        self.sent |= ids
        ok = self.exporter.export(spans) == SpanExportResult.SUCCESS
        if ok:
            self.acknowledged |= ids
        return ok
