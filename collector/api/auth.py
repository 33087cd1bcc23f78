"""Who is calling: the admin key, a service's api key, or nobody.

Keys come as `x-api-key`, `Authorization: Bearer <key>` or (for the App Insights REST API's GET
form) the `api_key` query parameter. The admin key is compared in constant time; service keys are
found by their digest (see services.Registry).

Two credentials, two powers. The instrumentation key is no secret (it sits in connection strings
and browser code): with it alone a sender may append (telemetry, console lines, heartbeats). What
users read as the truth about a service, or what removes what was recorded, needs that service's
API key or the admin key. Routes authenticate before they read a body: `json_model` parses one
only after the route's dependencies (its key checks) have run.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class Caller:
    is_admin: bool
    service: str | None = None

    def may_read(self, service: str) -> bool:
        return self.is_admin or self.service == service


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query_params.get("api_key")


def caller(request: Request) -> Caller:
    """FastAPI dependency: the admin or the service whose key was presented; 401 otherwise."""
    key = presented_key(request)
    if not key:
        raise HTTPException(401, "missing key: send x-api-key or Authorization: Bearer <key>")
    if hmac.compare_digest(key.encode(), request.app.state.admin_key.encode()):
        return Caller(is_admin=True)
    service = request.app.state.registry.by_api_key(key)
    if service is None:
        raise HTTPException(401, "invalid key")
    return Caller(is_admin=False, service=service.name)


def admin(request: Request) -> Caller:
    """FastAPI dependency for service management: the admin key only."""
    who = caller(request)
    if not who.is_admin:
        raise HTTPException(403, "this needs the admin key")
    return who


def sending_service(request: Request):
    """The service whose instrumentation key a wrapper presents (`x-instrumentation-key`): the one
    credential a wrapper always has, from its connection string."""
    ikey = request.headers.get("x-instrumentation-key")
    if not ikey:
        raise HTTPException(401, "missing x-instrumentation-key: send the service's instrumentation key")
    service = request.app.state.registry.by_instrumentation_key(ikey)
    if service is None:
        raise HTTPException(401, "invalid instrumentation key")
    return service


def vouched_for(request: Request, service) -> bool:
    """Whether a sender that named `service` by its instrumentation key also presents a key that
    may act for it (that service's API key or the admin key): False when it presents none; 401
    for an unknown key, 403 for another service's."""
    if not presented_key(request):
        return False
    who = caller(request)
    if not who.may_read(service.name):
        raise HTTPException(403, f"the API key presented is not service {service.name!r}'s")
    return True


async def json_model(request: Request, model: type[Model]) -> Model:
    """The request's JSON body as `model`, read only now (after the route's key checks, and within
    api/limits.py's bounds); a 422 naming the field otherwise, as FastAPI answers."""
    body = await request.body()
    try:
        return model.model_validate_json(body or b"null")
    except ValidationError as error:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                      for e in error.errors(include_url=False, include_context=False)]) from None


def json_body_schema(model: type[BaseModel]) -> dict:
    """`openapi_extra` for a route that reads `model` with json_model, so /docs still shows it."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}
