"""GET /swagger.json: the user's own swagger file when there is one, else a document generated from
inference-schema's decorators, for versions 2 (default), 3 and 3.1, as azmlinfsrv serves them."""

from __future__ import annotations

import json
import os

from scoring.config import Settings
from scoring.user_script import UserScript

_VERSIONS = {"2": "2", "2.0": "2", "3": "3", "3.0": "3", "3.1": "3.1"}


class SwaggerError(LookupError):
    pass


def document(script: UserScript, settings: Settings, version: str | None) -> dict:
    wanted = _VERSIONS.get(version or "2")
    if wanted is None:
        raise SwaggerError(f"Swagger version [{version}] is not valid. Supported versions: [2, 3, 3.1].")
    user_file = _user_file(script, wanted)
    if user_file is not None:
        return user_file
    if script.run is None:
        raise SwaggerError("The scoring script is not loaded yet.")
    input_schema, output_schema = _schemas(script, wanted)
    if wanted == "2":
        return _swagger2(settings, input_schema, output_schema)
    return _openapi3(settings, input_schema, output_schema, "3.1.0" if wanted == "3.1" else "3.0.1")


def _user_file(script: UserScript, version: str) -> dict | None:
    names = {"2": ("swagger.json", "swagger2.json"), "3": ("swagger3.json",), "3.1": ("swagger3.1.json",)}[version]
    for directory in dict.fromkeys([os.environ.get("AML_APP_ROOT") or os.getcwd(), os.path.dirname(script.path)]):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as handle:
                    return json.load(handle)
    return None


def _schemas(script: UserScript, version: str) -> tuple[dict, dict]:
    empty = {"type": "object", "example": {}}
    if not script.schema:
        return empty, empty
    from inference_schema.schema_util import get_input_schema, get_output_schema, get_supported_versions

    supported = set(get_supported_versions(script.run))
    if not supported & {version, f"{version}.0"}:
        raise SwaggerError(f"Swagger version [{version}] is not supported for the scoring script. "
                           f"Supported swagger versions: [{', '.join(sorted(supported))}].")
    return get_input_schema(script.run), get_output_schema(script.run)


def _error_schema() -> dict:
    return {"type": "object", "properties": {"message": {"type": "string"}}}


def _info(settings: Settings) -> dict:
    return {"title": settings.service_name, "version": os.environ.get("SERVICE_VERSION", "1.0"),
            "description": f"API specification for the Azure Machine Learning service {settings.service_name}"}


def _prefix() -> str:
    prefix = os.environ.get("SERVICE_PATH_PREFIX", "").strip("/")
    return f"/{prefix}" if prefix else ""


def _swagger2(settings: Settings, input_schema: dict, output_schema: dict) -> dict:
    return {
        "swagger": "2.0",
        "info": _info(settings),
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "paths": {
            f"{_prefix()}/": {"get": {"operationId": "ServiceHealthCheck", "responses": {"200": {"description": "Healthy"}}}},
            f"{_prefix()}/score": {"post": {
                "operationId": "RunMLService",
                "parameters": [{"name": "serviceInputPayload", "in": "body", "schema": {"$ref": "#/definitions/ServiceInput"}}],
                "responses": {"200": {"description": "The prediction", "schema": {"$ref": "#/definitions/ServiceOutput"}},
                              "default": {"description": "An error", "schema": {"$ref": "#/definitions/ErrorResponse"}}},
            }},
        },
        "definitions": {"ServiceInput": input_schema, "ServiceOutput": output_schema, "ErrorResponse": _error_schema()},
    }


def _openapi3(settings: Settings, input_schema: dict, output_schema: dict, version: str) -> dict:
    json_of = lambda ref: {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}  # noqa: E731
    return {
        "openapi": version,
        "info": _info(settings),
        "paths": {
            f"{_prefix()}/": {"get": {"operationId": "ServiceHealthCheck", "responses": {"200": {"description": "Healthy"}}}},
            f"{_prefix()}/score": {"post": {
                "operationId": "RunMLService",
                "requestBody": {"content": json_of("ServiceInput")},
                "responses": {"200": {"description": "The prediction", "content": json_of("ServiceOutput")},
                              "default": {"description": "An error", "content": json_of("ErrorResponse")}},
            }},
        },
        "components": {"schemas": {"ServiceInput": input_schema, "ServiceOutput": output_schema, "ErrorResponse": _error_schema()}},
    }
