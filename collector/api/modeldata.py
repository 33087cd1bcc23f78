"""Model data collection (issue 17): what score.py's collectors send, and payload logging settings.

- `POST /api/modeldata`: newline-delimited collected items (collector/ingest/modeldata.py), naming
  the service by its instrumentation key like `POST /api/logs`; answered in the track protocol's
  shape (200, 206 with per-item 400s, 400), only after the rows are committed.
- `GET /api/modeldata/settings`: what a running wrapper polls (by instrumentation key) to follow
  its service's payload logging (`collect`, `sample_rate`) without a restart.
- `GET|PUT /api/services/{name}/collection`: payload logging of `request`/`response`, off by
  default; reading (with the counts of rows
  stored and of non-tabular items kept whole) needs the admin key or the service's key, changing
  it the admin key.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from collector.api.auth import Caller, admin, caller, json_body_schema, json_model, sending_service
from collector.api.responses import JSONResponse
from collector.api.track import overloaded, read_body, track_error
from collector.ingest.body import BodyError
from collector.ingest.modeldata import prepare_collected
from collector.store.services import Collection, ServiceError
from collector.store.writer import Overloaded

router = APIRouter(prefix="/api", tags=["model data"])


class CollectionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    collect: list[str] = Field(description="Payloads to log: some of request, response ([] turns logging off).")
    sample_rate: float = Field(1.0, gt=0, le=1, description="Share of requests logged, in (0, 1].")


@router.post("/modeldata")
async def collect(request: Request) -> JSONResponse:
    """Store collected DataFrames (one item per line) of the service whose instrumentation key is presented."""
    service = sending_service(request)
    try:
        body = await read_body(request)
    except BodyError as error:
        return track_error(error.status_code, str(error))
    prepared = await asyncio.to_thread(prepare_collected, body, service.name)
    if prepared.rows or prepared.stats:
        try:
            tables = {"modelData": prepared.table()} if prepared.rows else {}
            await asyncio.wrap_future(request.app.state.store.writer.write(tables, prepared.stats))
        except Overloaded as error:
            return overloaded(str(error))
    answer, status = prepared.answer()
    return JSONResponse(answer, status_code=status)


@router.get("/modeldata/settings")
def wrapper_collection(request: Request) -> dict:
    service = sending_service(request)
    return {"service": service.name, **request.app.state.store.collection.get(service.name).to_json()}


@router.get("/services/{name}/collection")
def show_collection(request: Request, name: str, who: Caller = Depends(caller)) -> dict:
    if not who.may_read(name):
        raise HTTPException(404, f"no service named {name!r}")
    request.app.state.registry.get(name)
    counters = {key.split(":", 1)[1]: value for key, value in request.app.state.store.counters(name).items()
                if key.startswith("modelData:")}
    return {"service": name, **request.app.state.store.collection.get(name).to_json(), "counters": counters}


@router.put("/services/{name}/collection", openapi_extra=json_body_schema(CollectionUpdate))
async def update_collection(request: Request, name: str, _: Caller = Depends(admin)) -> dict:
    request.app.state.registry.get(name)
    change = await json_model(request, CollectionUpdate)
    try:
        saved = await request.app.state.store.collection.set(name, Collection(tuple(c.lower() for c in change.collect),
                                                                              change.sample_rate))
    except ServiceError as error:
        raise HTTPException(error.status_code, str(error)) from None
    return {"service": name, **saved.to_json()}
