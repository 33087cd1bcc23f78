"""The App Insights / Log Analytics query API: KQL in, `{"tables": [...]}` out.

Routes are the ones azure-monitor-query's LogsQueryClient and the classic App Insights REST API
call (`/v1/workspaces/{id}/query`, `/v1/apps/{id}/query`, `/v1/{resourceId}/query`, `/v1/$batch`).
Scope: a service key always reads its own service. The admin key reads every service, or one when
it names it — with a `service` query parameter or body field, or as the workspace/app id in the
path (the only knob a LogsQueryClient user has).

Every failure a query can cause is a 400 (504 for the time limit) in the Log Analytics error shape;
a result cut at the row/byte cap is a 200 with `error.code = "PartialError"`, as Log Analytics does.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from collector.api.auth import Caller, caller
from collector.kql import KqlError, QueryResult, explain, run_query
from collector.kql.errors import TIMEOUT

router = APIRouter(tags=["query"])

MAX_BATCH = 100


class QueryRequestError(Exception):
    """The request around the query is wrong (missing query, bad JSON, foreign service)."""

    def __init__(self, message: str, status: int = 400, code: str = "BadArgumentError"):
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


# --- routes ------------------------------------------------------------------------------------

@router.get("/v1/apps/{app}/query")
@router.get("/v1/workspaces/{app}/query")
async def query_get(app: str, request: Request, who: Caller = Depends(caller)) -> Response:
    params = request.query_params
    fields = {"query": params.get("query"), "timespan": params.get("timespan"),
              "service": params.get("service")}
    return _respond(*await _answer(request, who, app, fields))


@router.post("/v1/apps/{app}/query")
@router.post("/v1/workspaces/{app}/query")
@router.post("/v1/subscriptions/{app:path}/query")
async def query_post(app: str, request: Request, who: Caller = Depends(caller)) -> Response:
    try:
        fields = _json_object(await request.body())
    except QueryRequestError as exc:
        return _respond(exc.status, _error_body(exc.code, exc.message))
    fields.setdefault("service", request.query_params.get("service"))
    return _respond(*await _answer(request, who, app.rpartition("/")[2], fields))


@router.post("/v1/$batch")
async def query_batch(request: Request, who: Caller = Depends(caller)) -> Response:
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
        target = str(item.get("workspace") or item.get("resource") or "").rpartition("/")[2]
        status, payload = await _answer(request, who, target, fields)
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
        services = _services(request, who, "", fields.get("service"))
        sql = await run_in_threadpool(explain, text, services=services)
    except QueryRequestError as exc:
        return _respond(exc.status, _error_body(exc.code, exc.message))
    except KqlError as exc:
        return _respond(400, _kql_error_body(exc))
    return _respond(200, {"sql": sql})


# --- one query ---------------------------------------------------------------------------------

async def _answer(request: Request, who: Caller, target: str, fields: dict) -> tuple[int, dict]:
    """(status, body) for one query; never raises for anything the client sent."""
    try:
        text = fields.get("query")
        if not isinstance(text, str) or not text.strip():
            raise QueryRequestError("the request has no 'query'")
        timespan = fields.get("timespan")
        if timespan is not None and not isinstance(timespan, str):
            raise QueryRequestError("'timespan' must be an ISO 8601 string or null")
        services = _services(request, who, target, fields.get("service"))
        result = await run_in_threadpool(_run, request, text, services, timespan)
    except QueryRequestError as exc:
        return exc.status, _error_body(exc.code, exc.message)
    except KqlError as exc:
        return (504 if exc.code == TIMEOUT else 400), _kql_error_body(exc)
    return 200, _result_body(result, request)


def _run(request: Request, text: str, services: list[str] | None, timespan: str | None) -> QueryResult:
    """In a worker thread: one read cursor for one query."""
    state = request.app.state
    with state.store.reader() as cursor:
        return run_query(
            cursor, text, services=services, timespan=timespan,
            timeout_s=getattr(state, "query_timeout_s", 30),
            max_rows=getattr(state, "query_max_rows", 500_000),
            max_bytes=getattr(state, "query_max_bytes", 64 * 2**20),
        )


def _services(request: Request, who: Caller, target: str, asked: Any) -> list[str] | None:
    """Which services' rows the query may read (None: all). See the module doc."""
    if asked is not None and not isinstance(asked, str):
        raise QueryRequestError("'service' must be a string")
    if not who.is_admin:
        if asked and asked != who.service:
            raise QueryRequestError("this key cannot read that service", 403, "InsufficientAccessError")
        return [who.service]
    if asked:
        return [asked]
    known = {s.name for s in request.app.state.registry.all()}
    return [target] if target in known else None


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
