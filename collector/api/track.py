"""App Insights ingestion: POST /v2/track and /v2.1/track, answered as the real service does."""

from __future__ import annotations

from fastapi import APIRouter, Request

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
