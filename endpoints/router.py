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
import os
import random
import time
from dataclasses import dataclass, field

import httptools
import orjson

from endpoints.upstream import Answer, Upstream, UpstreamClosed

log = logging.getLogger("endpoints.router")

MAX_BODY_BYTES = 1_572_864
MIRROR_HEADER = b"x-insights-mirrored"
DEPLOYMENT_HEADER = b"azureml-model-deployment"
_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"host", b"authorization",
        b"proxy-connection", b"upgrade", b"te", b"trailer"}
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
        self.tokens = 0.0
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


class Router:
    """The state shared by every client connection."""

    def __init__(self, recorder=None):
        self.table = Table()
        self.limit = RateLimit()
        self.recorder = recorder
        self.background: set[asyncio.Task] = set()

    async def serve(self, host: str, port: int) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: ClientConnection(self), host, port, backlog=2048, reuse_address=True)

    async def route(self, request: Incoming) -> bytes:
        """The raw HTTP answer to one request."""
        started, wall = time.perf_counter(), time.time()
        status, deployment, raw = await self._answer(request)
        if self.recorder is not None and status != 404:
            self.recorder.request(wall, time.perf_counter() - started, status, deployment, request)
        return raw

    async def _answer(self, request: Incoming) -> tuple[int, str, bytes]:
        table = self.table
        path = request.url.split(b"?", 1)[0]
        if path != b"/score":
            return 404, "", _error(404, "No route for " + path.decode("latin-1", "replace"), request.keep_alive)
        if not _authorized(request.headers, table.keys):
            return 401, "", _error(401, "Unauthorized: send Authorization: Bearer <endpoint key>", request.keep_alive)
        if request.too_large:
            return 413, "", _error(413, f"request body above {MAX_BODY_BYTES} bytes", False)
        if not self.limit.take(table.rate_limit):
            return 429, "", _error(429, f"above the endpoint's rate limit of {table.rate_limit:g} requests/s", request.keep_alive)
        named = _header(request.headers, DEPLOYMENT_HEADER)
        if named is not None:
            upstream = table.upstreams.get(named.decode("latin-1"))
            if upstream is None:
                return 404, "", _error(404, f"no running deployment named {named.decode('latin-1', 'replace')!r}", request.keep_alive)
        else:
            upstream = table.pick()
            if upstream is None:
                return 503, "", _error(503, "no healthy deployment has traffic", request.keep_alive)
        if upstream.pending >= upstream.capacity:
            return 429, upstream.name, _error(429, f"deployment {upstream.name} has {upstream.pending} requests pending",
                                              request.keep_alive)
        primary = self._forward(upstream, request, table.timeout_s)
        if table.mirror and named is None:
            primary = asyncio.ensure_future(primary)
            self._mirror(table, upstream, request, primary)
        status, raw = await primary
        return status, upstream.name, raw

    async def _forward(self, upstream: Upstream, request: Incoming, timeout_s: float,
                       mirrored: bool = False) -> tuple[int, bytes]:
        upstream.pending += 1
        try:
            answer = await asyncio.wait_for(upstream.exchange(_upstream_request(upstream, request, mirrored)), timeout_s)
        except TimeoutError:
            return 408, _error(408, f"the deployment did not answer within {timeout_s * 1000:.0f} ms", request.keep_alive)
        except (UpstreamClosed, OSError) as error:
            return 500, _error(500, f"the deployment could not be reached: {error}", request.keep_alive)
        finally:
            upstream.pending -= 1
        return _relayed(upstream.name, answer, request.keep_alive)

    def _mirror(self, table: Table, primary: Upstream, request: Incoming, primary_answer: asyncio.Future) -> None:
        for share, shadow in table.mirror:
            if shadow is primary or random.random() * 100 >= share or shadow.pending >= shadow.capacity:
                continue
            task = asyncio.ensure_future(self._shadow(shadow, primary.name, request, table.timeout_s, primary_answer))
            self.background.add(task)
            task.add_done_callback(self.background.discard)

    async def _shadow(self, shadow: Upstream, primary: str, request: Incoming, timeout_s: float,
                      primary_answer: asyncio.Future) -> None:
        """Send a copy; its answer is only compared with the primary's, never returned."""
        mirrored = await self._forward(shadow, request, timeout_s, mirrored=True)
        try:
            answered = await primary_answer
        except Exception:
            return
        if self.recorder is not None:
            self.recorder.comparison(primary, shadow.name, request.body, answered, mirrored)

    def close(self) -> None:
        for upstream in self.table.upstreams.values():
            upstream.close()


class ClientConnection(asyncio.Protocol):
    """One client's connection: requests are answered in the order they came."""

    def __init__(self, router: Router):
        self.router = router
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.queue: list[Incoming] = []
        self.busy = False
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0

    def connection_made(self, transport) -> None:  # type: ignore[override]
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
        request = Incoming(self.parser.get_method(), self.url, self.headers, b"".join(self.body),
                           self.parser.should_keep_alive(), too_large=self.size > MAX_BODY_BYTES)
        if request.too_large:
            request.keep_alive = False
        self._reset()
        self.queue.append(request)
        if not self.busy:
            self.busy = True
            asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while self.queue and self.transport is not None:
            request = self.queue.pop(0)
            try:
                raw = await self.router.route(request)
            except Exception:  # the router's own failure: a 500, and the connection goes on
                log.exception("routing failed")
                raw = _error(500, "the endpoint's router failed; see its log", request.keep_alive)
            self._write(raw, request.keep_alive)
        self.busy = False

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


def _upstream_request(upstream: Upstream, request: Incoming, mirrored: bool) -> bytes:
    lines = [request.method + b" " + request.url + b" HTTP/1.1", b"host: " + upstream.host_header,
             b"content-length: " + str(len(request.body)).encode()]
    lines += [name + b": " + value for name, value in request.headers if name not in _HOP and name != MIRROR_HEADER]
    if mirrored:
        lines.append(MIRROR_HEADER + b": true")
    return b"\r\n".join(lines) + b"\r\n\r\n" + request.body


def _relayed(deployment: str, answer: Answer, keep_alive: bool) -> tuple[int, bytes]:
    if answer.status != 200:
        extra = [(b"ms-azureml-model-error-statuscode", str(answer.status).encode()),
                 (b"ms-azureml-model-error-reason", b"model_error")]
        return 424, _error(424, f"model error; original-code={answer.status}", keep_alive, deployment, extra,
                           detail=answer.body[:2000].decode("utf-8", "replace"))
    if len(answer.body) > MAX_BODY_BYTES:
        return 424, _error(424, f"model error; the response is above {MAX_BODY_BYTES} bytes", keep_alive, deployment)
    headers = [(name, value) for name, value in answer.headers if name not in _HOP]
    headers.append((DEPLOYMENT_HEADER, deployment.encode()))
    return 200, _response(200, headers, answer.body, keep_alive)


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


def pid_label() -> str:
    return f"router-{os.getpid()}"
