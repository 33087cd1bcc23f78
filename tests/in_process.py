"""The collector's real ASGI app in the test process: the same create_app, extension and DuckDB file
(in a temp data dir) as `insights up`, reached without a socket.

For tests of what goes over HTTP (answers, status codes, stored rows) that need no real server: an
exception in the app is raised in the test, with its traceback, instead of a 500 and a line in a log
file. What needs a real process stays on CollectorProcess: kill -9, overload, durability, SDKs and
programs that open their own connections (exporters, LogsQueryClient, azmlinfsrv, the CLI, the
browser, the scoring wrapper).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import anyio.from_thread
import httpx
from collector_process import CollectorHelpers

from collector.server import create_app
from collector.settings import CollectorSettings
from exporters import ExportExtension


class AppTransport(httpx.BaseTransport):
    """A synchronous transport onto the app: each request runs through httpx's own ASGITransport on
    the app's event loop (a blocking portal's thread), the loop its lifespan started on."""

    def __init__(self, app, portal: anyio.from_thread.BlockingPortal):
        self._asgi = httpx.ASGITransport(app, raise_app_exceptions=True)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._portal.call(self._send, request)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self._asgi.handle_async_request(request)
        raw = b"".join([chunk async for chunk in response.stream])  # as sent: the client decodes
        return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(raw),
                              extensions=response.extensions)


class InProcessCollector(CollectorHelpers):
    """The app with its lifespan running (store, registry, ingestion pool, export scheduler) from
    start() to stop()."""

    url = "http://testserver"
    """Any host will do (no socket): the base of every request, and of the connection strings the
    app hands out."""

    def __init__(self, data_dir: Path, admin_key: str = "test-admin-key", export_roots: tuple[Path, ...] = (),
                 export_allow_http: bool = False):
        self.data_dir = Path(data_dir)
        self.admin_key = admin_key
        self.export_policy = {"export_roots": tuple(export_roots), "export_allow_http": export_allow_http}
        self.app = None
        self._stack = ExitStack()
        self._transport: AppTransport | None = None

    def start(self) -> InProcessCollector:
        # One ingestion worker: the large-body path is exercised, at half the start-up of one per CPU.
        settings = CollectorSettings(data_dir=self.data_dir, admin_key=self.admin_key, ingest_workers=1, **self.export_policy)
        self.app = create_app(settings, [ExportExtension()])
        with self._stack as stack:  # closed here only if the startup fails
            portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
            # The lifespan Starlette's router runs on `lifespan.startup`; here its errors raise in start().
            stack.enter_context(portal.wrap_async_context_manager(self.app.router.lifespan_context(self.app)))
            self._stack = stack.pop_all()
        self._transport = AppTransport(self.app, portal)
        return self

    def stop(self) -> None:
        self._close_http()
        self._stack.close()  # the lifespan's shutdown (scheduler, ingestion pool, store), then the loop

    def client(self, headers: dict | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, transport=self._transport)
