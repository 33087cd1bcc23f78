"""What running scoring wrappers say about themselves: the truth behind `Webservice.state` and
`Webservice.scoring_uri`.

- `POST /api/wrapper/heartbeat`: a wrapper's supervisor reports, every couple of seconds, its
  instance, scoring URI and state (`Healthy` when its workers answer /ready, `Unhealthy` with a
  reason otherwise, `Stopped` once on the way out), naming its service by the instrumentation key
  like `POST /api/logs`. The answer carries the service's `enable_app_insights`, so one call is
  both the heartbeat and the live switch (`GET /api/wrapper/settings` stays for older wrappers).
- `GET /api/services/{name}/state`: the service's state from its wrappers' reports, with the admin
  key or that service's api key.

The instrumentation key is no secret, so a report that carries only it cannot set what users read
as the truth: `state` and `scoring_uri` come from reports that also present the service's API key
(or the admin key), as `insights score --service NAME` does. Reports with the instrumentation key
alone are kept apart and listed as `unverified_instances`; they still get the live switch back.

A state is only as good as its last report, so it is never guessed: `Healthy` needs a report of
`Healthy` younger than STALE_AFTER_S; a report older than that reads `Unknown` (the wrapper stopped,
hangs, or cannot reach us, and we cannot tell which); a wrapper that said it stopped with exit
code 0 (a clean stop: `delete()`, Ctrl-C, SIGTERM) reads `Stopped`, one that said it stopped with
any other code (a crash) reads `Unhealthy`. A service reads `Stopped` only when every wrapper that
reported stopped cleanly. Reports live in memory, since they describe processes running now: after a collector
restart a service reads `Unknown` until its wrappers report again, within one interval.
"""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from collector.api.auth import Caller, caller, json_body_schema, json_model, sending_service, vouched_for

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
    exit_code: int | None = Field(None, description="with state Stopped: the wrapper's exit code (0: a clean stop)")


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
        state = next((s for s in ("Healthy", "Unhealthy", "Unknown", "Stopped") if s in states), "Unknown")
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
        state = "Stopped" if _clean_exit(report) else "Unhealthy"
        detail = f"stopped {age:.0f} s ago" + (f": {report.detail}" if report.detail else "")
    elif age > STALE_AFTER_S:
        state, detail = "Unknown", f"no report for {age:.0f} s (last said {report.state})"
    else:
        state, detail = report.state, report.detail
    return {"instance": report.instance, "state": state, "detail": detail, "scoring_uri": report.scoring_uri,
            "reported_state": report.state, "seconds_since_report": round(age, 1), "workers": report.workers,
            "pid": report.pid}


def _clean_exit(report: Report) -> bool:
    """Exit code 0; older wrappers say it only in the detail ("exit code 0")."""
    if report.exit_code is not None:
        return report.exit_code == 0
    return report.detail.strip() == "exit code 0"


def state_of(service: str, verified: Reports, unverified: Reports, now: float) -> dict:
    """The state users read: from verified reports only, with the unverified ones listed apart."""
    state = verified.state(service, now)
    others = unverified.state(service, now)["instances"]
    if others and not state["instances"]:
        state["detail"] = (f"{len(others)} wrapper(s) report with the instrumentation key alone, which does not vouch for "
                           "a state: start them with `insights score --service NAME` or INSIGHTS_API_KEY=<the service's API key>")
    return {**state, "unverified_instances": others}


def _reports(request: Request, verified: bool) -> Reports:
    state = request.app.state
    name = "wrapper_reports" if verified else "unverified_wrapper_reports"
    if not hasattr(state, name):
        setattr(state, name, Reports())
    return getattr(state, name)


@router.post("/wrapper/heartbeat", openapi_extra=json_body_schema(Report))
async def heartbeat(request: Request) -> dict:
    """A wrapper's report (the body is a Report); with the service's API key (or the admin key)
    it sets the service's state and scoring URI, with the instrumentation key alone it is listed
    as unverified. Either way the answer is the live switch."""
    service = sending_service(request)
    verified = vouched_for(request, service)
    report = await json_model(request, Report)
    _reports(request, verified).add(service.name, report, time.monotonic())
    return {"service": service.name, "enable_app_insights": service.enable_app_insights,
            "interval_s": HEARTBEAT_INTERVAL_S, "verified": verified}


@router.get("/services/{name}/state")
def service_state(request: Request, name: str, who: Caller = Depends(caller)) -> dict:
    if not who.may_read(name):
        raise HTTPException(404, f"no service named {name!r}")
    request.app.state.registry.get(name)
    return state_of(name, _reports(request, True), _reports(request, False), time.monotonic())
