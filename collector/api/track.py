"""App Insights ingestion: POST /v2/track and /v2.1/track, answered as the real service does."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.api.responses import JSONResponse
from collector.ingest.body import MAX_BODY_BYTES, BodyError, decompress
from collector.store.writer import Overloaded

router = APIRouter()

RETRY_AFTER_SECONDS = "1"


async def read_body(request: Request) -> bytes:
    """The decompressed body, refusing oversized ones before reading them whole."""
    return decompress(await read_raw_body(request), request.headers.get("content-encoding"))


async def read_raw_body(request: Request) -> bytes:
    """The body as sent (maybe compressed), refusing oversized ones before reading them whole."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyError(f"body of {declared} bytes exceeds the limit of {MAX_BODY_BYTES} bytes", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyError(f"body exceeds the limit of {MAX_BODY_BYTES} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def track_error(status_code: int, message: str, received: int = 0) -> JSONResponse:
    body = {"itemsReceived": received, "itemsAccepted": 0, "errors": [{"index": 0, "statusCode": status_code, "message": message}]}
    return JSONResponse(body, status_code=status_code)


def overloaded(message: str) -> JSONResponse:
    response = track_error(503, f"collector is busy ({message}); retry later")
    response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


@router.post("/v2/track", tags=["ingestion"])
@router.post("/v2.1/track", tags=["ingestion"])
async def track(request: Request) -> JSONResponse:
    """Accept a JSON array or newline-delimited envelopes, gzip or plain."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", "application/x-json-stream", "text/plain", "application/x-ndjson", ""):
        return track_error(415, f"unsupported Content-Type {content_type!r}: send application/json or application/x-json-stream")
    pipeline = request.app.state.pipeline
    try:
        body = await read_raw_body(request)
        result = await pipeline.ingest_body(body, request.headers.get("content-encoding"))
    except BodyError as error:
        return track_error(error.status_code, str(error))
    except Overloaded as error:
        return overloaded(str(error))
    return JSONResponse(result.to_json(), status_code=result.status_code)


TRACK_PATHS = frozenset(route.path for route in router.routes)
"""The paths the route above is declared at, which DirectTrack serves directly."""


class DirectTrack:
    """ASGI middleware: a POST to a track path goes straight to `track`, past FastAPI's routing,
    dependency solving, exception middleware and request telemetry, which cost the event loop more
    than the route itself for each batch (bench/README.md, part 22n). The route above stays the
    declared one (OpenAPI, /docs, and the answer to any other method or spelling of the path).

    Nothing the route did is lost: `track` answers its own errors (415, BodyError, Overloaded);
    api/limits.py, outside this, still bounds the body and answers a refused one; anything else
    raised reaches the server's error middleware, as before, for a 500."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in TRACK_PATHS:
            response = await track(Request(scope, receive))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
