"""Console logs of services: what a scoring wrapper's processes printed, kept whether or not App
Insights is on, readable after a crash.

- `POST /api/logs`: the wrapper sends newline-delimited JSON lines `{"time","stream","instance","line"}`,
  naming the service by its instrumentation key (`x-instrumentation-key`), the one credential a
  wrapper always has (its connection string). With the service's API key (or the admin key) as well,
  the lines are `verified`; with the instrumentation key alone they are kept, but apart: they can
  push out only lines that came the same way (store/console.py).
- `GET /api/services/{name}/logs?lines=N`: the last N lines, oldest first, with the admin key or that
  service's api key; each line says whether it was `verified`.
- `GET /api/wrapper/settings`: what a running wrapper polls (by instrumentation key) to follow its
  service's `enable_app_insights` switch without a restart.

Lines are kept by the store (store/console.py), written through the single writer like every other
write; each service keeps its newest MAX_LINES_PER_SERVICE lines.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request

from collector.api.auth import Caller, caller, sending_service, vouched_for
from collector.api.responses import JSONResponse
from collector.store.console import Line
from collector.store.writer import Overloaded

router = APIRouter(prefix="/api", tags=["logs"])

MAX_BODY_BYTES = 8 * 2**20
MAX_LINE_CHARS = 16_384
MAX_READ_LINES = 10_000

@router.get("/wrapper/settings")
def wrapper_settings(request: Request) -> dict:
    service = sending_service(request)
    return {"service": service.name, "enable_app_insights": service.enable_app_insights}


@router.post("/logs")
async def append_logs(request: Request) -> JSONResponse:
    """Store console lines of the service whose instrumentation key is presented."""
    service = sending_service(request)
    verified = vouched_for(request, service)
    body = await _body(request)
    lines, errors = _parse(body)
    if errors and not lines:
        return JSONResponse({"accepted": 0, "errors": errors}, status_code=400)
    if lines:
        try:
            await asyncio.wrap_future(request.app.state.store.console.append(service.name, lines, verified))
        except Overloaded as error:
            return JSONResponse({"error": f"collector is busy ({error}); retry later"}, status_code=503,
                                  headers={"Retry-After": "1"})
    return JSONResponse({"accepted": len(lines), "errors": errors})


@router.get("/services/{name}/logs")
async def read_logs(request: Request, name: str, lines: int = Query(100, ge=1, le=MAX_READ_LINES),
                    who: Caller = Depends(caller)) -> dict:
    """The last `lines` console lines, oldest first."""
    if not who.may_read(name):
        raise HTTPException(404, f"no service named {name!r}")
    request.app.state.registry.get(name)
    rows = request.app.state.store.console.tail(name, lines)
    return {"service": name, "lines": [
        {"time": t.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z"), "stream": s, "instance": i, "line": text,
         "verified": verified}
        for t, s, i, text, verified in rows]}


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"body of {declared} bytes exceeds the limit of {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, f"body exceeds the limit of {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> tuple[list[Line], list[dict]]:
    """(time, stream, instance, line) rows, and errors by line number for what is not one."""
    rows, errors = [], []
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            rows.append(_row(orjson.loads(raw)))
        except (orjson.JSONDecodeError, ValueError, TypeError) as error:
            errors.append({"line": number, "message": f"expected {{\"time\",\"stream\",\"line\"}}: {error}"})
    return rows, errors


def _row(item: object) -> Line:
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    line = item.get("line")
    if not isinstance(line, str):
        raise ValueError("'line' must be a string")
    stream = item.get("stream") or "stdout"
    if stream not in ("stdout", "stderr"):
        raise ValueError("'stream' must be stdout or stderr")
    moment = datetime.fromisoformat(item["time"]) if isinstance(item.get("time"), str) else datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    instance = item.get("instance")
    return moment, stream, str(instance)[:64] if instance is not None else None, line[:MAX_LINE_CHARS]
