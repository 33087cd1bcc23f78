"""The application map on the ClickHouse store, over every collector's traffic: computed from the
shared `requests` and `dependencies` tables at read time, not from rollups.

Why not rollups, as on DuckDB (collector/store/map_rollups.py)? There, per-hour rollups kept by the
writer are what brings the map over a day of 10M + 10M rows under 2 s. On ClickHouse, N collectors
insert into one set of tables, and each collector's writer sees only its own inserts: rollups kept
per collector show each its share (what this module replaces); rollups kept in ClickHouse would
need either a second insert per batch (not atomic with the telemetry insert: a crash between them
loses counts) or a materialized view, which counts only rows inserted after it exists (a store
migrated or copied before it needs an exact backfill racing live inserts) and, like retention's
deletes, needs rebuilding of trimmed hours. Reading the telemetry tables instead is exact by
construction: every acknowledged row of every collector counts once, rows retention keeps (not
yet exported) count as long as they are there, rows it drops stop counting at once, and there is
nothing to trim, backfill or keep consistent. It is also what ClickHouse is built for: the sort key
(`_service`, hour, time) prunes to the services and range, the columns read are a few
LowCardinality names, a float and a flag, and the aggregation runs on every core of every shard.
Measured in bench/README.md ("Application map on ClickHouse").

The three queries return the shape of the DuckDB rollups' reads (MapRows), so GET /api/map and
live/appmap.py are unchanged:
- nodes: requests per (role, duration bucket), the buckets the DuckDB rollups use (so the p95 is
  read the same way, within 2%), and the distinct instances per role;
- edges: dependencies (not InProc) per (role, target, type, bucket);
- links: as live/appmap.py's LINKS_KQL, a few dependency ids per (role, target) and last character
  of the id (LINK_IDS each, up to 16 characters for hex ids), joined with the requests whose
  `operation_ParentId` they are: the callee role. The ids are chosen deterministically (the least
  of each hash bucket): ClickHouse evaluates the `sampled` CTE once per reference, and an
  arbitrary pick (`any`) would pick different ids each time. On a cluster the join is `GLOBAL`
  (the ids are gathered once, then sent to every shard).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector.store.clickhouse import control
from collector.store.clickhouse.schema import quote
from collector.store.map_rollups import BUCKET_RATIO, MapRows, sum_buckets

LINK_IDS = 4
"""Dependency ids per (role, target, last character of the id) looked up among the requests."""
QUERY_TIMEOUT_S = 30

_ROLE = "coalesce(cloud_RoleName, '')"
_BUCKET = f"if(isNull(duration), NULL, toInt16(floor(log(greatest(duration, 0.001)) / log({BUCKET_RATIO}))))"
_NOT_INPROC = "lower(coalesce(type, '')) != 'inproc'"
_SCOPE = ("timestamp >= toDateTime64({{start:String}}, 6, 'UTC') AND timestamp <= toDateTime64({{end:String}}, 6, 'UTC')"
          "{services}")
"""The range and services (`{services}`, filled in by `_query`; the doubled braces are ClickHouse's
parameters once the template is formatted)."""

_NODES = f"""SELECT {_ROLE} AS role, {_BUCKET} AS bucket, count() AS requests, countIf(success = false) AS failed,
    sum(coalesce(duration, 0)) AS duration_sum, any(_service) AS service
    FROM {{requests}} WHERE {_SCOPE} GROUP BY role, bucket"""
_INSTANCES = f"""SELECT {_ROLE} AS role, uniqExact(cloud_RoleInstance) AS instances
    FROM {{requests}} WHERE {_SCOPE} GROUP BY role"""
_EDGES = f"""SELECT {_ROLE} AS role, coalesce(target, '') AS target, coalesce(type, '') AS type, {_BUCKET} AS bucket,
    count() AS calls, countIf(success = false) AS failed, sum(coalesce(duration, 0)) AS duration_sum,
    any(_service) AS service
    FROM {{dependencies}} WHERE {_NOT_INPROC} AND {_SCOPE} GROUP BY role, target, type, bucket"""
_LINKS = f"""WITH sampled AS (
        SELECT {_ROLE} AS role, coalesce(target, '') AS target, min(id) AS link_id
        FROM {{dependencies}} WHERE id IS NOT NULL AND id != '' AND {_NOT_INPROC} AND {_SCOPE}
        GROUP BY role, target, substring(id, length(id), 1), cityHash64(id) % {LINK_IDS})
    SELECT s.role AS role, s.target AS target, r.callee AS callee, count() AS links
    FROM sampled AS s {{global_}}INNER JOIN (
        SELECT operation_ParentId AS parent_id, {_ROLE} AS callee FROM {{requests}}
        WHERE operation_ParentId {{global_}}IN (SELECT link_id FROM sampled) AND {_SCOPE}) AS r
    ON s.link_id = r.parent_id
    GROUP BY role, target, callee"""


class ClickHouseMapRollups:
    """MapRollups' read interface (`map_rows`) over the shared telemetry tables (see the module
    docstring for why nothing is rolled up)."""

    def __init__(self, connection: control.Connection) -> None:
        self._connection = connection

    def map_rows(self, services: list[str] | None, start: datetime, end: datetime) -> MapRows:
        """Nodes, edges and links over `start`..`end` (both included, naive UTC, as the query API's
        timespan), over the rows every collector stored."""
        nodes = sum_buckets(self._query(_NODES, services, start, end), ("role",), "requests")
        instances = {row["role"]: row["instances"] for row in self._query(_INSTANCES, services, start, end)}
        edges = sum_buckets(self._query(_EDGES, services, start, end), ("role", "target", "type"), "calls")
        links = self._query(_LINKS, services, start, end)
        for node in nodes:
            node["instances"] = instances.get(node["role"], 0)
        return MapRows(nodes, edges, links)

    def _query(self, template: str, services: list[str] | None, start: datetime, end: datetime) -> list[dict]:
        database = quote(self._connection.database)
        sql = template.format(
            requests=f"{database}.{quote('requests')}", dependencies=f"{database}.{quote('dependencies')}",
            global_="GLOBAL " if self._connection.cluster else "",
            services="" if services is None else " AND _service IN {services:Array(String)}")
        parameters: dict[str, Any] = {"start": start.isoformat(sep=" "), "end": end.isoformat(sep=" ")}
        if services is not None:
            parameters["services"] = services
        result = self._connection.client().query(
            sql, parameters=parameters,
            settings={**control.read_settings(self._connection), "max_execution_time": QUERY_TIMEOUT_S})
        names = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]
