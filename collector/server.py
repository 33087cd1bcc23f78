"""The collector's ASGI app: ingestion, services, queries, health.

`create_app` wires one Store (DuckDB file + single writer), the service registry and the ingestion
pipeline into app.state, where routers read them, and starts the extensions it is given (see
extensions.py): the core knows no feature built on it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request

from collector import admin_key, allocator
from collector.api import dashboard_tokens, logs, modeldata, models, otlp, query, services, set_aside, track, wrappers
from collector.api.limits import RequestLimits
from collector.api.responses import JSONResponse
from collector.extensions import Core, Extension
from collector.ingest.pipeline import Pipeline
from collector.kql import start_compilers
from collector.settings import CollectorSettings
from collector.store.database import Store
from collector.store.services import Registry, ServiceError
from collector.store.set_aside import item_count
from collector.store.writer import Overloaded

log = logging.getLogger(__name__)


class CollapseSlashes:
    """ASGI middleware: both Azure SDKs POST to '//v2.1/track' (their endpoint ends in '/') and
    silently drop data on the 404 a router gives that path, so leading slashes are collapsed first."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("//"):
            scope = dict(scope)
            scope["path"] = "/" + scope["path"].lstrip("/")
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


def create_app(settings: CollectorSettings, extensions: Sequence[Extension] = (), on_fatal=None) -> FastAPI:
    """The collector app, with `extensions` (continuous export, ...) plugged in; `on_fatal(error)`
    is called (from the writer thread) if the store fails for good, so that whoever runs the app
    can restart it on a fresh database instance."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = _open_store(settings)
        if on_fatal is not None:
            store.writer.on_fatal = on_fatal
        registry = _open_registry(store)
        _warn_of_set_aside(store)
        app.state.settings = settings
        app.state.store = store
        app.state.registry = registry
        app.state.admin_key, _ = admin_key.load_or_create(settings.data_dir, settings.admin_key)
        app.state.public_url = settings.public_url
        app.state.query_timeout_s = settings.query_timeout_s
        start_compilers()  # KQL's compile workers warm up while the rest starts (collector/kql/sandbox.py)
        core = Core(settings, store, registry)
        app.state.pipeline = Pipeline(registry, store.writer, settings.data_dir / "blob", settings.ingest_workers,
                                      observers=core.ingest_observers)
        app.state.extensions = {}
        for extension in extensions:
            extension.start(core)
            app.state.extensions[extension.name] = extension
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            for extension in reversed(list(app.state.extensions.values())):
                extension.stop()  # before the store: an extension may commit through the writer
            app.state.pipeline.close()
            store.close()

    app = FastAPI(
        title="Endpoint Insights collector",
        description="App Insights and OTLP ingestion, KQL queries, services.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
        docs_url=None,
        redoc_url=None,
    )
    _serve_docs_offline(app)
    app.state.ready = False
    app.state.shutting_down = lambda: False
    """Long-lived responses (the live stream) end when this turns True: the server waits for every
    open response before it stops. `serve` points it at the server's own flag."""
    routers = [track.router, otlp.router, services.router, query.router, logs.router, wrappers.router, dashboard_tokens.router]
    routers.append(models.router)
    routers.append(modeldata.router)
    routers.append(set_aside.router)
    for router in routers + [router for extension in extensions for router in extension.routers]:
        app.include_router(router)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(Overloaded, _overloaded)

    @app.get("/healthz", tags=["health"])
    def healthz(request: Request):
        if not request.app.state.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return {"status": "ok"}

    app.add_middleware(track.DirectTrack)  # added first, so it runs last: inside the limits
    app.add_middleware(RequestLimits, body_timeout_s=settings.body_timeout_s)
    app.add_middleware(CollapseSlashes)  # added last, so it runs first: the limits see the collapsed path
    return app


def _open_store(settings: CollectorSettings) -> Store:
    """The embedded DuckDB store, or the ClickHouse one when `settings.store` names a server."""
    if settings.store is None:
        return Store(settings.data_dir, memory_limit=settings.memory_limit,
                     max_pending_rows=settings.max_pending_rows,
                     checkpoint_wal_bytes=settings.checkpoint_wal_bytes, keep_lookup_index=settings.lookup_index,
                     ingest_spool=settings.spools)
    # the DuckDB path never loads the client; shared.py keeps what N collectors share in ClickHouse
    from collector.store.clickhouse.shared import SharedClickHouseStore

    return SharedClickHouseStore.open(settings.data_dir, settings.store, memory_limit=settings.memory_limit,
                                max_pending_rows=settings.max_pending_rows,
                                checkpoint_wal_bytes=settings.checkpoint_wal_bytes,
                                collector_id=settings.collector_id)


def _warn_of_set_aside(store: Store) -> None:
    """Acknowledged items the store refused stay out of it until replayed: say so at every start."""
    batches = store.set_aside.batches()
    if batches:
        log.warning("%d acknowledged items (%d batches) are set aside, refused by the store: "
                    "`insights store set-aside list` says why, `insights store set-aside replay` commits them",
                    item_count(batches), len(batches))


def _open_registry(store: Store) -> Registry:
    """The services registry: in the store's memory on DuckDB, read from ClickHouse (shared by every
    collector) on ClickHouse."""
    registry = getattr(store, "registry", None)
    if registry is not None:
        return registry()
    with store.reader() as cursor:
        return Registry(cursor, store.writer)


DOCS_ASSETS = "/docs-assets"


def _serve_docs_offline(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc (ReDoc), their scripts, stylesheet and icon served from the installed
    fastapi-offline package: FastAPI's defaults load them from a CDN, a blank page offline."""
    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI",
                                   swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
                                   oauth2_redirect_url=f"{root}{redirect_url}")

    @app.get(redirect_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png", with_google_fonts=False)


async def _service_error(_: Request, error: ServiceError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=error.status_code)


async def _overloaded(_: Request, error: Overloaded) -> JSONResponse:
    return JSONResponse({"detail": f"{error}; retry later"}, status_code=503, headers={"Retry-After": "1"})


def serve(settings: CollectorSettings, extensions: Sequence[Extension] = (), host: str = "127.0.0.1",
          port: int = 8080) -> None:
    """Run the collector until stopped. If the store fails for good (DuckDB invalidates a database
    instance after a fatal error, e.g. a checkpoint that found no memory), the server stops and
    starts again on a fresh instance: acknowledged data is safe in the WAL, and clients resend what
    was refused meanwhile (503, then connection refused for a second or two).

    Connections are bounded as collector/connections.py describes (header deadline and size, a cap
    on open connections); with `settings.tls_cert` and `tls_key` it serves HTTPS only. Without a
    memory limit the process's C allocator keeps what it frees (collector/allocator.py: the writer's
    groups re-faulted it); under one, memory freed goes back (a 300 MB collector's peak under load:
    500 MB against 536-539, bench/README.md)."""
    if settings.memory_limit is None:
        allocator.keep_freed_memory()
    while True:
        failure = _serve_until_stopped(settings, extensions, host, port)
        if failure is None:
            return
        log.error("restarting the collector after a fatal store error: %s", failure)


def _serve_until_stopped(settings: CollectorSettings, extensions: Sequence[Extension], host: str,
                         port: int) -> Exception | None:
    """One life of the server; the fatal store error that ended it, None if it was asked to stop."""
    import uvicorn

    failures: list[Exception] = []
    server: uvicorn.Server | None = None

    def restart(error: Exception) -> None:
        failures.append(error)
        server.should_exit = True

    from collector import connections

    connections.raise_descriptor_limit()
    protocol = connections.guarded_protocol(settings.header_timeout_s,
                                            settings.max_connections or connections.default_max_connections())
    tls = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)} if settings.tls else {}
    app = create_app(settings, extensions, on_fatal=restart)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           http=protocol, timeout_keep_alive=5, **tls))
    app.state.shutting_down = lambda: server.should_exit
    server.run()
    return failures[0] if failures else None
