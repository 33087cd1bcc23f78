"""OTLP/HTTP ingestion: POST /v1/traces, /v1/logs, /v1/metrics (protobuf or JSON, gzip allowed).

The service is named by its instrumentation key in `x-instrumentation-key` (settable with
OTEL_EXPORTER_OTLP_HEADERS). OTLP is converted to the envelopes Azure Monitor's exporter would send
and then takes the same path as App Insights ingestion, so a span looks the same whichever SDK sent it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from collector.api.responses import JSONResponse
from collector.api.track import overloaded, read_raw_body
from collector.ingest import otlp
from collector.ingest.body import BodyError
from collector.store.writer import Overloaded

router = APIRouter(tags=["ingestion"])


def _error(status_code: int, message: str) -> JSONResponse:
    # OTLP/HTTP carries errors as a google.rpc.Status; its JSON form is the readable one.
    return JSONResponse({"code": 3, "message": message}, status_code=status_code)


async def _export(signal: str, request: Request) -> Response:
    ikey = request.headers.get("x-instrumentation-key", "").strip()
    if not ikey:
        return _error(401, "missing header x-instrumentation-key: set OTEL_EXPORTER_OTLP_HEADERS=x-instrumentation-key=<key>")
    service = request.app.state.registry.by_instrumentation_key(ikey)
    if service is None:
        return _error(401, "invalid instrumentation key")
    content_type = request.headers.get("content-type", "application/x-protobuf").split(";")[0].strip().lower()
    try:
        body = await read_raw_body(request)
        result = await request.app.state.pipeline.ingest_otlp(
            signal, body, request.headers.get("content-encoding"), content_type, service.instrumentation_key
        )
    except (BodyError, otlp.OtlpDecodeError) as error:
        return _error(error.status_code, str(error))
    except Overloaded as error:
        return overloaded(str(error))
    if result.errors and not result.accepted:
        return _error(400, "; ".join(e["message"] for e in result.errors[:5]))
    if content_type == "application/json":
        return JSONResponse({"partialSuccess": _partial(signal, result)} if result.errors else {})
    return Response(content=_partial_protobuf(signal, result), media_type="application/x-protobuf")


_REJECTED_FIELD = {"traces": "rejectedSpans", "logs": "rejectedLogRecords", "metrics": "rejectedDataPoints"}


def _partial(signal: str, result) -> dict:
    """OTLP's partial success: how many were rejected (counted in envelopes: a span's events
    are envelopes of their own) and why, the first reason standing for all."""
    return {_REJECTED_FIELD[signal]: len(result.errors), "errorMessage": result.errors[0]["message"]}


def _partial_protobuf(signal: str, result) -> bytes:
    if not result.errors:
        return b""
    return otlp.export_response(signal, len(result.errors), result.errors[0]["message"]).SerializeToString()


@router.post("/v1/traces")
async def export_traces(request: Request) -> Response:
    return await _export("traces", request)


@router.post("/v1/logs")
async def export_logs(request: Request) -> Response:
    return await _export("logs", request)


@router.post("/v1/metrics")
async def export_metrics(request: Request) -> Response:
    return await _export("metrics", request)
