"""The QuickPulse (Live Metrics) protocol that Azure Monitor SDKs speak, so that an application
run with the Azure Monitor OpenTelemetry distro (`enable_live_metrics=True`) streams to us: the
connection strings we hand out carry `LiveEndpoint=` pointing here.

What the distro does (azure/monitor/opentelemetry/exporter/_quickpulse, read in the installed
package): every 5 s (60 s after a minute unanswered) it POSTs `/QuickPulseService.svc/ping?ikey=K`
with one MonitoringDataPoint; while the answer's header `x-ms-qps-subscribed` is `true` it POSTs
`/QuickPulseService.svc/post?ikey=K` each second with a list of them: per-second metrics (request
and dependency rates, durations, failures, exceptions, the process's CPU and memory) and
documents (sample items). We say `subscribed` only while someone watches the service's live
metrics (a stream or a poll within the last half minute), as Azure does, so idle SDKs only ping.

From a post we take the instance's CPU and memory. Its request and dependency counts are not
added: the same SDK sends the items themselves to /v2.1/track, where the intake counts them, so
adding them again would count each twice; its documents are those items too.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from live.state import LiveState

router = APIRouter(tags=["live"], include_in_schema=False)

SUBSCRIBED = "x-ms-qps-subscribed"
POLLING_HINT = "x-ms-qps-service-polling-interval-hint"
PROCESS_CPU = "\\% Process\\Processor Time Normalized"
PROCESS_MEMORY = "\\Process\\Physical Bytes"
MAX_POINTS = 64
SDK_METRICS = {
    "\\ApplicationInsights\\Requests/Sec": "requestsPerSecond",
    "\\ApplicationInsights\\Requests Failed/Sec": "requestsFailedPerSecond",
    "\\ApplicationInsights\\Request Duration": "requestDurationMs",
    "\\ApplicationInsights\\Dependency Calls/Sec": "dependencyCallsPerSecond",
    "\\ApplicationInsights\\Dependency Calls Failed/Sec": "dependencyCallsFailedPerSecond",
    "\\ApplicationInsights\\Dependency Call Duration": "dependencyDurationMs",
    "\\ApplicationInsights\\Exceptions/Sec": "exceptionsPerSecond",
}
"""The SDK's own per-second view, shown with the instance (its items reach the store in batches,
every 5 s by default, so these move more smoothly than the counts made at ingestion)."""


def _service(request: Request) -> str | None:
    ikey = request.query_params.get("ikey") or ""
    service = request.app.state.registry.by_instrumentation_key(ikey) if ikey else None
    return None if service is None or not service.enable_app_insights else service.name


def _answer(state: LiveState, service: str | None) -> Response:
    watched = service is not None and service in state.services_watched()
    return Response(status_code=200, headers={SUBSCRIBED: "true" if watched else "false", POLLING_HINT: "1000"})


@router.post("/QuickPulseService.svc/ping")
async def ping(request: Request) -> Response:
    """Is anyone watching? An unknown key is told no (200, so the SDK idles rather than retries)."""
    return _answer(request.app.state.extensions["live"].state, _service(request))


@router.post("/QuickPulseService.svc/post")
async def post(request: Request) -> Response:
    """A second of an instance's live metrics: its CPU and memory are kept."""
    state = request.app.state.extensions["live"].state
    service = _service(request)
    if service is None:
        return _answer(state, None)
    try:
        points = orjson.loads(await request.body())
    except orjson.JSONDecodeError as error:
        return Response(f"the body is not JSON: {error}", status_code=400)
    for point in (points if isinstance(points, list) else [points])[:MAX_POINTS]:
        if isinstance(point, dict):
            _record(state, service, point)
    return _answer(state, service)


def _record(state: LiveState, service: str, point: dict) -> None:
    metrics = {metric.get("Name"): metric.get("Value") for metric in point.get("Metrics") or []
               if isinstance(metric, dict)}
    cpu, memory = metrics.get(PROCESS_CPU), metrics.get(PROCESS_MEMORY)
    if not isinstance(cpu, int | float) or not isinstance(memory, int | float):
        return
    role, instance = str(point.get("RoleName") or "")[:200], str(point.get("Instance") or "")[:200]
    process = {"pid": 0, "name": f"QuickPulse {point.get('Version') or ''}".strip(),
               "cpuPercent": float(cpu), "memoryBytes": int(memory),
               "sdkMetrics": {SDK_METRICS[name]: value for name, value in metrics.items()
                              if name in SDK_METRICS and isinstance(value, int | float)}}
    state.record_process((service, role, instance), float(cpu), int(memory), [process])
