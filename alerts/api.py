"""Alert rules and alerts over HTTP, with the admin key or the service's own API key:

- `GET|POST /api/services/{name}/alert-rules`, `GET|PATCH|DELETE .../alert-rules/{rule}`: rules
  (a PATCH changing the query or the condition starts the rule's evaluation afresh);
- `POST .../alert-rules/{rule}/test`: the dry run, what the rule would judge now, per series;
- `POST .../alert-rules/{rule}/mute` `{"for": "1h"}` (`{"for": null}` unmutes);
- `GET .../alert-rules/{rule}/values?hours=24`: the measured values (and learned band) per window;
- `POST .../alert-rules/recommended`: add the built-in rules for model endpoints;
- `GET /api/services/{name}/alerts`, `GET /api/alerts`: alert instances (`?state=Fired`);
- `GET /api/services/{name}/alert-deliveries`: the delivery log; `GET /api/alerts/scheduler`.

A bad field is a 400 naming it (the query's line and column for invalid KQL); unknown fields are 400s.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from alerts.evaluate import EvaluationError, dry_run
from alerts.recommended import recommended_rules
from alerts.specs import SpecError, rule_spec, seconds
from collector.api.auth import Caller, caller
from collector.api.responses import JSONResponse
from collector.store.alerts import Delivery, Instance, Rule, now
from collector.store.services import ServiceError

router = APIRouter(prefix="/api", tags=["alerts"])

_RESET_FIELDS = ("query", "measure", "split_by", "window", "frequency", "dynamic", "operator", "threshold")


def extension(request: Request) -> Any:
    return request.app.state.extensions["alerts"]


def service_of(request: Request, who: Caller, name: str) -> str:
    """The service `name`, if the caller may act on it (404 otherwise, as for a missing one)."""
    if not who.may_read(name):
        raise ServiceError(f"no service named {name!r}", 404)
    return request.app.state.registry.get(name).name


async def body_of(request: Request) -> object:
    try:
        return orjson.loads(await request.body() or b"null")
    except orjson.JSONDecodeError:
        raise SpecError("body", "not valid JSON") from None


def bad(error: SpecError) -> JSONResponse:
    return JSONResponse({"detail": str(error), "field": error.field}, status_code=400)


def rule_json(rule: Rule) -> dict:
    return {"service": rule.service, "name": rule.name, **rule.spec, "watermark": rule.watermark,
            "last_error": rule.last_error, "last_error_at": rule.last_error_at, "evaluations": rule.evaluations,
            "muted_until": rule.muted_until}


def instance_json(instance: Instance) -> dict:
    return {"service": instance.service, "rule": instance.rule, "dimensions": instance.dimensions,
            "state": instance.state, "alert_id": instance.alert_id, "fired_at": instance.fired_at,
            "resolved_at": instance.resolved_at, "value": instance.value, "threshold": instance.threshold}


def delivery_json(delivery: Delivery) -> dict:
    return {"key": delivery.key, "rule": delivery.rule, "alert_id": delivery.alert_id,
            "condition": delivery.condition, "receiver": delivery.receiver, "status": delivery.status,
            "attempts": delivery.attempts, "last_error": delivery.last_error,
            "created_at": delivery.created_at, "updated_at": delivery.updated_at}


def _rule(request: Request, service: str, name: str) -> Rule:
    rule = extension(request).store.alerts.rule(service, name)
    if rule is None:
        raise ServiceError(f"service {service!r} has no alert rule named {name!r}", 404)
    return rule


def _check_groups(request: Request, service: str, spec: dict) -> None:
    known = extension(request).store.alerts.action_groups(service)
    for group in spec["action_groups"]:
        if group not in known:
            raise SpecError("action_groups", f"no action group named {group!r} (create it first)")


@router.get("/services/{name}/alert-rules")
def list_rules(request: Request, name: str, who: Caller = Depends(caller)) -> list[dict]:
    service = service_of(request, who, name)
    return [rule_json(r) for r in extension(request).store.alerts.rules(service)]


@router.post("/services/{name}/alert-rules", status_code=201)
async def create_rule(request: Request, name: str, who: Caller = Depends(caller)):
    service = service_of(request, who, name)
    ext = extension(request)
    try:
        spec = await run_in_threadpool(rule_spec, await body_of(request), ext.config.min_frequency_s)
        _check_groups(request, service, spec)
    except SpecError as error:
        return bad(error)
    if ext.store.alerts.rule(service, spec["name"]) is not None:
        return JSONResponse({"detail": f"rule {spec['name']!r} exists: PATCH it, or delete it first"}, status_code=409)
    await run_in_threadpool(ext.store.alerts.save_rule, service, spec["name"], spec, True)
    return JSONResponse(rule_json(_rule(request, service, spec["name"])), status_code=201)


@router.get("/services/{name}/alert-rules/{rule}")
def show_rule(request: Request, name: str, rule: str, who: Caller = Depends(caller)) -> dict:
    return rule_json(_rule(request, service_of(request, who, name), rule))


@router.patch("/services/{name}/alert-rules/{rule}")
async def update_rule(request: Request, name: str, rule: str, who: Caller = Depends(caller)):
    service = service_of(request, who, name)
    stored = _rule(request, service, rule)
    ext = extension(request)
    try:
        changes = await body_of(request)
        if not isinstance(changes, dict):
            raise SpecError("body", "expected a JSON object of the fields to change")
        if changes.get("name", rule) != rule:
            raise SpecError("name", "a rule cannot be renamed: create a new one")
        spec = await run_in_threadpool(rule_spec, {**stored.spec, **changes}, ext.config.min_frequency_s)
        _check_groups(request, service, spec)
    except SpecError as error:
        return bad(error)
    reset = any(spec[f] != stored.spec.get(f) for f in _RESET_FIELDS)
    await run_in_threadpool(ext.store.alerts.save_rule, service, rule, spec, reset)
    return rule_json(_rule(request, service, rule))


@router.delete("/services/{name}/alert-rules/{rule}", status_code=204)
async def delete_rule(request: Request, name: str, rule: str, who: Caller = Depends(caller)) -> None:
    service = service_of(request, who, name)
    _rule(request, service, rule)
    await run_in_threadpool(extension(request).store.alerts.delete_rule, service, rule)


@router.post("/services/{name}/alert-rules/{rule}/test")
async def test_rule(request: Request, name: str, rule: str, who: Caller = Depends(caller)):
    """The dry run: each series the rule's query gives now, its value, the threshold and whether it
    fails; nothing is stored or sent."""
    found = _rule(request, service_of(request, who, name), rule)
    ext = extension(request)
    try:
        series = await run_in_threadpool(dry_run, ext.store, found, now(), ext.config.query_timeout_s)
    except EvaluationError as error:
        return JSONResponse({"detail": str(error), "field": "query"}, status_code=400)
    return {"rule": rule, "window_end": now(), "series": series, "would_fire": [s for s in series if s["failing"]]}


@router.post("/services/{name}/alert-rules/{rule}/mute")
async def mute_rule(request: Request, name: str, rule: str, who: Caller = Depends(caller)):
    """Hold the rule's notifications for a while (they are logged as muted); `for: null` unmutes."""
    service = service_of(request, who, name)
    _rule(request, service, rule)
    try:
        body = await body_of(request)
        if not isinstance(body, dict) or set(body) - {"for"}:
            raise SpecError("body", "expected {\"for\": \"1h\"} (or null to unmute)")
        length = body.get("for")
        until = None if length is None else now() + timedelta(seconds=seconds(length, "for"))
    except SpecError as error:
        return bad(error)
    await run_in_threadpool(extension(request).store.alerts.mute_rule, service, rule, until)
    return rule_json(_rule(request, service, rule))


@router.get("/services/{name}/alert-rules/{rule}/values")
def rule_values(request: Request, name: str, rule: str, hours: float = 24, who: Caller = Depends(caller)) -> list[dict]:
    found = _rule(request, service_of(request, who, name), rule)
    values = extension(request).store.alerts.values(found.service, rule, now() - timedelta(hours=min(hours, 24 * 28)))
    return [{"dims_key": v.dims_key, "window_end": v.window_end, "value": v.value, "lower": v.lower, "upper": v.upper}
            for v in values]


@router.post("/services/{name}/alert-rules/recommended", status_code=201)
async def add_recommended(request: Request, name: str, who: Caller = Depends(caller)):
    """Add the built-in rules for model endpoints that the service lacks; the names of those added."""
    service = service_of(request, who, name)
    ext = extension(request)
    try:
        body = await body_of(request) or {}
        if not isinstance(body, dict) or set(body) - {"action_groups"}:
            raise SpecError("body", "expected {\"action_groups\": [...]} (or nothing)")
        spec_groups = {"action_groups": body.get("action_groups", [])}
        if not isinstance(spec_groups["action_groups"], list):
            raise SpecError("action_groups", "expected a list of action group names")
        _check_groups(request, service, spec_groups)
    except SpecError as error:
        return bad(error)
    groups = spec_groups["action_groups"]
    added = []
    for spec in recommended_rules(groups):
        if ext.store.alerts.rule(service, spec["name"]) is None:
            checked = await run_in_threadpool(rule_spec, spec, ext.config.min_frequency_s)
            await run_in_threadpool(ext.store.alerts.save_rule, service, checked["name"], checked, True)
            added.append(checked["name"])
    return JSONResponse({"added": added}, status_code=201)


@router.get("/services/{name}/alerts")
def service_alerts(request: Request, name: str, state: str | None = None, who: Caller = Depends(caller)) -> list[dict]:
    service = service_of(request, who, name)
    return [instance_json(i) for i in extension(request).store.alerts.instances(service)
            if state is None or i.state == state]


@router.get("/alerts")
def all_alerts(request: Request, state: str | None = None, who: Caller = Depends(caller)) -> list[dict]:
    return [instance_json(i) for i in extension(request).store.alerts.instances(None if who.is_admin else who.service)
            if state is None or i.state == state]


@router.get("/alerts/scheduler")
def scheduler_status(request: Request, _: Caller = Depends(caller)) -> dict:
    return extension(request).scheduler.status()


@router.get("/services/{name}/alert-deliveries")
def deliveries(request: Request, name: str, rule: str | None = None, who: Caller = Depends(caller)) -> list[dict]:
    service = service_of(request, who, name)
    return [delivery_json(d) for d in extension(request).store.alerts.deliveries(service, rule)]
