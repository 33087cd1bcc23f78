"""What running scoring wrappers say about themselves: the truth behind `Webservice.state` and
`Webservice.scoring_uri`.

- `POST /api/wrapper/heartbeat`: a wrapper's supervisor reports, every couple of seconds, its
  instance, scoring URI and state (`Healthy` when its workers answer /ready, `Unhealthy` with a
  reason otherwise, `Stopped` once on the way out), authenticated by the service's instrumentation
  key like `POST /api/logs`. The answer carries the service's `enable_app_insights`, so one call is
  both the heartbeat and the live switch (`GET /api/wrapper/settings` stays for older wrappers).
- `GET /api/services/{name}/state`: the service's state from its wrappers' reports, with the admin
  key or that service's api key.

A state is only as good as its last report, so it is never guessed: `Healthy` needs a report of
`Healthy` younger than STALE_AFTER_S; a report older than that reads `Unknown` (the wrapper stopped,
hangs, or cannot reach us, and we cannot tell which); a wrapper that said it stopped reads
`Unhealthy`. Reports live in memory, since they describe processes running now: after a collector
restart a service reads `Unknown` until its wrappers report again, within one interval.
"""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from collector.api.auth import Caller, caller, sending_service

router = APIRouter(prefix="/api", tags=["wrappers"])

HEARTBEAT_INTERVAL_S = 2.0
"""What wrappers are told to use (they poll at this pace already)."""

STALE_AFTER_S = 10.0
"""Five missed heartbeats: after that a report says nothing about now."""

MAX_INSTANCES_PER_SERVICE = 64


class Report(BaseModel):
    model_config = ConfigDict(extra="ignore")
    instance: str = Field(min_length=1, max_length=200, description="host:port of the wrapper")
    state: Literal["Healthy", "Unhealthy", "Stopped"]
    detail: str = Field("", max_length=2000)
    scoring_uri: str | None = Field(None, max_length=2000)
    workers: int | None = None
    pid: int | None = None


class Reports:
    """service -> instance -> (report, received at); kept on app.state."""

    def __init__(self):
        self._by_service: dict[str, dict[str, tuple[Report, float]]] = {}

    def add(self, service: str, report: Report, now: float) -> None:
        instances = self._by_service.setdefault(service, {})
        instances.pop(report.instance, None)  # re-insert: dicts keep order, oldest first
        instances[report.instance] = (report, now)
        while len(instances) > MAX_INSTANCES_PER_SERVICE:
            instances.pop(next(iter(instances)))

    def state(self, service: str, now: float) -> dict:
        instances = [_instance(report, received, now) for report, received in self._by_service.get(service, {}).values()]
        states = {instance["state"] for instance in instances}
        state = next((s for s in ("Healthy", "Unhealthy") if s in states), "Unknown")
        newest_first = sorted(instances, key=lambda i: i["seconds_since_report"])
        chosen = next((i for i in newest_first if i["state"] == state), newest_first[0] if newest_first else None)
        if chosen is None:
            detail = "no wrapper has reported since the collector started"
        else:
            detail = chosen["detail"]
        return {"service": service, "state": state, "detail": detail,
                "scoring_uri": chosen["scoring_uri"] if chosen else None, "instances": instances}


def _instance(report: Report, received: float, now: float) -> dict:
    age = now - received
    if report.state == "Stopped":
        state, detail = "Unhealthy", f"stopped {age:.0f} s ago" + (f": {report.detail}" if report.detail else "")
    elif age > STALE_AFTER_S:
        state, detail = "Unknown", f"no report for {age:.0f} s (last said {report.state})"
    else:
        state, detail = report.state, report.detail
    return {"instance": report.instance, "state": state, "detail": detail, "scoring_uri": report.scoring_uri,
            "reported_state": report.state, "seconds_since_report": round(age, 1), "workers": report.workers,
            "pid": report.pid}


def _reports(request: Request) -> Reports:
    state = request.app.state
    if not hasattr(state, "wrapper_reports"):
        state.wrapper_reports = Reports()
    return state.wrapper_reports


@router.post("/wrapper/heartbeat")
async def heartbeat(request: Request, report: Report) -> dict:
    service = sending_service(request)
    _reports(request).add(service.name, report, time.monotonic())
    return {"service": service.name, "enable_app_insights": service.enable_app_insights,
            "interval_s": HEARTBEAT_INTERVAL_S}


@router.get("/services/{name}/state")
def service_state(request: Request, name: str, who: Caller = Depends(caller)) -> dict:
    if not who.may_read(name):
        raise HTTPException(404, f"no service named {name!r}")
    request.app.state.registry.get(name)
    return _reports(request).state(name, time.monotonic())
