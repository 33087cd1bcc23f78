"""Sending what waits in a spool: transports that speak to the collector, and the shipper loop.

A transport turns a list of lines into one POST and says what became of them (an Outcome): sent,
rejected for good (the collector said so per item, with a 4xx), or to retry. The shipper takes the
oldest segments, posts them, removes them only once the collector has acknowledged them (it answers
200 only after committing), and backs off while the collector is away; what it holds stays on disk,
so a restart of either side loses nothing. Items the collector rejects as invalid are counted and
reported, never retried forever.

We send with this small sender rather than the Azure Monitor exporter: the exporter works on OTel
spans and log records (it would stringify the parsed `Contents` object that makes printed JSON
searchable), keeps its own retry store in $TMPDIR with 60 s leases, adds _OTELRESOURCE_ and SDK-stats
items and a control-plane call to turn off, and runs in the scoring process, where its export threads
caused azmlinfsrv's p99 spikes.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from scoring.spool import Segment, Spool

log = logging.getLogger(__name__)

RETRYABLE_ITEM_CODES = {401, 403, 408, 429, 500, 502, 503, 504}
MAX_BATCH_BYTES = 4 * 2**20
USER_AGENT = "insights-scoring/0.1.0"


def tls_verify(environ=os.environ) -> ssl.SSLContext | bool:
    """What the wrapper's clients verify an https collector against: the system's CAs, or
    SSL_CERT_FILE / SSL_CERT_DIR when set (a collector with a self-signed certificate). The clients
    ignore the rest of the environment (proxies), so this is read here."""
    cafile, capath = environ.get("SSL_CERT_FILE") or None, environ.get("SSL_CERT_DIR") or None
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    return True


@dataclass
class Outcome:
    sent: int = 0
    rejected: int = 0
    retry_lines: list[bytes] = field(default_factory=list)
    retry_all: bool = False
    too_large: bool = False
    message: str | None = None


class HttpTransport:
    """One keep-alive connection to the collector; subclasses say where and how to read answers."""

    path = ""

    def __init__(self, endpoint: str, ikey: str, timeout: float = 10.0):
        self.url = endpoint.rstrip("/") + self.path
        self.ikey = ikey
        self._client = httpx.Client(timeout=timeout, headers={"user-agent": USER_AGENT}, trust_env=False, verify=tls_verify())

    def post(self, lines: list[bytes]) -> Outcome:
        body = b"\n".join(lines) + b"\n"
        try:
            response = self._client.post(self.url, content=body, headers=self.headers())
        except httpx.HTTPError as error:
            return Outcome(retry_all=True, message=f"collector unreachable at {self.url}: {error}")
        if response.status_code == 413:
            return Outcome(too_large=True, message="the collector refused the batch as too large")
        return self.outcome(response, lines)

    def headers(self) -> dict:
        return {"content-type": "application/x-json-stream"}

    def outcome(self, response: httpx.Response, lines: list[bytes]) -> Outcome:
        raise NotImplementedError

    def close(self) -> None:
        self._client.close()


class TrackTransport(HttpTransport):
    """App Insights ingestion, answered with itemsReceived/itemsAccepted/errors."""

    path = "/v2.1/track"

    def outcome(self, response: httpx.Response, lines: list[bytes]) -> Outcome:
        status = response.status_code
        if status == 200:
            return Outcome(sent=len(lines))
        if status in (206, 400):
            errors = _track_errors(response)
            if errors is not None:
                return _partial(errors, lines, status)
        return Outcome(retry_all=True, message=f"collector answered {status}: {response.text[:200]}")


def _track_errors(response: httpx.Response) -> list[dict] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    return errors if isinstance(errors, list) else None


def _partial(errors: list[dict], lines: list[bytes], status: int) -> Outcome:
    outcome = Outcome()
    failed = {}
    for error in errors:
        index = error.get("index") if isinstance(error, dict) else None
        if isinstance(index, int) and 0 <= index < len(lines):
            failed[index] = error
    if not failed and status == 400:  # the body as a whole was refused
        return Outcome(rejected=len(lines), message=f"collector refused the batch: {errors[:1]}")
    for index, line in enumerate(lines):
        error = failed.get(index)
        if error is None:
            outcome.sent += 1
        elif error.get("statusCode") in RETRYABLE_ITEM_CODES:
            outcome.retry_lines.append(line)
        else:
            outcome.rejected += 1
            outcome.message = f"collector rejected an item: {error.get('message')}"
    return outcome


class ConsoleTransport(HttpTransport):
    """Console lines to the collector's POST /api/logs, naming the service by its instrumentation
    key; with `api_key` (the service's API key or the admin key) the collector keeps them as
    verified lines, which senders with the instrumentation key alone cannot push out."""

    path = "/api/logs"

    def __init__(self, endpoint: str, ikey: str, timeout: float = 10.0, api_key: str | None = None):
        super().__init__(endpoint, ikey, timeout)
        self.api_key = api_key

    def headers(self) -> dict:
        headers = {"content-type": "application/x-ndjson", "x-instrumentation-key": self.ikey}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    def outcome(self, response: httpx.Response, lines: list[bytes]) -> Outcome:
        status = response.status_code
        if status in (401, 403) and self.api_key:  # the key is refused: keep sending, unverified
            self.api_key = None
            return Outcome(retry_all=True, message=f"the collector refused the API key ({status}); "
                           "console lines go on with the instrumentation key alone")
        if status == 200:
            return Outcome(sent=len(lines))
        if status in (400, 401, 404, 422):
            return Outcome(rejected=len(lines), message=f"collector refused console lines ({status}): {response.text[:200]}")
        return Outcome(retry_all=True, message=f"collector answered {status}")


class Shipper:
    """Drains one spool through one transport, in its own thread."""

    def __init__(self, name: str, spool: Spool, transport, max_bytes: int, stats_path: Path | None = None,
                 poll_interval: float = 0.1, max_backoff: float = 5.0):
        self.name = name
        self.spool = spool
        self.transport = transport
        self.max_bytes = max_bytes
        self.stats_path = stats_path
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.counters = {"sent": 0, "rejected": 0, "dropped_spool_full": 0, "retries": 0}
        self.last_error: str | None = None
        self._backoff = 0.0
        self._stop = threading.Event()
        self._deadline: float | None = None
        self._stats_written = 0.0
        self._thread = threading.Thread(target=self._run, name=f"ship-{name}", daemon=True)

    def start(self) -> Shipper:
        self._thread.start()
        return self

    def stop(self, timeout: float) -> None:
        """Keep sending for at most `timeout` seconds, then leave the rest on disk."""
        self._deadline = time.monotonic() + timeout
        self._stop.set()
        self._thread.join(timeout + 11)
        self.transport.close()
        self._write_stats(force=True)

    def _run(self) -> None:
        while True:
            if self._stop.is_set() and (time.monotonic() >= self._deadline or not self.spool.segments()):
                return
            progressed = self.ship_once()
            self._write_stats()
            if self._backoff:
                self._sleep(self._backoff)
            elif not progressed:
                self._sleep(self.poll_interval)

    def _sleep(self, seconds: float) -> None:
        if self._stop.is_set():
            seconds = min(seconds, max(0.0, self._deadline - time.monotonic()), 0.2)
            time.sleep(seconds)
        else:
            self._stop.wait(seconds)

    def ship_once(self) -> bool:
        """Send the oldest segments once; whether there was anything to send."""
        dropped = self.spool.enforce(self.max_bytes)
        if dropped:
            self.counters["dropped_spool_full"] += dropped
            log.warning("%s spool over its bound of %d bytes: dropped the %d oldest items", self.name, self.max_bytes, dropped)
        batch = _take(self.spool.segments(), MAX_BATCH_BYTES)
        if not batch:
            return False
        lines = [line for segment in batch for line in self.spool.read(segment)]
        outcome = self._post(lines)
        if outcome.retry_all:
            self._failed(outcome.message)
            return True
        self._settle(batch, outcome)
        return True

    def _post(self, lines: list[bytes]) -> Outcome:
        outcome = self.transport.post(lines)
        if not outcome.too_large:
            return outcome
        if len(lines) == 1:
            return Outcome(rejected=1, message="an item is larger than the collector accepts")
        half = len(lines) // 2
        first, second = self._post(lines[:half]), self._post(lines[half:])
        if first.retry_all or second.retry_all:
            return Outcome(retry_all=True, message=first.message or second.message)
        return Outcome(sent=first.sent + second.sent, rejected=first.rejected + second.rejected,
                       retry_lines=first.retry_lines + second.retry_lines, message=first.message or second.message)

    def _failed(self, message: str | None) -> None:
        if message != self.last_error:
            log.warning("%s: %s; keeping items on disk and retrying", self.name, message)
        self.last_error = message
        self.counters["retries"] += 1
        self._backoff = min(self.max_backoff, max(0.25, self._backoff * 2))

    def _settle(self, batch: list[Segment], outcome: Outcome) -> None:
        if outcome.retry_lines:
            self.spool.write(outcome.retry_lines)
            self._backoff = min(self.max_backoff, max(0.25, self._backoff * 2))
        else:
            self._backoff = 0.0
        for segment in batch:
            self.spool.remove(segment)
        self.counters["sent"] += outcome.sent
        self.counters["rejected"] += outcome.rejected
        if outcome.rejected:
            log.warning("%s: %d items rejected by the collector: %s", self.name, outcome.rejected, outcome.message)
        if self.last_error and not outcome.retry_lines:
            log.warning("%s: collector reachable again", self.name)
            self.last_error = None

    def _write_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.stats_path is None or (not force and now - self._stats_written < 1.0):
            return
        self._stats_written = now
        items, size = self.spool.totals()
        stats = {**self.counters, "spool_items": items, "spool_bytes": size, "last_error": self.last_error}
        temporary = self.stats_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(stats))
        os.replace(temporary, self.stats_path)


def _take(segments: list[Segment], max_bytes: int) -> list[Segment]:
    batch, size = [], 0
    for segment in segments:
        if batch and size + segment.size > max_bytes:
            break
        batch.append(segment)
        size += segment.size
    return batch


def read_stats(path: Path) -> dict:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
