"""Size and time limits on every request body, applied before any route runs.

A route that authenticates, parses JSON or reads a body sees only what passed here, so no caller,
with a key or without, makes the collector hold more than the route's limit or wait longer than
`body_timeout_s` for a body:

- a declared Content-Length over the route's limit is a 413 at once, nothing read;
- a body sent without one (chunked) is counted as it arrives and refused at the first byte past
  the limit (413; the connection is closed rather than drained);
- a body that has not arrived whole within `body_timeout_s` of the request is a 408.

Limits go by route: ingestion takes bodies up to the ingestion limit (collector/ingest/body.py,
which its routes apply themselves; here a backstop), console lines theirs, queries 1 MiB, and every
other route (JSON settings, heartbeats, service
management) DEFAULT_BODY_BYTES. A refused request answers `{"detail": ...}` naming the limit, the
method and the path.
"""

from __future__ import annotations

import asyncio
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.api.logs import MAX_BODY_BYTES as CONSOLE_BODY_BYTES
from collector.api.responses import JSONResponse
from collector.ingest.body import MAX_BODY_BYTES as INGEST_BODY_BYTES
from collector.store.models import MAX_MODEL_BYTES

DEFAULT_BODY_BYTES = 64 * 2**10
QUERY_BODY_BYTES = 2**20
REFERENCE_BACKSTOP_BYTES = 2**40
"""Reference uploads for model monitors stream to disk under their own configurable limit
(monitoring/references.py, default 1 GB), which they check as they read."""

ROUTE_BODY_LIMITS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    ("POST", re.compile(r"/v2(\.1)?/track/?"), 2 * INGEST_BODY_BYTES),
    ("POST", re.compile(r"/v1/(traces|logs|metrics)/?"), 2 * INGEST_BODY_BYTES),
    ("POST", re.compile(r"/api/services/[^/]+/import/?"), 2 * INGEST_BODY_BYTES),
    ("POST", re.compile(r"/api/logs/?"), 2 * CONSOLE_BODY_BYTES),
    ("POST", re.compile(r"/v1/.+/query/?|/v1/\$batch/?|/api/query/explain/?"), QUERY_BODY_BYTES),
    ("POST", re.compile(r"/api/models/[^/]+/?"), 2 * MAX_MODEL_BYTES),
    ("POST", re.compile(r"/api/modeldata/?"), 2 * INGEST_BODY_BYTES),
    ("PUT", re.compile(r"/api/services/[^/]+/monitor-references/[^/]+/?"), REFERENCE_BACKSTOP_BYTES),
)
"""(method, path, largest body in bytes) of the routes that take more than DEFAULT_BODY_BYTES.
Ingestion, import and console lines check their own limit before and as they read, and answer in
their protocol's shape (a track response, an OTLP status): here they get twice it, so that their
own answer comes first and this one is only the backstop."""


def body_limit(method: str, path: str) -> int:
    for route_method, pattern, limit in ROUTE_BODY_LIMITS:
        if method == route_method and pattern.fullmatch(path):
            return limit
    return DEFAULT_BODY_BYTES


class BodyRefused(HTTPException):
    """Raised from `receive` when a body outgrows its limit or its time. An HTTPException, so
    FastAPI's own body reading passes it on and the app answers it as any other."""

    def __init__(self, status_code: int, detail: str):
        super().__init__(status_code, detail, headers={"connection": "close"})


class RequestLimits:
    """ASGI middleware: the limits above, on every HTTP request."""

    def __init__(self, app: ASGIApp, body_timeout_s: float):
        self.app = app
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = f"{scope['method']} {scope['path']}"
        limit = body_limit(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, 413, f"body of {declared} bytes exceeds the limit of {limit} bytes for {where}")
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        received = 0
        whole = False

        async def limited_receive() -> Message:
            nonlocal received, whole
            if whole:  # the body is in: what follows is waiting for a disconnect, unbounded
                return await receive()
            try:  # a timer on this task, not wait_for's task per message: this runs for every chunk of every body
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyRefused(408, f"the body of {where} did not arrive within {self.body_timeout_s:g} s") from None
            if message["type"] != "http.request":
                whole = True
                return message
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyRefused(413, f"body exceeds the limit of {limit} bytes for {where}")
            whole = not message.get("more_body", False)
            return message

        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyRefused as refused:  # raised where no exception handler answers it
            if started:
                raise
            await _refuse(scope, send, refused.status_code, refused.detail)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
    response = JSONResponse({"detail": detail}, status_code=status, headers={"connection": "close"})
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
