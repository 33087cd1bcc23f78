"""Per-minute rollups of requests and dependencies that the application map reads instead of the raw
rows: over a day of 10M requests and 10M dependencies, the map's three KQL queries take seconds, the
rollups a fraction of one (bench/README.md).

Kept exact by construction: the writer calls `record` with every table it inserts, inside the
transaction that inserts it (writer.after_insert), so a row is counted once it is stored and only
then; imports go through the same insert. Retention (`trim`, in the transaction of the delete)
rebuilds every minute it may have touched from the rows that remain.

The tables (one row per group of each commit, summed when read):
- map_node_minutes: requests by (service, minute, role, duration bucket): count, failed, duration sum;
- map_node_instances: the role instances seen per (service, minute, role);
- map_edge_minutes: dependencies (not InProc) by (service, minute, role, target, type, bucket);
- map_link_calls / map_link_callees: the links that name the role behind a target, sampled.

Durations go into logarithmic buckets (BUCKET_RATIO wide), so a p95 read from them is within half a
bucket (2%) of the rows'.

Role resolution: a dependency whose `id` is some request's `operation_ParentId` called that
request's role. Which request that is cannot be known when the dependency arrives (the callee's
telemetry may come first, later, or from another service), so both sides are sampled by the same
rule on the linking value: a dependency id, and a request's parent id, are kept when
hash(value) % LINK_SAMPLE == 0. A kept id's matching request is then kept too, whatever the order
they arrived in, and the query joins the two small tables. Where this differs from the raw-row map
(live/appmap.py LINKS_KQL): a (role, target) with few calls (under ~LINK_SAMPLE * 3 in the range)
may have no sampled id and then reads as an external target; and when several roles answer one
target, the role with the most sampled links wins rather than the one with the most of one id per
last character.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa

from collector.store.schema import SERVICE_COLUMN

BUCKET_RATIO = 1.04
LINK_SAMPLE = 16
_MINUTE = timedelta(minutes=1)

DDL = (
    """CREATE TABLE IF NOT EXISTS map_node_minutes (service VARCHAR NOT NULL, minute TIMESTAMP NOT NULL,
        role VARCHAR NOT NULL, bucket SMALLINT, requests BIGINT NOT NULL, failed BIGINT NOT NULL,
        duration_sum DOUBLE NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS map_node_instances (service VARCHAR NOT NULL, minute TIMESTAMP NOT NULL,
        role VARCHAR NOT NULL, instance VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS map_edge_minutes (service VARCHAR NOT NULL, minute TIMESTAMP NOT NULL,
        role VARCHAR NOT NULL, target VARCHAR NOT NULL, type VARCHAR NOT NULL, bucket SMALLINT,
        calls BIGINT NOT NULL, failed BIGINT NOT NULL, duration_sum DOUBLE NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS map_link_calls (service VARCHAR NOT NULL, minute TIMESTAMP NOT NULL,
        role VARCHAR NOT NULL, target VARCHAR NOT NULL, id VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS map_link_callees (service VARCHAR NOT NULL, minute TIMESTAMP NOT NULL,
        parent_id VARCHAR NOT NULL, callee VARCHAR NOT NULL)""",
)

_BUCKET = f"CASE WHEN duration IS NULL THEN NULL ELSE floor(ln(greatest(duration, 0.001)) / ln({BUCKET_RATIO}))::SMALLINT END"
_MINUTE_OF = "date_trunc('minute', \"timestamp\")"
_SERVICE = f'"{SERVICE_COLUMN}"'
_NOT_INPROC = "lower(coalesce(type, '')) <> 'inproc'"
# What each rollup table holds, as a SELECT over rows of its source table (`{rows}`, filtered by `{where}`).
_ROLLUPS: dict[str, tuple[str, str]] = {
    "map_node_minutes": ("requests", f"""SELECT {_SERVICE} AS service, {_MINUTE_OF} AS minute,
        coalesce(cloud_RoleName, '') AS role, {_BUCKET} AS bucket, count(*) AS requests,
        count(*) FILTER (WHERE success = false) AS failed, coalesce(sum(duration), 0) AS duration_sum
        FROM {{rows}} WHERE {{where}} GROUP BY ALL"""),
    "map_node_instances": ("requests", f"""SELECT DISTINCT {_SERVICE} AS service, {_MINUTE_OF} AS minute,
        coalesce(cloud_RoleName, '') AS role, cloud_RoleInstance AS instance
        FROM {{rows}} WHERE cloud_RoleInstance IS NOT NULL AND {{where}}"""),
    "map_edge_minutes": ("dependencies", f"""SELECT {_SERVICE} AS service, {_MINUTE_OF} AS minute,
        coalesce(cloud_RoleName, '') AS role, coalesce(target, '') AS target, coalesce(type, '') AS type,
        {_BUCKET} AS bucket, count(*) AS calls, count(*) FILTER (WHERE success = false) AS failed,
        coalesce(sum(duration), 0) AS duration_sum FROM {{rows}} WHERE {_NOT_INPROC} AND {{where}} GROUP BY ALL"""),
    "map_link_calls": ("dependencies", f"""SELECT {_SERVICE} AS service, {_MINUTE_OF} AS minute,
        coalesce(cloud_RoleName, '') AS role, coalesce(target, '') AS target, id FROM {{rows}}
        WHERE id IS NOT NULL AND hash(id) % {LINK_SAMPLE} = 0 AND {_NOT_INPROC} AND {{where}}"""),
    "map_link_callees": ("requests", f"""SELECT {_SERVICE} AS service, {_MINUTE_OF} AS minute,
        operation_ParentId AS parent_id, coalesce(cloud_RoleName, '') AS callee FROM {{rows}}
        WHERE operation_ParentId IS NOT NULL AND hash(operation_ParentId) % {LINK_SAMPLE} = 0 AND {{where}}"""),
}


@dataclass(frozen=True)
class MapRows:
    """The map's rows in the shape of live/appmap.py's three KQL queries (NODES, EDGES, LINKS)."""

    nodes: list[dict]
    edges: list[dict]
    links: list[dict]


def record(con: duckdb.DuckDBPyConnection, table: str, incoming: pa.Table) -> None:
    """Add the rollups of rows just inserted into `table` (in the writer's transaction)."""
    for rollup, (source, select) in _ROLLUPS.items():
        if source == table:  # DuckDB scans the local Arrow table `incoming` by name
            con.execute(f"INSERT INTO {rollup} " + select.format(rows="incoming", where='"timestamp" IS NOT NULL'))


def trim(con: duckdb.DuckDBPyConnection, service: str, cutoff: datetime) -> None:
    """After retention deleted the service's rows before `cutoff` (not always all of them: rows not
    yet exported stay): every minute up to the one holding the cutoff is rebuilt from the rows left."""
    through = _ceil_minute(cutoff)
    for rollup, (source, select) in _ROLLUPS.items():
        con.execute(f"DELETE FROM {rollup} WHERE service = ? AND minute < ?", [service, through])
        where = f'{_SERVICE} = $service AND "timestamp" < $through'
        con.execute(f"INSERT INTO {rollup} " + select.format(rows=f'"{source}"', where=where),
                    {"service": service, "through": through})


class MapRollups:
    """Reads the rollups; the writer maintains them (see `record`, `trim`)."""

    def __init__(self, reader: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]):
        self._reader = reader

    def map_rows(self, services: list[str] | None, start: datetime, end: datetime) -> MapRows:
        """Nodes, edges and links over `start`..`end` (both included, as the query API's timespan):
        the whole minutes from the rollups, the partial minutes at either end from the rows."""
        with self._reader() as cursor:
            sources = {rollup: _ranged(rollup, services, start, end) for rollup in _ROLLUPS}
            nodes = _query(cursor, _NODES.format(**sources))
            histograms = _query(cursor, _NODE_BUCKETS.format(**sources))
            edges = _query(cursor, _EDGES.format(**sources))
            edge_histograms = _query(cursor, _EDGE_BUCKETS.format(**sources))
            links = _query(cursor, _LINKS.format(**sources))
        _add_p95(nodes, histograms, ("role",))
        _add_p95(edges, edge_histograms, ("role", "target", "type"))
        return MapRows(nodes, edges, links)


_NODES = """WITH n AS ({map_node_minutes}), i AS ({map_node_instances}),
    t AS (SELECT role, sum(requests)::BIGINT AS requests, sum(failed)::BIGINT AS failed,
        sum(duration_sum) FILTER (WHERE bucket IS NOT NULL) / sum(requests) FILTER (WHERE bucket IS NOT NULL)
            AS "avgDuration", any_value(service) AS service FROM n GROUP BY role)
    SELECT t.*, coalesce(d.instances, 0) AS instances FROM t
    LEFT JOIN (SELECT role, count(DISTINCT instance) AS instances FROM i GROUP BY role) d USING (role)"""
_NODE_BUCKETS = """WITH n AS ({map_node_minutes})
    SELECT role, bucket, sum(requests)::BIGINT AS count FROM n WHERE bucket IS NOT NULL GROUP BY ALL"""
_EDGES = """WITH e AS ({map_edge_minutes})
    SELECT role, target, type, sum(calls)::BIGINT AS calls, sum(failed)::BIGINT AS failed,
        sum(duration_sum) FILTER (WHERE bucket IS NOT NULL) / sum(calls) FILTER (WHERE bucket IS NOT NULL)
            AS "avgDuration", any_value(service) AS service FROM e GROUP BY ALL"""
_EDGE_BUCKETS = """WITH e AS ({map_edge_minutes})
    SELECT role, target, type, bucket, sum(calls)::BIGINT AS count FROM e WHERE bucket IS NOT NULL GROUP BY ALL"""
_LINKS = """WITH c AS ({map_link_calls}), r AS ({map_link_callees})
    SELECT c.role, c.target, r.callee, count(*) AS links FROM c JOIN r ON c.id = r.parent_id GROUP BY ALL"""


def _ranged(rollup: str, services: list[str] | None, start: datetime, end: datetime) -> str:
    """The rollup's rows over the range, as SQL: whole minutes from the rollup table, the rest
    rolled up from the raw rows on the fly (the same SELECT the writer runs)."""
    source, select = _ROLLUPS[rollup]
    scope = "" if services is None else f" AND {{column}} IN ({', '.join(_literal(s) for s in services)})"
    first, last = _ceil_minute(start), end.replace(second=0, microsecond=0)
    raw = select.format(rows=f'"{source}"', where="{where}" + scope.format(column=_SERVICE))
    if first >= last:
        return raw.format(where=f'"timestamp" BETWEEN {_ts(start)} AND {_ts(end)}')
    edges = (f'("timestamp" >= {_ts(start)} AND "timestamp" < {_ts(first)} OR '
             f'"timestamp" >= {_ts(last)} AND "timestamp" <= {_ts(end)})')
    whole = (f"SELECT * FROM {rollup} WHERE minute >= {_ts(first)} AND minute < {_ts(last)}"
             + scope.format(column="service"))
    return f"{whole} UNION ALL {raw.format(where=edges)}"


def _add_p95(rows: list[dict], histograms: list[dict], key: tuple[str, ...]) -> None:
    """Each row's p95 from its duration buckets: the middle (in log space) of the bucket holding the
    95th percentile, None without timed rows."""
    buckets: dict[tuple, list[tuple[int, int]]] = {}
    for row in histograms:
        buckets.setdefault(tuple(row[k] for k in key), []).append((row["bucket"], row["count"]))
    for row in rows:
        row["p95"] = _percentile(sorted(buckets.get(tuple(row[k] for k in key), [])), 0.95)


def _percentile(buckets: list[tuple[int, int]], point: float) -> float | None:
    total = sum(count for _, count in buckets)
    if not total:
        return None
    rank, seen = math.ceil(point * total), 0  # the nearest rank, as the KQL percentile
    for bucket, count in buckets:
        seen += count
        if seen >= rank:
            return math.exp((bucket + 0.5) * math.log(BUCKET_RATIO))
    return math.exp((buckets[-1][0] + 0.5) * math.log(BUCKET_RATIO))


def _query(cursor: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    result = cursor.execute(sql)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _ceil_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + _MINUTE


def _ts(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
