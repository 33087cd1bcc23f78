"""Who is calling: the admin key, a service's api key, or nobody.

Keys come as `x-api-key`, `Authorization: Bearer <key>` or (for the App Insights REST API's GET
form) the `api_key` query parameter. The admin key is compared in constant time; service keys are
found by their digest (see services.Registry).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import HTTPException, Request


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
