"""Export settings, status and manual runs over HTTP (admin key only):

- `GET|PUT /api/services/{name}/export` — the service's settings (PUT replaces them; omitted fields
  take their defaults; an invalid field, or a destination the export policy refuses, is a 400 that
  names it). Secrets in the destination are shown masked; a PUT that sends the masked destination
  back unchanged keeps the stored secret (settings.py).
- `POST /api/services/{name}/export/run[?wait=true]` — export now, once (202 with the run; with
  wait, 200 when it has finished).
- `GET /api/services/{name}/export/status`, `GET /api/export/status` — last run, items exported,
  lag, last error.

The scheduler belongs to the export extension (see extension.py).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request

from collector.api.auth import Caller, admin
from collector.api.responses import JSONResponse
from exporters.scheduler import ExportScheduler
from exporters.settings import DestinationPolicy, ExportSettings, SettingsError, masked, unmasked, validate

router = APIRouter(prefix="/api", tags=["export"])


def _scheduler(request: Request) -> ExportScheduler:
    return request.app.state.extensions["export"].scheduler


def _policy(request: Request) -> DestinationPolicy:
    return request.app.state.extensions["export"].policy


def _shown(settings: ExportSettings, configured: bool) -> dict:
    shown = settings.model_dump()
    return {"configured": configured, **shown, "destination": masked(shown["destination"])}


@router.get("/services/{name}/export")
def get_settings(request: Request, name: str, _: Caller = Depends(admin)) -> dict:
    """The service's export settings, secrets masked; until a PUT, `configured` and `enabled` are
    false (nothing is exported, as the status says) and the other defaults are shown (a PUT that
    omits `enabled` turns export on)."""
    settings = _scheduler(request).settings(name)
    if settings is None:
        return _shown(validate({"enabled": False}), configured=False)
    return _shown(settings, configured=True)


@router.put("/services/{name}/export")
async def put_settings(request: Request, name: str, _: Caller = Depends(admin)):
    """Replace the service's export settings; the next export runs at once on the new terms."""
    scheduler = _scheduler(request)
    stored = scheduler.settings(name)  # 404 before looking at the body
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"detail": "body: not valid JSON", "field": "body"}, status_code=400)
    try:
        if isinstance(body, dict) and "destination" in body:
            body = {**body, "destination": unmasked(body["destination"], stored.destination if stored else None)}
        settings = validate(body)
        _policy(request).check(settings.destination_for(request.app.state.settings.data_dir))
    except SettingsError as error:
        return JSONResponse({"detail": str(error), "field": error.field}, status_code=400)
    await scheduler.configure(name, settings)
    return _shown(settings, configured=True)


@router.post("/services/{name}/export/run")
async def run_export(request: Request, name: str, wait: bool = False, _: Caller = Depends(admin)):
    """Export the service now, once (also when scheduled export is off)."""
    run = _scheduler(request).request_run(name)
    if not wait:
        return JSONResponse(run.to_json(), status_code=202)
    return await asyncio.wrap_future(run.future)


@router.get("/services/{name}/export/status")
def service_status(request: Request, name: str, _: Caller = Depends(admin)) -> dict:
    return _scheduler(request).status(name)


@router.get("/export/status")
def all_status(request: Request, _: Caller = Depends(admin)) -> list[dict]:
    return _scheduler(request).all_status()
