"""Action groups and availability tests over HTTP, with the admin key or the service's own API key:

- `GET|POST /api/services/{name}/action-groups`, `GET|PUT|DELETE .../action-groups/{group}`:
  webhooks and emails; secrets (a webhook's signing secret, its header values) are shown masked,
  and a PUT that sends a masked value back keeps the stored one;
- `GET|POST /api/services/{name}/availability-tests`, `GET|DELETE .../availability-tests/{test}`,
  `POST .../availability-tests/{test}/run`: run once now, recorded like a scheduled run.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from alerts.api import bad, body_of, extension, service_of
from alerts.probes import probe
from alerts.specs import SpecError, action_group_spec, availability_spec
from collector.api.auth import Caller, caller
from collector.api.responses import JSONResponse
from collector.store.availability import Run, Test
from collector.store.services import ServiceError

router = APIRouter(prefix="/api", tags=["alerts"])

MASK = "****"


def masked_group(spec: dict) -> dict:
    hooks = [{**hook, "secret": MASK if hook.get("secret") else None,
              "headers": {name: MASK for name in hook.get("headers", {})}} for hook in spec.get("webhooks", [])]
    return {**spec, "webhooks": hooks}


def _unmask(body: object, stored: dict | None) -> object:
    """The body with each masked secret or header value replaced by the stored one at that place."""
    if not isinstance(body, dict) or not isinstance(body.get("webhooks"), list):
        return body
    old = (stored or {}).get("webhooks", [])
    hooks = []
    for index, hook in enumerate(body["webhooks"]):
        if isinstance(hook, dict):
            before = old[index] if index < len(old) else {}
            hook = dict(hook)
            if hook.get("secret") == MASK:
                hook["secret"] = before.get("secret")
            if isinstance(hook.get("headers"), dict):
                hook["headers"] = {k: before.get("headers", {}).get(k) if v == MASK else v for k, v in hook["headers"].items()}
        hooks.append(hook)
    return {**body, "webhooks": hooks}


@router.get("/services/{name}/action-groups")
def list_groups(request: Request, name: str, who: Caller = Depends(caller)) -> list[dict]:
    service = service_of(request, who, name)
    return [masked_group(spec) for spec in extension(request).store.alerts.action_groups(service).values()]


@router.post("/services/{name}/action-groups", status_code=201)
async def create_group(request: Request, name: str, who: Caller = Depends(caller)):
    return await _save_group(request, service_of(request, who, name), None)


@router.put("/services/{name}/action-groups/{group}")
async def replace_group(request: Request, name: str, group: str, who: Caller = Depends(caller)):
    return await _save_group(request, service_of(request, who, name), group)


async def _save_group(request: Request, service: str, group: str | None):
    store = extension(request).store
    groups = store.alerts.action_groups(service)
    try:
        body = await body_of(request)
        if group is not None and isinstance(body, dict):
            body = _unmask({"name": group, **body}, groups.get(group))
        spec = action_group_spec(body)
        if group is not None and spec["name"] != group:
            raise SpecError("name", "an action group cannot be renamed")
    except SpecError as error:
        return bad(error)
    if group is None and spec["name"] in groups:
        return JSONResponse({"detail": f"action group {spec['name']!r} exists: PUT it"}, status_code=409)
    await run_in_threadpool(store.alerts.save_action_group, service, spec["name"], spec)
    return JSONResponse(masked_group(spec), status_code=201 if group is None else 200)


@router.get("/services/{name}/action-groups/{group}")
def show_group(request: Request, name: str, group: str, who: Caller = Depends(caller)) -> dict:
    service = service_of(request, who, name)
    spec = extension(request).store.alerts.action_groups(service).get(group)
    if spec is None:
        raise ServiceError(f"service {service!r} has no action group named {group!r}", 404)
    return masked_group(spec)


@router.delete("/services/{name}/action-groups/{group}", status_code=204)
async def delete_group(request: Request, name: str, group: str, who: Caller = Depends(caller)) -> None:
    service = service_of(request, who, name)
    show_group(request, name, group, who)
    users = [r.name for r in extension(request).store.alerts.rules(service) if group in r.spec["action_groups"]]
    if users:
        raise ServiceError(f"rules {', '.join(users)} use action group {group!r}: detach it first", 409)
    await run_in_threadpool(extension(request).store.alerts.delete_action_group, service, group)


def availability_json(test: Test) -> dict:
    return {"service": test.service, "name": test.name, **test.spec, "last_run": test.last_run}


def run_json(run: Run) -> dict:
    return {"timestamp": run.timestamp, "name": run.name, "location": run.location, "success": run.success,
            "duration": run.duration_ms, "message": run.message, "size": run.size, **run.details}


def _test(request: Request, service: str, name: str) -> Test:
    found = [t for t in extension(request).store.availability.tests(service) if t.name == name]
    if not found:
        raise ServiceError(f"service {service!r} has no availability test named {name!r}", 404)
    return found[0]


@router.get("/services/{name}/availability-tests")
def list_tests(request: Request, name: str, who: Caller = Depends(caller)) -> list[dict]:
    return [availability_json(t) for t in extension(request).store.availability.tests(service_of(request, who, name))]


@router.post("/services/{name}/availability-tests", status_code=201)
async def create_test(request: Request, name: str, who: Caller = Depends(caller)):
    service = service_of(request, who, name)
    ext = extension(request)
    try:
        spec = availability_spec(await body_of(request), ext.config.min_frequency_s)
    except SpecError as error:
        return bad(error)
    await run_in_threadpool(ext.store.availability.save, service, spec["name"], spec)
    return JSONResponse(availability_json(_test(request, service, spec["name"])), status_code=201)


@router.get("/services/{name}/availability-tests/{test}")
def show_test(request: Request, name: str, test: str, who: Caller = Depends(caller)) -> dict:
    return availability_json(_test(request, service_of(request, who, name), test))


@router.delete("/services/{name}/availability-tests/{test}", status_code=204)
async def delete_test(request: Request, name: str, test: str, who: Caller = Depends(caller)) -> None:
    service = service_of(request, who, name)
    _test(request, service, test)
    await run_in_threadpool(extension(request).store.availability.delete, service, test)


@router.post("/services/{name}/availability-tests/{test}/run")
async def run_now(request: Request, name: str, test: str, who: Caller = Depends(caller)) -> dict:
    """Run the test once now; the run is recorded in availabilityResults like a scheduled one."""
    found = _test(request, service_of(request, who, name), test)
    run = await run_in_threadpool(probe, found)
    await run_in_threadpool(extension(request).store.availability.record, found.service, run)
    return run_json(run)
