"""The router's side towards one deployment: pooled keep-alive HTTP/1.1 connections to its
`insights score` wrapper, and the count of requests it has in flight.

Hand-rolled on asyncio protocols with httptools (the parser uvicorn uses) rather than an HTTP
client library: a proxied request must add well under a millisecond, and a client library's
per-request machinery alone costs about that.
"""

from __future__ import annotations

import asyncio
from collections import deque

import httptools

MAX_IDLE = 64
"""Idle connections kept per deployment; more are closed when returned."""


class UpstreamClosed(ConnectionError):
    """The wrapper closed the connection before answering."""


class Answer:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body


class Connection(asyncio.Protocol):
    """One connection to a wrapper; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.received = False
        self.closed = False
        self.keep_alive = True

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(UpstreamClosed(f"unreadable answer: {error}"))
            self.close()

    def connection_lost(self, exc) -> None:
        self.closed = True
        self._fail(UpstreamClosed("the wrapper closed the connection"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Answer(self.parser.get_status_code(), self.headers, b"".join(self.body)))

    def send(self, raw: bytes) -> asyncio.Future:
        """Write one request; the future resolves to its Answer."""
        self.headers, self.body, self.received = [], [], False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)  # type: ignore[union-attr]
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


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

    async def acquire(self) -> tuple[Connection, bool]:
        """(a connection, whether it was reused from the pool)."""
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed and not connection.transport.is_closing():  # type: ignore[union-attr]
                return connection, True
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(Connection, self.host, self.port)
        return connection, False

    def release(self, connection: Connection) -> None:
        if connection.closed or not connection.keep_alive or len(self.idle) >= MAX_IDLE:
            connection.close()
        else:
            self.idle.append(connection)

    async def exchange(self, raw: bytes) -> Answer:
        """Send one request and return the answer; a pooled connection the wrapper had closed
        meanwhile (nothing came back) is replaced once, transparently."""
        connection, reused = await self.acquire()
        try:
            try:
                answer = await connection.send(raw)
            except UpstreamClosed:
                if not reused or connection.received:
                    raise
                connection = await self._fresh()
                answer = await connection.send(raw)
        except BaseException:
            connection.close()  # failed, or cancelled (timeout) mid-request: its state is unknown
            raise
        self.release(connection)
        return answer

    async def _fresh(self) -> Connection:
        _, connection = await asyncio.get_running_loop().create_connection(Connection, self.host, self.port)
        return connection

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()
