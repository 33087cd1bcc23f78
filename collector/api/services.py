"""Service management, counters and import: /api/services...

A service's `api_key` is in clear only in the answers to create and rotate-key (`api_key_masked`
false); everywhere else it is its prefix and a mask (`api_key_prefix`), since only its digest is kept.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from collector.api.auth import Caller, admin, caller, json_body_schema, json_model
from collector.api.responses import JSONResponse
from collector.api.track import read_body
from collector.ingest.body import BodyError
from collector.store.services import ServiceError
from collector.store.writer import Overloaded

router = APIRouter(prefix="/api", tags=["services"])


class ServiceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="3 to 32 letters, digits or '-'")
    enable_app_insights: bool = True


class ServiceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enable_app_insights: bool


def _endpoint(request: Request) -> str:
    return request.app.state.public_url or str(request.base_url)


def _service_json(request: Request, service) -> dict:
    return service.to_json(_endpoint(request))


@router.get("/services")
def list_services(request: Request, _: Caller = Depends(admin)) -> list[dict]:
    return [_service_json(request, s) for s in request.app.state.registry.all()]


@router.post("/services", status_code=201, openapi_extra=json_body_schema(ServiceCreate))
async def create_service(request: Request, _: Caller = Depends(admin)) -> dict:
    spec = await json_model(request, ServiceCreate)  # read after the key is checked
    service = await request.app.state.registry.create(spec.name, spec.enable_app_insights)
    return _service_json(request, service)


@router.get("/services/{name}")
def show_service(request: Request, name: str, who: Caller = Depends(caller)) -> dict:
    _require_reader(who, name)
    return _service_json(request, request.app.state.registry.get(name))


@router.patch("/services/{name}", openapi_extra=json_body_schema(ServiceUpdate))
async def update_service(request: Request, name: str, _: Caller = Depends(admin)) -> dict:
    change = await json_model(request, ServiceUpdate)  # read after the key is checked
    service = await request.app.state.registry.update(name, change.enable_app_insights)
    return _service_json(request, service)


@router.delete("/services/{name}", status_code=204)
async def delete_service(request: Request, name: str, _: Caller = Depends(admin)) -> None:
    await request.app.state.registry.delete(name)


@router.post("/services/{name}/keys/rotate")
async def rotate_key(request: Request, name: str, _: Caller = Depends(admin)) -> dict:
    """A new API key for the service, in clear this once; the old key stops working now. The
    instrumentation key (in connection strings) is not changed."""
    service = await request.app.state.registry.rotate_key(name)
    return _service_json(request, service)


@router.get("/services/{name}/stats")
def service_stats(request: Request, name: str, who: Caller = Depends(caller)) -> dict:
    """Where every item went: received = accepted + set_aside + dropped:disabled + rejected:*."""
    _require_reader(who, name)
    request.app.state.registry.get(name)
    counters = request.app.state.store.counters(name)
    rejected = {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("rejected:")}
    return {
        "service": name,
        "received": counters.get("received", 0),
        "accepted": counters.get("accepted", 0),
        "rejected": sum(rejected.values()),
        "rejected_by_reason": rejected,
        "dropped_disabled": counters.get("dropped:disabled", 0),
        "capped": counters.get("capped", 0),
        "spilled": counters.get("spilled", 0),
        "imported": counters.get("imported", 0),
        "set_aside": counters.get("set_aside", 0),
    }


@router.post("/services/{name}/import")
async def import_rows(request: Request, name: str, _: Caller = Depends(admin)) -> JSONResponse:
    """Load newline-delimited rows (the export format). Bad lines are reported by line number;
    good lines are kept."""
    request.app.state.registry.get(name)
    try:
        data = await read_body(request)
        imported = await request.app.state.pipeline.ingest_rows(data, name)
    except BodyError as error:
        return JSONResponse({"error": str(error)}, status_code=error.status_code)
    except Overloaded as error:
        return JSONResponse({"error": f"collector is busy ({error}); retry later"}, status_code=503, headers={"Retry-After": "1"})
    status = 400 if imported.errors and not imported.imported else 200
    return JSONResponse({"lines": imported.lines, "imported": imported.imported, "errors": imported.errors},
                        status_code=status)


def _require_reader(who: Caller, name: str) -> None:
    if not who.may_read(name):
        raise ServiceError(f"no service named {name!r}", 404)
