"""The collector's ASGI app: ingestion, services, queries, health.

`create_app` wires one Store (DuckDB file + single writer), the service registry and the ingestion
pipeline into app.state; routers read them from there.
"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse

from collector import admin_key
from collector.api import logs, otlp, query, services, track, wrappers
from collector.ingest.pipeline import Pipeline
from collector.store.database import Store
from collector.store.services import Registry, ServiceError
from exporters import api as export_api
from exporters.scheduler import ExportScheduler

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


def create_app(data_dir: Path, public_url: str | None = None) -> FastAPI:
    data_dir = Path(data_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = Store(data_dir)
        with store.reader() as cursor:
            registry = Registry(cursor, store.writer)
        app.state.store = store
        app.state.registry = registry
        app.state.admin_key, _ = admin_key.load_or_create(data_dir)
        app.state.public_url = public_url
        app.state.query_timeout_s = float(os.environ.get("INSIGHTS_QUERY_TIMEOUT_S", "30"))
        app.state.pipeline = Pipeline(registry, store.writer, data_dir / "blob")
        app.state.exporter = ExportScheduler(store, registry, data_dir)
        app.state.exporter.start()
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            app.state.exporter.stop()  # before the store: it commits checkpoints through the writer
            app.state.pipeline.close()
            store.close()

    app = FastAPI(
        title="Endpoint Insights collector",
        description="App Insights and OTLP ingestion, KQL queries, services.",
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
    )
    app.state.ready = False
    for router in (track.router, otlp.router, services.router, query.router, logs.router, wrappers.router, export_api.router):
        app.include_router(router)
    app.add_exception_handler(ServiceError, _service_error)

    @app.get("/healthz", tags=["health"])
    def healthz(request: Request):
        if not request.app.state.ready:
            return ORJSONResponse({"status": "starting"}, status_code=503)
        return {"status": "ok"}

    app.add_middleware(CollapseSlashes)
    return app


async def _service_error(_: Request, error: ServiceError) -> ORJSONResponse:
    return ORJSONResponse({"detail": str(error)}, status_code=error.status_code)


def serve(data_dir: Path, host: str = "127.0.0.1", port: int = 8080, public_url: str | None = None) -> None:
    import uvicorn

    app = create_app(data_dir, public_url)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
