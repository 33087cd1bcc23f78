"""The App Insights / Log Analytics query API: KQL in, `{"tables": [...]}` out.

Routes are the ones azure-monitor-query's LogsQueryClient and the classic App Insights REST API
call (`/v1/workspaces/{id}/query`, `/v1/apps/{id}/query`, `/v1/{resourceId}/query`, `/v1/$batch`).

Scope, as App Insights answers it:
- the app in `/v1/apps/{app}/query` (and the last segment of a resource id) is a service, by its
  name, its instrumentation key or the `appId` its rows carry (the same key), or `default`: the
  caller's own scope (a service key's service; for the admin key, every service). Any other app
  is a 404, and a service key naming another service's app a 403;
- a workspace (`/v1/workspaces/{id}/query`) is the collector itself: an id that names a service
  narrows to it as an app does, any other id is the caller's own scope (LogsQueryClient users
  pass whatever workspace id their code holds);
- the `service` field (body or query parameter) narrows like an app, 404 when unknown; naming a
  different service than the path is a 400.

Every query runs under one budget (collector/kql/budget.py) with the collector's timeout
(INSIGHTS_QUERY_TIMEOUT_S); a batch shares one deadline of that length among its queries. Every
failure a query can cause is a 400 (504 for the time limit) in the Log Analytics error shape; a
result cut at the row/byte cap is a 200 with `error.code = "PartialError"`, as Log Analytics does.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from collector.api.auth import Caller, caller
from collector.kql import KqlError, QueryResult, explain, run_query
from collector.kql.clickhouse.execute import is_clickhouse, query_connection
from collector.kql.errors import TIMEOUT

router = APIRouter(tags=["query"])

MAX_BATCH = 100
DEFAULT_APP = "default"
APP, WORKSPACE, FIELD = "app", "workspace", "service"


class QueryRequestError(Exception):
    """The request around the query is wrong (missing query, bad JSON, foreign service)."""

    def __init__(self, message: str, status: int = 400, code: str = "BadArgumentError"):
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


# --- routes ------------------------------------------------------------------------------------

@router.get("/v1/apps/{app}/query")
async def query_get(app: str, request: Request, who: Caller = Depends(caller)) -> Response:
    return _respond(*await _answer(request, who, APP, app, _query_params(request)))


@router.get("/v1/workspaces/{workspace}/query")
async def query_workspace_get(workspace: str, request: Request, who: Caller = Depends(caller)) -> Response:
    return _respond(*await _answer(request, who, WORKSPACE, workspace, _query_params(request)))


@router.post("/v1/apps/{app}/query")
@router.post("/v1/subscriptions/{app:path}/query")
async def query_post(app: str, request: Request, who: Caller = Depends(caller)) -> Response:
    return await _post(request, who, APP, app.rpartition("/")[2])


@router.post("/v1/workspaces/{workspace}/query")
async def query_workspace_post(workspace: str, request: Request, who: Caller = Depends(caller)) -> Response:
    return await _post(request, who, WORKSPACE, workspace)


@router.post("/v1/$batch")
async def query_batch(request: Request, who: Caller = Depends(caller)) -> Response:
    """Up to MAX_BATCH queries, one after another, all within one query timeout."""
    deadline = time.monotonic() + _timeout_s(request)
    try:
        body = _json_object(await request.body())
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise QueryRequestError("'requests' must be a non-empty list")
        if len(requests) > MAX_BATCH:
            raise QueryRequestError(f"a batch holds at most {MAX_BATCH} requests")
    except QueryRequestError as exc:
        return _respond(exc.status, _error_body(exc.code, exc.message))
    responses = []
    for item in requests:
        item = item if isinstance(item, dict) else {}
        fields = item.get("body") if isinstance(item.get("body"), dict) else {}
        kind, target = (APP, item["resource"]) if item.get("resource") else (WORKSPACE, item.get("workspace"))
        status, payload = await _answer(request, who, kind, str(target or "").rpartition("/")[2], fields, deadline)
        responses.append({"id": item.get("id"), "status": status, "body": payload})
    return _respond(200, {"responses": responses})


@router.post("/api/query/explain", tags=["query"])
async def explain_query(request: Request, who: Caller = Depends(caller)) -> Response:
    """The DuckDB SQL a KQL query becomes, scoped as it would run (for `insights query --explain`)."""
    try:
        fields = _json_object(await request.body())
        text = fields.get("query")
        if not isinstance(text, str) or not text.strip():
            raise QueryRequestError("the request has no 'query'")
        services = _services(request, who, APP, DEFAULT_APP, fields.get("service"))
        sql = await run_in_threadpool(explain, text, services=services, timeout_s=_timeout_s(request))
    except QueryRequestError as exc:
        return _respond(exc.status, _error_body(exc.code, exc.message))
    except KqlError as exc:
        return _respond(504 if exc.code == TIMEOUT else 400, _kql_error_body(exc))
    return _respond(200, {"sql": sql})


async def _post(request: Request, who: Caller, kind: str, target: str) -> Response:
    try:
        fields = _json_object(await request.body())
    except QueryRequestError as exc:
        return _respond(exc.status, _error_body(exc.code, exc.message))
    fields.setdefault("service", request.query_params.get("service"))
    return _respond(*await _answer(request, who, kind, target, fields))


def _query_params(request: Request) -> dict:
    params = request.query_params
    return {"query": params.get("query"), "timespan": params.get("timespan"), "service": params.get("service")}


# --- one query ---------------------------------------------------------------------------------

async def _answer(request: Request, who: Caller, kind: str, target: str, fields: dict,
                  deadline: float | None = None) -> tuple[int, dict]:
    """(status, body) for one query; never raises for anything the client sent."""
    try:
        text = fields.get("query")
        if not isinstance(text, str) or not text.strip():
            raise QueryRequestError("the request has no 'query'")
        timespan = fields.get("timespan")
        if timespan is not None and not isinstance(timespan, str):
            raise QueryRequestError("'timespan' must be an ISO 8601 string or null")
        services = _services(request, who, kind, target, fields.get("service"))
        result = await run_in_threadpool(_run, request, text, services, timespan, deadline)
    except QueryRequestError as exc:
        return exc.status, _error_body(exc.code, exc.message)
    except KqlError as exc:
        return (504 if exc.code == TIMEOUT else 400), _kql_error_body(exc)
    return 200, _result_body(result, request)


def _run(request: Request, text: str, services: list[str] | None, timespan: str | None,
         deadline: float | None) -> QueryResult:
    """In a worker thread: one read cursor for one query."""
    state = request.app.state
    with query_connection(state.store) as cursor:
        on_clickhouse = is_clickhouse(cursor)
        return run_query(
            cursor, text, services=services, timespan=timespan, timeout_s=_timeout_s(request),
            deadline=deadline,
            memory_limit=_memory_limit(state, cursor) if not on_clickhouse else _configured_memory(state),
            max_rows=getattr(state, "query_max_rows", 500_000),
            max_bytes=getattr(state, "query_max_bytes", 64 * 2**20),
        )


def _timeout_s(request: Request) -> float:
    return getattr(request.app.state, "query_timeout_s", 30)


_INSTANCE_LIMITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _memory_limit(state: Any, cursor: Any) -> str | None:
    """The DuckDB memory limit the whole collector shares (INSIGHTS_MEMORY_LIMIT, else DuckDB's
    own default, asked once per store), of which each query gets its share."""
    configured = getattr(getattr(state, "settings", None), "memory_limit", None)
    if configured:
        return configured
    limit = _INSTANCE_LIMITS.get(state.store)
    if limit is None:
        limit = _INSTANCE_LIMITS[state.store] = cursor.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    return limit


def _configured_memory(state: Any) -> str | None:
    return getattr(getattr(state, "settings", None), "memory_limit", None)


def _services(request: Request, who: Caller, kind: str, target: str, asked: Any) -> list[str] | None:
    """Which services' rows the query may read (None: all). See the module doc."""
    if asked is not None and not isinstance(asked, str):
        raise QueryRequestError("'service' must be a string")
    registry = request.app.state.registry
    by_path = _service_named(registry, target, kind)
    by_field = _service_named(registry, asked, FIELD) if asked else None
    if by_path and by_field and by_path != by_field:
        raise QueryRequestError(f"the path names service {by_path!r} and 'service' names {by_field!r}: "
                                "name one")
    chosen = by_path or by_field
    if not who.is_admin:
        if chosen is not None and chosen != who.service:
            raise QueryRequestError("this key cannot read that service: it is another service's app",
                                    403, "InsufficientAccessError")
        return [who.service]
    return [chosen] if chosen is not None else None


def _service_named(registry: Any, name: str, kind: str) -> str | None:
    """The service *name* designates (by name, instrumentation key or appId); None for `default`
    and, on a workspace route, for any id that is no service's. An unknown app is a 404."""
    if not name or name.lower() == DEFAULT_APP:
        return None
    for service in registry.all():
        if service.name == name:
            return service.name
    found = registry.by_instrumentation_key(name)
    if found is not None:
        return found.name
    if kind == WORKSPACE:
        return None
    if kind == FIELD:
        raise QueryRequestError(f"no service named {name!r} (`insights service list` shows them)", 404,
                                "ServiceNotFoundError")
    raise QueryRequestError(f"no app {name!r}: an app is a service's name, instrumentation key or appId, "
                            f"or '{DEFAULT_APP}' (`insights service list` shows them)", 404, "PathNotFoundError")


# --- response shapes ---------------------------------------------------------------------------

def _result_body(result: QueryResult, request: Request) -> dict:
    body: dict = {
        "tables": [{
            "name": "PrimaryResult",
            "columns": [{"name": n, "type": t} for n, t in result.columns],
            "rows": result.rows,
        }],
        "statistics": result.statistics,
    }
    if result.visualization is not None:
        body["render"] = result.visualization
    if result.truncated:
        body["error"] = {
            "code": "PartialError",
            "message": "There were some errors when processing your query.",
            "details": [{
                "code": "EngineError",
                "message": "Query result set has exceeded the limit; the result is truncated.",
                "innererror": {
                    "code": "-2133196797",
                    "message": f"Query result set was truncated at {len(result.rows)} rows "
                               "(row or size limit)",
                    "severity": 2,
                    "severityName": "Error",
                },
            }],
        }
    return body


def _kql_error_body(exc: KqlError) -> dict:
    where = f" at line {exc.line}, column {exc.pos}" if exc.line is not None else ""
    inner: dict = {"code": exc.code, "message": exc.message + where}
    if exc.line is not None:
        inner["line"], inner["pos"] = exc.line, exc.pos
    code = "GatewayTimeout" if exc.code == TIMEOUT else "BadArgumentError"
    return {"error": {"code": code, "message": exc.message + where, "innererror": inner}}


def _error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message,
                      "innererror": {"code": "BadRequest", "message": message}}}


def _json_object(raw: bytes) -> dict:
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise QueryRequestError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise QueryRequestError("the request body must be a JSON object")
    return body


def _respond(status: int, body: dict) -> Response:
    """orjson-encoded JSON: results are plain lists of JSON-ready cells, so no model is needed."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
