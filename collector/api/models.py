"""The model registry over HTTP: /api/models...

Models are the collector's, as an Azure ML workspace's registry is the workspace's, not one
service's: any valid key (the admin key or a service's API key, which a deployment holds) may list,
show and download them; registering and deleting need the admin key. An upload is a tar of one file
or one folder (what `Model.register` and `insights model register` send), streamed to disk and
refused at the first byte past the limit (413), then checked and unpacked (400 for an unsafe name,
a link, several top-level entries).
"""

from __future__ import annotations

from pathlib import Path

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from collector.api.auth import Caller, admin, caller
from collector.api.responses import JSONResponse
from collector.store.model_files import ModelError
from collector.store.models import MAX_MODEL_BYTES, ModelRegistry, check_name, check_tags

router = APIRouter(prefix="/api", tags=["models"])


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.store.models


def _refused(error: ModelError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=error.status_code)


@router.post("/models/{name}", status_code=201,
             openapi_extra={"requestBody": {"required": True, "content": {"application/x-tar": {}}}})
async def register_model(request: Request, name: str, description: str | None = Query(None, max_length=4096),
                         tags: str = Query("{}", description="a JSON object of strings"),
                         _: Caller = Depends(admin)) -> JSONResponse:
    """Register the uploaded tar (one file or one folder) as the name's next version."""
    registry = _registry(request)
    archive = registry.staging_path()
    try:
        check_name(name)
        try:
            tag_map = check_tags(orjson.loads(tags))
        except orjson.JSONDecodeError:
            raise ModelError("tags: not valid JSON") from None
        await _receive(request, archive)
        model = await registry.register(name, archive, description, tag_map)
    except ModelError as error:
        return _refused(error)
    finally:
        archive.unlink(missing_ok=True)
    return JSONResponse(model.to_json(), status_code=201)


async def _receive(request: Request, archive: Path) -> None:
    """The body into `archive`, counted as it arrives: 413 past MAX_MODEL_BYTES, 400 when empty."""
    received = 0
    with open(archive, "wb") as out:
        async for chunk in request.stream():
            received += len(chunk)
            if received > MAX_MODEL_BYTES:
                raise ModelError(f"the upload exceeds the limit of {MAX_MODEL_BYTES} bytes (INSIGHTS_MODEL_MAX_MB)", 413)
            out.write(chunk)
    if not received:
        raise ModelError("the body is empty: send a tar of the model's file or folder")


@router.get("/models")
def list_models(request: Request, name: str | None = None, latest: bool = False,
                _: Caller = Depends(caller)) -> JSONResponse:
    try:
        models = _registry(request).versions(name, latest=latest)
    except ModelError as error:
        return _refused(error)
    return JSONResponse([m.to_json() for m in models])


@router.get("/models/{name}")
def show_model(request: Request, name: str, version: int | None = Query(None, ge=1),
               _: Caller = Depends(caller)) -> JSONResponse:
    """The version asked for, else the latest."""
    try:
        return JSONResponse(_registry(request).get(name, version).to_json())
    except ModelError as error:
        return _refused(error)


@router.get("/models/{name}/versions/{version}/content", response_class=StreamingResponse)
def download_model(request: Request, name: str, version: int, _: Caller = Depends(caller)):
    """The version's file or folder as a tar (its one top-level entry is the registered name)."""
    registry = _registry(request)
    try:
        model = registry.get(name, version)
    except ModelError as error:
        return _refused(error)
    if not registry.has_files(model):
        return _refused(ModelError(f"model {model.id!r} has no files in the store (removed by hand?)", 404))
    return StreamingResponse(registry.files(model), media_type="application/x-tar",
                             headers={"x-model-sha256": model.sha256})


@router.delete("/models/{name}")
async def delete_model(request: Request, name: str, version: int | None = Query(None, ge=1),
                       _: Caller = Depends(admin)) -> JSONResponse:
    """One version, or every version of the name when none is given."""
    try:
        deleted = await _registry(request).delete(name, version)
    except ModelError as error:
        return _refused(error)
    return JSONResponse({"deleted": [m.id for m in deleted]})

