"""Online endpoints over HTTP (admin key; a read also with the endpoint's service API key):

- `POST /api/endpoints` create (also creates the service of the same name; answers the scoring keys
  and the service's API key), `GET /api/endpoints`, `GET|PATCH|DELETE /api/endpoints/{name}`
  (PATCH: traffic, mirror, rate_limit, request_timeout_ms);
- `PUT|DELETE /api/endpoints/{name}/deployments/{deployment}`, `GET .../{deployment}/logs?lines=N`;
- `POST /api/endpoints/{name}/credentials` (get-credentials), `POST .../regenerate-keys`;
- `GET /api/endpoints/{name}/rollout?timespan=PT1H` the side-by-side comparison (rollout.py);
- `PUT .../{deployment}/state` is how the endpoint host reports what it sees.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from collector.api.auth import Caller, admin, caller, json_body_schema, json_model
from collector.kql import KqlError
from collector.store.endpoints import Deployment, Endpoint, new_key
from collector.store.services import NAME_PATTERN
from endpoints import rollout, traffic
from endpoints.host import APPLIED_READ, READ_STAMP
from endpoints.keeper import free_port, log_path, port_taken

router = APIRouter(prefix="/api", tags=["endpoints"])


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="3 to 32 letters, digits or '-'")
    enable_app_insights: bool = True
    port: int | None = Field(None, ge=1, le=65535, description="The router's port (a free one if omitted)")
    rate_limit: int = Field(100, ge=1, le=1_000_000, description="Requests per second before 429")
    request_timeout_ms: int = Field(5000, ge=1, le=180_000)


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    traffic: str | dict[str, int] | None = None
    mirror: str | dict[str, int] | None = None
    rate_limit: int | None = Field(None, ge=1, le=1_000_000)
    request_timeout_ms: int | None = Field(None, ge=1, le=180_000)


class DeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entry_script: str = Field(description="Absolute path of the score.py")
    model_dir: str | None = None
    instance_count: int = Field(1, ge=1, le=16)
    max_concurrent_requests_per_instance: int = Field(1, ge=1, le=256)


class StateReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    generation: int
    state: Literal["Provisioning", "Succeeded", "Failed"]
    error_code: str | None = None
    message: str | None = None
    restarts: int = 0
    logs: str | None = None


class KeyChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key_type: Literal["primary", "secondary"] = "primary"


def _extension(request: Request):
    return request.app.state.extensions["endpoints"]


def _get(request: Request, name: str) -> Endpoint:
    found = request.app.state.store.endpoints.get(name)
    if found is None:
        raise HTTPException(404, f"no endpoint named {name!r}")
    return found


def _readable(request: Request, name: str, who: Caller) -> Endpoint:
    if not who.may_read(name):
        raise HTTPException(403, f"this key may not read endpoint {name!r}")
    return _get(request, name)


async def _commit(future) -> None:
    await asyncio.wrap_future(future)


@router.post("/endpoints", status_code=201, openapi_extra=json_body_schema(EndpointCreate))
async def create_endpoint(request: Request, _: Caller = Depends(admin)) -> dict:
    spec = await json_model(request, EndpointCreate)
    if not NAME_PATTERN.match(spec.name):
        raise HTTPException(400, "name: 3 to 32 letters, digits or '-'")
    extension = _extension(request)
    if spec.port is not None and port_taken(spec.port):
        raise HTTPException(409, f"port: {spec.port} is in use on 127.0.0.1; give another, or none for a free one")
    async with extension.changing:
        if request.app.state.store.endpoints.get(spec.name) is not None:
            raise HTTPException(409, f"an endpoint named {spec.name!r} already exists")
        service = await request.app.state.registry.create(spec.name, spec.enable_app_insights)
        endpoint = Endpoint(spec.name, spec.port or free_port(), new_key(), new_key(), {}, {}, spec.rate_limit,
                            spec.request_timeout_ms)
        await _commit(request.app.state.store.endpoints.create(endpoint))
    extension.keeper.start(spec.name)
    return {**endpoint.to_json(with_keys=True), "service_api_key": service.api_key,
            "connection_string": service.to_json(request.app.state.public_url or str(request.base_url))["connection_string"]}


@router.get("/endpoints")
def list_endpoints(request: Request, _: Caller = Depends(admin)) -> list[dict]:
    store = request.app.state.store.endpoints
    return [found.to_json() for name in store.names() if (found := store.get(name)) is not None]


@router.get("/endpoints/{name}")
def show_endpoint(request: Request, response: Response, name: str, keys: bool = False,
                  who: Caller = Depends(caller)) -> dict:
    began = time.monotonic()  # before the read: a read begun after a change sees it
    endpoint = _readable(request, name, who)
    if keys and who.is_admin:  # the endpoint's host (see EndpointExtension.applied)
        _extension(request).host_read(name, request.headers.get(APPLIED_READ))
        response.headers[READ_STAMP] = repr(began)
    return endpoint.to_json(with_keys=keys and who.is_admin)


@router.patch("/endpoints/{name}", openapi_extra=json_body_schema(EndpointUpdate))
async def update_endpoint(request: Request, name: str, _: Caller = Depends(admin)) -> dict:
    change = await json_model(request, EndpointUpdate)
    async with _extension(request).changing:
        endpoint = _get(request, name)
        try:
            if change.traffic is not None:
                endpoint.traffic = traffic.parse(change.traffic)
            if change.mirror is not None:
                endpoint.mirror = traffic.parse(change.mirror, "mirror")
            traffic.check(endpoint.traffic, endpoint.mirror, {d.name for d in endpoint.deployments})
        except traffic.TrafficError as error:
            raise HTTPException(400, str(error)) from None
        endpoint.rate_limit = change.rate_limit or endpoint.rate_limit
        endpoint.request_timeout_ms = change.request_timeout_ms or endpoint.request_timeout_ms
        await _commit(request.app.state.store.endpoints.update(endpoint))
    await _extension(request).applied(name)
    return endpoint.to_json()


@router.delete("/endpoints/{name}", status_code=204)
async def delete_endpoint(request: Request, name: str, _: Caller = Depends(admin)) -> None:
    extension = _extension(request)
    async with extension.changing:
        _get(request, name)
        await _commit(request.app.state.store.endpoints.delete(name))
    await asyncio.to_thread(extension.keeper.stop, name)  # its wrappers finish what is in flight
    await request.app.state.registry.delete(name)


@router.put("/endpoints/{name}/deployments/{deployment}", openapi_extra=json_body_schema(DeploymentCreate))
async def put_deployment(request: Request, name: str, deployment: str, _: Caller = Depends(admin)) -> dict:
    spec = await json_model(request, DeploymentCreate)
    if not NAME_PATTERN.match(deployment):
        raise HTTPException(400, "deployment: 3 to 32 letters, digits or '-'")
    for field, value in (("entry_script", spec.entry_script), ("model_dir", spec.model_dir)):
        if value is not None and not os.path.isabs(value):
            raise HTTPException(400, f"{field}: give an absolute path (got {value!r})")
    async with _extension(request).changing:
        endpoint = _get(request, name)
        previous = next((d for d in endpoint.deployments if d.name == deployment), None)
        created = Deployment(name, deployment, spec.entry_script, spec.model_dir, spec.instance_count,
                             spec.max_concurrent_requests_per_instance,
                             generation=previous.generation + 1 if previous else 1)
        await _commit(request.app.state.store.endpoints.put_deployment(created))
    return created.to_json()


@router.delete("/endpoints/{name}/deployments/{deployment}", status_code=204)
async def delete_deployment(request: Request, name: str, deployment: str, _: Caller = Depends(admin)) -> None:
    async with _extension(request).changing:
        endpoint = _get(request, name)
        if endpoint.traffic.get(deployment) or endpoint.mirror.get(deployment):
            raise HTTPException(409, f"deployment {deployment!r} still has traffic or mirror: set it to 0 first")
        await _commit(request.app.state.store.endpoints.delete_deployment(name, deployment))


@router.put("/endpoints/{name}/deployments/{deployment}/state", openapi_extra=json_body_schema(StateReport))
async def report_state(request: Request, name: str, deployment: str, _: Caller = Depends(admin)) -> dict:
    report = await json_model(request, StateReport)
    await _commit(request.app.state.store.endpoints.report_state(name, deployment, report.generation,
                                                                 report.model_dump()))
    return {"ok": True}


@router.get("/endpoints/{name}/deployments/{deployment}/logs", response_class=PlainTextResponse)
def deployment_logs(request: Request, name: str, deployment: str, lines: int = 100,
                    who: Caller = Depends(caller)) -> str:
    endpoint = _readable(request, name, who)
    found = next((d for d in endpoint.deployments if d.name == deployment), None)
    if found is None:
        raise HTTPException(404, f"endpoint {name!r} has no deployment named {deployment!r}")
    lines = max(1, min(lines, 10_000))
    path = log_path(request.app.state.settings.data_dir, name, deployment)
    if not path.exists() and found.logs:  # its host runs on another collector: the lines it last reported
        return "\n".join(found.logs.splitlines()[-lines:])
    return _tail(path, lines)


@router.post("/endpoints/{name}/credentials")
def get_credentials(request: Request, name: str, _: Caller = Depends(admin)) -> dict:
    endpoint = _get(request, name)
    return {"primaryKey": endpoint.primary_key, "secondaryKey": endpoint.secondary_key}


@router.post("/endpoints/{name}/regenerate-keys", openapi_extra=json_body_schema(KeyChoice))
async def regenerate_keys(request: Request, name: str, _: Caller = Depends(admin)) -> dict:
    choice = await json_model(request, KeyChoice)
    async with _extension(request).changing:
        endpoint = _get(request, name)
        if choice.key_type == "primary":
            endpoint.primary_key = new_key()
        else:
            endpoint.secondary_key = new_key()
        await _commit(request.app.state.store.endpoints.update(endpoint))
    await _extension(request).applied(name)
    return {"primaryKey": endpoint.primary_key, "secondaryKey": endpoint.secondary_key}


@router.get("/endpoints/{name}/rollout")
async def rollout_view(request: Request, name: str, timespan: str = "PT1H", baseline: str | None = None,
                       who: Caller = Depends(caller)) -> dict:
    endpoint = _readable(request, name, who)
    try:
        return await asyncio.to_thread(rollout.compare, request.app.state.store, endpoint, timespan,
                                       request.app.state.settings.memory_limit, baseline)
    except KqlError as error:
        raise HTTPException(400, f"timespan: {error}") from None


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 256 * lines))
            text = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
