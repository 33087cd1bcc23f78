"""`GET /api/map`: the application map (appmap.py) over a time range.

`timespan` is what the query API takes (`PT1H`, `start/end`; default the last hour). The map
covers the services the key reads: the admin key every service (so that a call from one
service's role to another's is an edge between two role nodes), a service's API key its own,
narrowed by `service=` (repeatable). The map comes from the store's per-hour rollups
(collector/store/map_rollups.py; on the ClickHouse store, from the telemetry of every collector:
collector/store/clickhouse/map_rollups.py); `source=kql` computes it from the raw rows with the three KQL
queries instead (the reference, and what works on a store without rollups). Each node and edge
carries the KQL of its failures and slowest calls, which the dashboard opens on a click.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from collector.api.auth import Caller, caller
from collector.kql import KqlError, run_query
from collector.kql.clickhouse.execute import query_connection
from collector.kql.timespan import parse_window
from live.appmap import build_map, drilldown_kql, map_from_rollups

router = APIRouter(prefix="/api", tags=["live"])

DEFAULT_TIMESPAN = "PT1H"


@router.get("/map")
async def application_map(request: Request, timespan: str = Query(DEFAULT_TIMESPAN, max_length=200),
                          service: list[str] | None = Query(None, max_length=100),
                          source: str = Query("rollups", pattern="^(rollups|kql)$"),
                          who: Caller = Depends(caller)) -> dict:
    """Nodes (roles and external targets) and edges (dependencies) with their health."""
    services = _services(request, who, service)
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        window = parse_window(timespan, now)
    except KqlError as error:
        raise HTTPException(400, f"timespan: {error}") from None
    if window is None:
        raise HTTPException(400, "timespan: give a range, e.g. PT1H")
    minutes = max((window.end - window.start).total_seconds() / 60, 1 / 60)
    state = request.app.state
    timeout_s = getattr(state, "query_timeout_s", 30)

    def query(text: str) -> list[dict]:
        with query_connection(state.store) as cursor:  # the ClickHouse store's connection there
            result = run_query(cursor, text, services=services, timespan=timespan, timeout_s=timeout_s,
                               memory_limit=state.settings.memory_limit)
        names = [name for name, _ in result.columns]
        return [dict(zip(names, row)) for row in result.rows]

    try:
        if source == "kql":
            found = await run_in_threadpool(build_map, query, minutes)
        else:
            rows = await run_in_threadpool(state.store.map_rollups.map_rows, services, window.start, window.end)
            found = map_from_rollups(rows, minutes)
    except KqlError as error:
        raise HTTPException(504 if "time" in error.code.lower() else 400, f"the map's query failed: {error}") from None
    for node in found["nodes"]:
        if node["kind"] == "role":
            node["drilldown"] = drilldown_kql(node["id"])
    for edge in found["edges"]:
        edge["drilldown"] = drilldown_kql(edge["source"], edge["target"], edge["targets"])
    return {"timespan": timespan, "services": services, **found}


def _services(request: Request, who: Caller, asked: list[str] | None) -> list[str] | None:
    """The services the map reads (None: all); 404 for one the key may not read or that is unknown."""
    registry = request.app.state.registry
    for name in asked or []:
        if not who.may_read(name):
            raise HTTPException(404, f"no service named {name!r}")
        registry.get(name)
    if asked:
        return sorted(set(asked))
    return None if who.is_admin or who.service is None else [who.service]
