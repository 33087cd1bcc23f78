"""Live metrics over HTTP.

- `GET /api/live/stream?service=S` (Server-Sent Events): every second an event `live` with the
  seconds completed since the last one (requests, dependencies with percentiles, exceptions, CPU
  and memory), the instances' health, and the samples (failed calls and exceptions, or with
  `condition=` the items that match it) that arrived meanwhile. `role=` and `instance=` narrow it.
- `GET /api/live?service=S&seconds=60`: the same as one answer (the last `seconds` seconds and the
  latest samples), for pollers such as the dashboard.
- `POST /api/live/processes`: a wrapper's CPU and memory, each second (instrumentation key, as
  telemetry).
- `GET /api/live/status` (admin key): items counted, the CPU they cost, batches waiting.

Reading needs the admin key or the service's own API key; another service's key reads as a 404.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from collector.api.auth import Caller, admin, caller, json_body_schema, json_model, sending_service
from live.condition import FAILURES, ConditionError, parse
from live.state import HORIZON_S, LiveState, Subscription

router = APIRouter(prefix="/api", tags=["live"])

TICK_S = 0.1
"""How often a stream looks for a newly completed second."""
SAMPLES_PER_ANSWER = 50


class Process(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pid: int
    name: str = Field("", max_length=200)
    cpuPercent: float = Field(ge=0)
    memoryBytes: int = Field(ge=0)


class ProcessReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str = Field(max_length=200)
    instance: str = Field(max_length=200)
    processes: list[Process] = Field(max_length=256)


def live_state(request: Request) -> LiveState:
    return request.app.state.extensions["live"].state


def _subscription(request: Request, who: Caller, service: str, role: str | None, instance: str | None,
                  condition: str | None) -> Subscription:
    """The stream for this filter; 404 for a service the key may not read, 400 for a bad condition."""
    if not who.may_read(service):
        raise HTTPException(404, f"no service named {service!r}")
    request.app.state.registry.get(service)
    try:
        parsed = parse(condition) if condition and condition.strip() else FAILURES
    except ConditionError as error:
        raise HTTPException(400, str(error)) from None
    try:
        return live_state(request).subscribe(service, role or None, instance or None, parsed)
    except LookupError as error:
        raise HTTPException(429, str(error)) from None


def _payload(state: LiveState, subscription: Subscription, first: int, last: int, seen: int) -> tuple[dict, int]:
    """An answer: the seconds first..last, the instances, and the samples numbered above `seen`
    (the number of the last one it carries comes back with it)."""
    samples = subscription.samples_after(seen, last)[-SAMPLES_PER_ANSWER:]
    body = {"service": subscription.service, "role": subscription.role, "instance": subscription.instance,
            "condition": None if subscription.condition is FAILURES else subscription.condition.text,
            "seconds": state.seconds(subscription, first, last), "instances": state.instances(subscription),
            "samples": [sample for _, sample in samples]}
    return body, samples[-1][0] if samples else seen


@router.get("/live")
def live_snapshot(request: Request, service: str, role: str | None = None, instance: str | None = None,
                  condition: str | None = Query(None, max_length=500),
                  seconds: int = Query(60, ge=1, le=HORIZON_S), who: Caller = Depends(caller)) -> dict:
    """The last `seconds` completed seconds and the latest samples."""
    subscription = _subscription(request, who, service, role, instance, condition)
    state = live_state(request)
    last = state.shown_through
    body, _ = _payload(state, subscription, last - seconds + 1, last, 0)
    return body


@router.get("/live/stream")
async def live_stream(request: Request, service: str, role: str | None = None, instance: str | None = None,
                      condition: str | None = Query(None, max_length=500),
                      who: Caller = Depends(caller)) -> StreamingResponse:
    """Server-Sent Events: one `live` event per completed second."""
    subscription = _subscription(request, who, service, role, instance, condition)
    state = live_state(request)

    async def events():
        sent = state.shown_through
        seen = max((n for n, second, _ in list(subscription.samples) if second <= sent), default=0)
        yield b": live metrics of " + service.encode() + b"\n\n"
        while not await request.is_disconnected() and not request.app.state.shutting_down():
            await asyncio.sleep(TICK_S)
            last = state.shown_through
            if last <= sent:
                continue
            subscription.touched = time.monotonic()
            body, seen = _payload(state, subscription, max(sent + 1, last - 60), last, seen)
            sent = last
            yield b"event: live\ndata: " + orjson.dumps(body) + b"\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/live/status")
def live_status(request: Request, who: Caller = Depends(admin)) -> dict:
    """What live metrics cost and whether they keep up (admin key): items counted, CPU seconds
    spent on them, batches waiting for the next drain."""
    return request.app.state.extensions["live"].intake.status()


@router.post("/live/processes", openapi_extra=json_body_schema(ProcessReport))
async def processes(request: Request) -> dict:
    """A wrapper's processes (its supervisor and workers) with their CPU and memory now."""
    service = sending_service(request)
    report = await json_model(request, ProcessReport)
    cpu = sum(process.cpuPercent for process in report.processes)
    memory = sum(process.memoryBytes for process in report.processes)
    live_state(request).record_process((service.name, report.role, report.instance), cpu, memory,
                                       [process.model_dump() for process in report.processes])
    return {"service": service.name}
