"""The router's side towards one deployment: pooled keep-alive HTTP/1.1 connections to its
`insights score` wrapper, and the count of requests it has in flight.

Hand-rolled on asyncio protocols with httptools (the parser uvicorn uses) and plain callbacks rather
than an HTTP client library, tasks or futures: a proxied request must add well under a millisecond
and cost the router little CPU, and a client library's per-request machinery alone costs about that.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import httptools

MAX_IDLE = 64
"""Idle connections kept per deployment; more are closed when returned."""


class UpstreamClosed(ConnectionError):
    """The wrapper closed the connection before answering."""


class UpstreamTimeout(TimeoutError):
    """The wrapper did not answer within the endpoint's request timeout."""


class Answer:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body


Done = Callable[["Answer | Exception"], None]


class Connection(asyncio.Protocol):
    """One connection to a wrapper; one request at a time, its outcome handed to a callback."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: Done | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.received = False
        self.closed = False
        self.keep_alive = True

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.fail(UpstreamClosed(f"unreadable answer: {error}"))

    def connection_lost(self, exc) -> None:
        self.closed = True
        self._finish(UpstreamClosed("the wrapper closed the connection"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        self._finish(Answer(self.parser.get_status_code(), self.headers, b"".join(self.body)))

    def send(self, raw: bytes, done: Done) -> None:
        self.headers, self.body, self.received, self.done = [], [], False, done
        self.transport.write(raw)  # type: ignore[union-attr]

    def fail(self, error: Exception) -> None:
        """Give up on the request in hand (the connection cannot be reused)."""
        self.close()
        self._finish(error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _finish(self, outcome: Answer | Exception) -> None:
        done, self.done = self.done, None
        if done is not None:
            done(outcome)


class Upstream:
    """One deployment's wrapper as the router sees it."""

    def __init__(self, name: str, port: int, capacity: int, host: str = "127.0.0.1"):
        self.name = name
        self.host = host
        self.port = port
        self.capacity = capacity
        """Requests in flight beyond which new ones get 429: 2 x max_concurrent x instance_count."""
        self.pending = 0
        self.idle: deque[Connection] = deque()
        self.host_header = f"{host}:{port}".encode()
        self.connecting: set[asyncio.Task] = set()

    def exchange(self, raw: bytes, timeout_s: float, done: Done) -> None:
        """Send one request and call `done` with its Answer or the exception that ended it
        (UpstreamTimeout, UpstreamClosed, OSError). A pooled connection the wrapper had closed
        meanwhile (nothing came back) is replaced once, transparently."""
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed and not connection.transport.is_closing():  # type: ignore[union-attr]
                self._send(connection, raw, timeout_s, done, reused=True)
                return
        self._connect_then_send(raw, timeout_s, done)

    def _send(self, connection: Connection, raw: bytes, timeout_s: float, done: Done, reused: bool) -> None:
        timer = asyncio.get_running_loop().call_later(
            timeout_s, connection.fail, UpstreamTimeout(f"no answer within {timeout_s * 1000:.0f} ms"))

        def finished(outcome: Answer | Exception) -> None:
            timer.cancel()
            if isinstance(outcome, UpstreamClosed) and reused and not connection.received:
                self._connect_then_send(raw, timeout_s, done)
                return
            if isinstance(outcome, Answer):
                self._release(connection)
            else:
                connection.close()
            done(outcome)

        connection.send(raw, finished)

    def _connect_then_send(self, raw: bytes, timeout_s: float, done: Done) -> None:
        async def connect() -> None:
            try:
                _, connection = await asyncio.wait_for(asyncio.get_running_loop().create_connection(
                    Connection, self.host, self.port), timeout_s)
            except (OSError, TimeoutError) as error:
                done(error if isinstance(error, OSError) else UpstreamTimeout("no connection within the timeout"))
                return
            self._send(connection, raw, timeout_s, done, reused=False)

        task = asyncio.ensure_future(connect())
        self.connecting.add(task)
        task.add_done_callback(self.connecting.discard)

    def _release(self, connection: Connection) -> None:
        if connection.closed or not connection.keep_alive or len(self.idle) >= MAX_IDLE:
            connection.close()
        else:
            self.idle.append(connection)

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()
