"""Model monitors and their references over HTTP, with the admin key or the service's own API key:

- `PUT|GET|DELETE /api/services/{service}/monitors/{name}`, `GET /api/services/{service}/monitors`:
  definitions (monitoring/definition.py; an unknown field, metric or signal is a 422 naming it; a
  reference that does not exist, or features it lacks, a 400);
- `POST /api/services/{service}/monitors/{name}/run[?start=&end=]`: run now over a window (default:
  the window that ends now); `GET .../results[?since=]`: stored results, newest first;
- `PUT /api/services/{service}/monitor-references/{name}?format=csv|parquet|jsonl[&columns=a,b]
  [&categorical=c]`: upload a reference file as the body, streamed to disk under its own limit,
  then frozen as sketches; `GET /api/services/{service}/monitor-references`, `DELETE .../{name}`.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request

from collector.api.auth import Caller, caller, json_body_schema, json_model
from monitoring import references
from monitoring.definition import NAME, MonitorSpec
from monitoring.run import MonitorError, RunResult, run_monitor
from monitoring.sketch import FeatureSketch

router = APIRouter(prefix="/api/services/{service}", tags=["model monitoring"])


def _allowed(request: Request, service: str, who: Caller) -> None:
    if not who.may_read(service):
        raise HTTPException(404, f"no service named {service!r}")
    request.app.state.registry.get(service)


def _name(name: str) -> str:
    if not NAME.match(name):
        raise HTTPException(400, f"name {name[:40]!r}: 1 to 64 letters, digits, '_', '.' or '-'")
    return name


@router.put("/monitors/{name}", openapi_extra=json_body_schema(MonitorSpec))
async def put_monitor(request: Request, service: str, name: str, who: Caller = Depends(caller)) -> dict:
    _allowed(request, service, who)
    spec = await json_model(request, MonitorSpec)
    state = request.app.state.store.monitors
    if spec.reference:
        stored = state.reference(service, spec.reference)
        if stored is None:
            raise HTTPException(400, f"reference: no reference named {spec.reference!r} for {service}")
        missing = [f for f in spec.features or [] if f not in stored["features"]]
        if missing:
            raise HTTPException(400, f"features: {missing[0]!r} is not a column of reference {spec.reference!r}")
    await asyncio.wrap_future(state.save_monitor(service, _name(name), spec.model_dump()))
    return _shown(state.monitor(service, name))


@router.get("/monitors")
def list_monitors(request: Request, service: str, who: Caller = Depends(caller)) -> list[dict]:
    _allowed(request, service, who)
    return [_shown(m) for m in request.app.state.store.monitors.monitors(service)]


@router.get("/monitors/{name}")
def show_monitor(request: Request, service: str, name: str, who: Caller = Depends(caller)) -> dict:
    _allowed(request, service, who)
    return _shown(_monitor(request, service, name))


@router.delete("/monitors/{name}", status_code=204)
async def delete_monitor(request: Request, service: str, name: str, who: Caller = Depends(caller)) -> None:
    _allowed(request, service, who)
    deleted = await asyncio.wrap_future(request.app.state.store.monitors.delete_monitor(service, name))
    if not deleted:
        raise HTTPException(404, f"no monitor named {name!r} for {service}")


@router.post("/monitors/{name}/run")
async def run_now(request: Request, service: str, name: str, start: datetime | None = None, end: datetime | None = None,
                  who: Caller = Depends(caller)) -> dict:
    _allowed(request, service, who)
    monitor = _monitor(request, service, name)
    spec = MonitorSpec.model_validate({k: v for k, v in monitor.items() if k in MonitorSpec.model_fields})
    window_end = _naive(end) or datetime.now(UTC).replace(tzinfo=None)
    try:
        result: RunResult = await asyncio.to_thread(run_monitor, request.app.state.store.monitors, service, name, spec,
                                                    window_end, _naive(start))
    except MonitorError as error:
        raise HTTPException(400, str(error)) from None
    return result.to_json()


@router.get("/monitors/{name}/results")
def results(request: Request, service: str, name: str, since: datetime | None = None,
            limit: int = Query(10_000, ge=1, le=100_000), who: Caller = Depends(caller)) -> dict:
    _allowed(request, service, who)
    _monitor(request, service, name)
    rows = request.app.state.store.monitors.results(service, name, _naive(since), limit)
    return {"monitor": name, "results": [_result_json(r) for r in rows]}


@router.put("/monitor-references/{name}")
async def upload_reference(request: Request, service: str, name: str, format: str | None = None,  # noqa: A002
                           columns: str | None = None, categorical: str | None = None,
                           filename: str | None = None, who: Caller = Depends(caller)) -> dict:
    _allowed(request, service, who)
    _name(name)
    try:
        fmt = references.file_format(filename, format)
        folder = Path(request.app.state.store.data_dir)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".reference-", suffix=f".{fmt}") as staged:
            await _stream_to(request, staged, references.max_upload_bytes())
            table = await asyncio.to_thread(references.read_table, Path(staged.name), fmt)
            sketch = await asyncio.to_thread(references.sketch_table, table, _listed(columns),
                                             frozenset(_listed(categorical) or []))
    except references.ReferenceError as error:
        raise HTTPException(400, f"reference {name!r}: {error}") from None
    await asyncio.wrap_future(request.app.state.store.monitors.save_reference(service, name, sketch, sketch["rows"]))
    return _reference_summary(name, sketch)


@router.get("/monitor-references")
def list_references(request: Request, service: str, who: Caller = Depends(caller)) -> list[dict]:
    _allowed(request, service, who)
    return request.app.state.store.monitors.references(service)


@router.get("/monitor-references/{name}")
def show_reference(request: Request, service: str, name: str, who: Caller = Depends(caller)) -> dict:
    _allowed(request, service, who)
    stored = request.app.state.store.monitors.reference(service, name)
    if stored is None:
        raise HTTPException(404, f"no reference named {name!r} for {service}")
    return {**_reference_summary(name, stored), "sketches": stored["features"]}


@router.delete("/monitor-references/{name}", status_code=204)
async def delete_reference(request: Request, service: str, name: str, who: Caller = Depends(caller)) -> None:
    _allowed(request, service, who)
    deleted = await asyncio.wrap_future(request.app.state.store.monitors.delete_reference(service, name))
    if not deleted:
        raise HTTPException(404, f"no reference named {name!r} for {service}")


async def _stream_to(request: Request, handle, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"reference of {declared} bytes exceeds the limit of {limit} bytes "
                                 "(INSIGHTS_REFERENCE_MAX_BYTES)")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"reference exceeds the limit of {limit} bytes (INSIGHTS_REFERENCE_MAX_BYTES)")
        handle.write(chunk)
    handle.flush()


def _listed(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _reference_summary(name: str, sketch: dict) -> dict:
    features = {f: FeatureSketch.from_json(s) for f, s in sketch["features"].items()}
    return {"name": name, "rows": sketch["rows"],
            "features": {f: {"type": s.kind, "null_rate": round(s.null_rate, 6), "min": s.minimum, "max": s.maximum,
                             "categories": len(s.categories) if s.kind == "categorical" else None}
                         for f, s in features.items()}}


def _monitor(request: Request, service: str, name: str) -> dict:
    monitor = request.app.state.store.monitors.monitor(service, name)
    if monitor is None:
        raise HTTPException(404, f"no monitor named {name!r} for {service}")
    return monitor


def _shown(monitor: dict | None) -> dict:
    assert monitor is not None
    out = dict(monitor)
    for key in ("created_at", "last_window_end"):
        out[key] = _iso(out[key])
    return out


def _result_json(row: dict) -> dict:
    out = {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in row.items()}
    details = out.get("details")
    if isinstance(details, str):
        out["details"] = orjson.loads(details)
    return out


def _iso(moment: datetime | None) -> str | None:
    return moment.replace(tzinfo=None).isoformat() + "Z" if moment is not None else None


def _naive(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
