"""Connections the collector accepts: bounded in number, in header size and in the time their
headers take.

uvicorn has no header-read timeout: it arms its keep-alive timer only after a response, and any
byte received disarms it, so a client that opens a connection and sends a header line now and then
holds a socket (and a file descriptor) for ever; 20,000 of them left no descriptor for anyone else.
Its `limit_concurrency` counts those half-open connections too, so it would turn such a flood into
503s for every real client. This protocol (uvicorn's httptools one, which `uvicorn[standard]`
brings) adds what is missing:

- a header deadline: a connection must complete a request's line and headers within
  `header_timeout_s` of opening, or of its previous response; otherwise it is closed (408). A
  request being processed is not timed here; its body is (api/limits.py);
- a header size: more than MAX_HEADER_BYTES before the headers end is a 431 and a close;
- a connection cap: with `max_connections` open, a new connection first closes the oldest one
  that has no request in progress (idle or still sending headers); if every one is busy, the new
  one is closed instead. A flood of half-open connections thus evicts itself, and a real client
  still gets through.

It also sends a response's head and body in one write (HeadWithBody): uvicorn writes each apart,
one send() and one wakeup of the client each.
"""

from __future__ import annotations

import asyncio
import resource
from collections import OrderedDict

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES = 64 * 2**10
CONNECTIONS_PER_DESCRIPTOR = 0.5
"""The share of the process's file descriptors that client connections may hold; the store, the
ingestion workers' pipes and blob files need the rest."""
MAX_DEFAULT_CONNECTIONS = 4096


def raise_descriptor_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def default_max_connections() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, min(MAX_DEFAULT_CONNECTIONS, int(soft * CONNECTIONS_PER_DESCRIPTOR)))


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's `http=` protocol class with the bounds above."""
    registry: OrderedDict[GuardedProtocol, None] = OrderedDict()  # open connections, oldest first

    class GuardedProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        _header_bytes = 0

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(HeadWithBody(transport, self.loop))
            if len(registry) >= max_connections and not _evict_idle(registry):
                self.logger.warning("connection limit (%d) reached with every connection busy: refused one", max_connections)
                self._close(503, "too many connections; retry later", tell=True)
                return
            registry[self] = None
            self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            registry.pop(self, None)
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            reading_headers = self._header_timer is not None
            super().data_received(data)
            if reading_headers and self._header_timer is not None:  # and they are not complete yet
                self._header_bytes += len(data)
                if self._header_bytes > MAX_HEADER_BYTES:
                    self._close(431, f"request line and headers exceed {MAX_HEADER_BYTES} bytes")

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._await_headers()

        @property
        def idle(self) -> bool:
            """No request in progress: waiting for (or reading) the next request's headers."""
            return self._header_timer is not None and (self.cycle is None or self.cycle.response_complete)

        def _await_headers(self) -> None:
            self._disarm()
            self._header_bytes = 0
            self._header_timer = self.loop.call_later(header_timeout_s, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.cycle is None or self.cycle.response_complete:
                self._close(408, f"no complete request headers within {header_timeout_s:g} s")

        def _close(self, status: int, reason: str, tell: bool = False) -> None:
            self._disarm()
            registry.pop(self, None)
            if not self.transport.is_closing():
                if tell or self._header_bytes:  # a client that is talking gets told why
                    _write_error(self.transport, status, reason)
                self.transport.close()

    return GuardedProtocol


class HeadWithBody:
    """A connection's transport that holds a write until the next one, or until the loop's next
    turn, and sends both in one write: uvicorn writes a response's status line and headers, then,
    in the same step of the same task, its body; two send() calls each cost the event loop a
    syscall and a wakeup of the client (28% of its samples under bench/ingest.py's load). A
    response whose body comes later (a stream) has its head sent on the loop's next turn, as
    before in effect. Every write and close of the connection goes through here, so the bytes keep
    their order and a close sends what is held first."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def __getattr__(self, name: str):
        return getattr(self._transport, name)

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = bytes(data)  # a copy only of a mutable buffer, which its writer may reuse
            self._loop.call_soon(self._send_held)
        else:
            held, self._held = self._held, None
            self._transport.write(held + data)

    def writelines(self, data) -> None:
        self.write(b"".join(data))

    def write_eof(self) -> None:
        self._send_held()
        self._transport.write_eof()

    def close(self) -> None:
        self._send_held()
        self._transport.close()

    def _send_held(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            if not self._transport.is_closing():  # the peer is gone: nothing to send to
                self._transport.write(held)


def _evict_idle(registry: OrderedDict) -> bool:
    """Close the oldest connection without a request in progress; False if there is none."""
    for connection in registry:
        if connection.idle:
            connection._close(408, "closed to make room for a new connection")
            return True
    return False


_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


def _write_error(transport: asyncio.Transport, status: int, reason: str) -> None:
    body = reason.encode()
    transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                    b"connection: close\r\n\r\n%s" % (status, _REASONS[status], len(body), body))
