"""The endpoint's scoring URI: checks the key, picks a deployment by weight (or the one named in
`azureml-model-deployment`), mirrors a share to another, and answers with the managed online
endpoints' status codes:

- 401 without a valid key, 404 for another path or an unknown deployment, 413 above 1.5 MB,
- 429 above the rate limit or when the deployment has 2 x max_concurrent x instance_count pending,
- 408 past request_timeout_ms, 424 "model error; original-code=<code>" when the deployment answers
  non-200 or with more than 1.5 MB, 503 when no deployment is healthy, 500 for its own failures.

The routing table is one immutable object swapped whole (`Router.table = ...`): a traffic change
applies to the next request, and requests in flight finish where they started.
"""

from __future__ import annotations

import asyncio
import bisect
import hmac
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import httptools
import orjson

from endpoints.upstream import Answer, Upstream, UpstreamTimeout

log = logging.getLogger("endpoints.router")

MAX_BODY_BYTES = 1_572_864
MIRROR_HEADER = b"x-insights-mirrored"
DEPLOYMENT_HEADER = b"azureml-model-deployment"
_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"host", b"authorization",
        b"proxy-connection", b"upgrade", b"te", b"trailer"}
_REPLACED = _HOP | {MIRROR_HEADER, b"traceparent"}
_REASONS = {200: b"OK", 401: b"Unauthorized", 404: b"Not Found", 408: b"Request Timeout", 413: b"Payload Too Large",
            424: b"Failed Dependency", 429: b"Too Many Requests", 500: b"Internal Server Error",
            503: b"Service Unavailable", 400: b"Bad Request"}


@dataclass(frozen=True)
class Table:
    """Everything a request is routed by, as one snapshot."""

    keys: tuple[bytes, ...] = ()
    upstreams: dict[str, Upstream] = field(default_factory=dict)
    """Every deployment with a running wrapper (the header may name any of them)."""
    weights: tuple[tuple[float, ...], tuple[Upstream, ...]] = ((), ())
    """Cumulative weights and the healthy deployments with a share of the traffic."""
    mirror: tuple[tuple[float, Upstream], ...] = ()
    rate_limit: float = 100.0
    timeout_s: float = 5.0

    def pick(self) -> Upstream | None:
        bounds, chosen = self.weights
        if not chosen:
            return None
        return chosen[bisect.bisect_right(bounds, random.random() * bounds[-1])]


class RateLimit:
    """A token bucket holding one second's worth of requests."""

    def __init__(self) -> None:
        self.tokens = float("inf")  # starts full (capped at the rate by the first take)
        self.stamp = time.monotonic()

    def take(self, rate: float) -> bool:
        now = time.monotonic()
        self.tokens = min(rate, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class Incoming:
    method: bytes
    url: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool
    too_large: bool = False
    trace: bytes = b""
    """The W3C trace id (the client's traceparent's, else a new one): the router's request item and
    the deployment's share it, so the deployment's items are the router's request's children."""
    parent: bytes = b""
    """The client's span id (from its traceparent), if it sent one."""
    span: bytes = b""
    """The router's own span id."""


class Comparison:
    """A mirrored request's two answers; compared (recorded) once both are in."""

    __slots__ = ("primary", "shadow", "body", "answers")

    def __init__(self, primary: str, shadow: str, body: bytes):
        self.primary, self.shadow, self.body = primary, shadow, body
        self.answers: dict[str, tuple[int, bytes]] = {}


class Router:
    """The state shared by every client connection. Requests flow through callbacks, not tasks:
    see upstream.py for why."""

    def __init__(self, recorder=None):
        self.table = Table()
        self.limit = RateLimit()
        self.recorder = recorder

    async def serve(self, host: str, port: int) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: ClientConnection(self), host, port, backlog=2048, reuse_address=True)

    def route(self, request: Incoming, reply: Callable[[bytes], None]) -> None:
        """Answer one request: `reply` gets the raw HTTP answer, now or once the deployment answered."""
        started, wall = time.perf_counter(), time.time()
        _trace(request)

        def answered(status: int, deployment: str, raw: bytes) -> None:
            if self.recorder is not None and status != 404:
                self.recorder.request(wall, time.perf_counter() - started, status, deployment, request)
            reply(raw)

        self._answer(request, answered)

    def _answer(self, request: Incoming, answered: Callable[[int, str, bytes], None]) -> None:
        table = self.table
        chosen = self._choose(table, request)
        if isinstance(chosen, tuple):
            answered(*chosen)
            return
        upstream = chosen
        named = _header(request.headers, DEPLOYMENT_HEADER) is not None
        comparisons = self._mirror(table, upstream, request) if table.mirror and not named else ()
        upstream.pending += 1

        def done(outcome: Answer | Exception) -> None:
            upstream.pending -= 1
            status, raw = _relayed(upstream.name, outcome, request.keep_alive)
            for comparison in comparisons:
                self._compared(comparison, "primary", (status, raw))
            answered(status, upstream.name, raw)

        upstream.exchange(_upstream_request(upstream, request, False), table.timeout_s, done)

    def _choose(self, table: Table, request: Incoming) -> Upstream | tuple[int, str, bytes]:
        """The deployment that serves the request (one weighted draw, or the one it names), or
        (status, deployment, answer) when the request goes no further than the router."""
        path = request.url.split(b"?", 1)[0]
        keep = request.keep_alive
        if path != b"/score":
            return 404, "", _error(404, "No route for " + path.decode("latin-1", "replace"), keep)
        if not _authorized(request.headers, table.keys):
            return 401, "", _error(401, "Unauthorized: send Authorization: Bearer <endpoint key>", keep)
        if request.too_large:
            return 413, "", _error(413, f"request body above {MAX_BODY_BYTES} bytes", False)
        if not self.limit.take(table.rate_limit):
            return 429, "", _error(429, f"above the endpoint's rate limit of {table.rate_limit:g} requests/s", keep)
        named = _header(request.headers, DEPLOYMENT_HEADER)
        if named is not None:
            upstream = table.upstreams.get(named.decode("latin-1"))
            if upstream is None:
                return 404, "", _error(404, f"no running deployment named {named.decode('latin-1', 'replace')!r}", keep)
        else:
            upstream = table.pick()
            if upstream is None:
                return 503, "", _error(503, "no healthy deployment has traffic", keep)
        if upstream.pending >= upstream.capacity:
            return 429, upstream.name, _error(429, f"deployment {upstream.name} has {upstream.pending} requests pending", keep)
        return upstream

    def _mirror(self, table: Table, primary: Upstream, request: Incoming) -> list[Comparison]:
        """Send a copy to each mirror whose share this request falls in; its answer is only
        compared with the primary's, never returned."""
        comparisons = []
        for share, shadow in table.mirror:
            if shadow is primary or random.random() * 100 >= share or shadow.pending >= shadow.capacity:
                continue
            comparison = Comparison(primary.name, shadow.name, request.body)
            comparisons.append(comparison)
            shadow.pending += 1

            def done(outcome: Answer | Exception, shadow: Upstream = shadow, comparison: Comparison = comparison) -> None:
                shadow.pending -= 1
                self._compared(comparison, "shadow", _relayed(shadow.name, outcome, True))

            shadow.exchange(_upstream_request(shadow, request, True), table.timeout_s, done)
        return comparisons

    def _compared(self, comparison: Comparison, side: str, answer: tuple[int, bytes]) -> None:
        comparison.answers[side] = answer
        if len(comparison.answers) == 2 and self.recorder is not None:
            self.recorder.comparison(comparison.primary, comparison.shadow, comparison.body,
                                     comparison.answers["primary"], comparison.answers["shadow"])

    def close(self) -> None:
        for upstream in self.table.upstreams.values():
            upstream.close()


class ClientConnection(asyncio.Protocol):
    """One client's connection: requests are answered in the order they came."""

    def __init__(self, router: Router):
        self.router = router
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.queue: deque[Incoming] = deque()
        self.current: Incoming | None = None
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(_error(400, "malformed HTTP request", False), False)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        length = _header(self.headers, b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            self.size = int(length)  # answered 413 at the end; the body is not kept

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= MAX_BODY_BYTES:
            self.body.append(body)

    def on_message_complete(self) -> None:
        too_large = self.size > MAX_BODY_BYTES
        request = Incoming(self.parser.get_method(), self.url, self.headers, b"".join(self.body),
                           self.parser.should_keep_alive() and not too_large, too_large)
        self._reset()
        if self.current is None:
            self._start(request)
        else:
            self.queue.append(request)

    def _start(self, request: Incoming) -> None:
        self.current = request
        try:
            self.router.route(request, self._reply)
        except Exception:  # the router's own failure: a 500, and the connection goes on
            log.exception("routing failed")
            self._reply(_error(500, "the endpoint's router failed; see its log", request.keep_alive))

    def _reply(self, raw: bytes) -> None:
        request, self.current = self.current, None
        self._write(raw, request.keep_alive if request is not None else False)
        if self.queue and self.transport is not None:
            self._start(self.queue.popleft())

    def _write(self, raw: bytes, keep_alive: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(raw)
        if not keep_alive:
            self.transport.close()
            self.transport = None


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _authorized(headers: list[tuple[bytes, bytes]], keys: tuple[bytes, ...]) -> bool:
    presented = _header(headers, b"authorization")
    if presented is None:
        return False
    scheme, _, token = presented.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    token = token.strip()
    matched = False
    for key in keys:  # every key compared, in constant time each
        matched |= hmac.compare_digest(token, key)
    return matched


def _trace(request: Incoming) -> None:
    """Continue the client's trace (a valid traceparent) or start one; a new span for the router."""
    given = _header(request.headers, b"traceparent")
    parts = given.split(b"-") if given is not None else ()
    if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
        request.trace, request.parent = parts[1].lower(), parts[2].lower()
    else:
        request.trace = b"%032x" % random.getrandbits(128)  # ids, not secrets: no system call for them
    request.span = b"%016x" % random.getrandbits(64)


def _upstream_request(upstream: Upstream, request: Incoming, mirrored: bool) -> bytes:
    lines = [request.method + b" " + request.url + b" HTTP/1.1", b"host: " + upstream.host_header,
             b"content-length: " + str(len(request.body)).encode()]
    lines += [name + b": " + value for name, value in request.headers if name not in _REPLACED]
    lines.append(b"traceparent: 00-" + request.trace + b"-" + request.span + b"-01")
    if mirrored:
        lines.append(MIRROR_HEADER + b": true")
    return b"\r\n".join(lines) + b"\r\n\r\n" + request.body


def _relayed(deployment: str, outcome: Answer | Exception, keep_alive: bool) -> tuple[int, bytes]:
    """The client's answer to what the deployment did."""
    if isinstance(outcome, UpstreamTimeout):
        return 408, _error(408, f"deployment {deployment}: {outcome}", keep_alive, deployment)
    if isinstance(outcome, Exception):
        return 500, _error(500, f"deployment {deployment} could not be reached: {outcome}", keep_alive, deployment)
    if outcome.status != 200:
        extra = [(b"ms-azureml-model-error-statuscode", str(outcome.status).encode()),
                 (b"ms-azureml-model-error-reason", b"model_error")]
        return 424, _error(424, f"model error; original-code={outcome.status}", keep_alive, deployment, extra,
                           detail=outcome.body[:2000].decode("utf-8", "replace"))
    if len(outcome.body) > MAX_BODY_BYTES:
        return 424, _error(424, f"model error; the response is above {MAX_BODY_BYTES} bytes", keep_alive, deployment)
    headers = [(name, value) for name, value in outcome.headers if name not in _HOP]
    headers.append((DEPLOYMENT_HEADER, deployment.encode()))
    return 200, _response(200, headers, outcome.body, keep_alive)


def _error(status: int, message: str, keep_alive: bool, deployment: str = "", extra: list | None = None,
           detail: str | None = None) -> bytes:
    body = {"message": message, **({"detail": detail} if detail else {})}
    headers = [(b"content-type", b"application/json"), *(extra or [])]
    if deployment:
        headers.append((DEPLOYMENT_HEADER, deployment.encode()))
    return _response(status, headers, orjson.dumps(body), keep_alive)


def _response(status: int, headers: list[tuple[bytes, bytes]], body: bytes, keep_alive: bool) -> bytes:
    head = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"Status")), b"content-length: %d" % len(body)]
    head += [name + b": " + value for name, value in headers]
    if not keep_alive:
        head.append(b"connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + body

