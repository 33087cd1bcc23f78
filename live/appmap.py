"""The application map: every role (`cloud_RoleName`) as a node, every dependency from a role to
its target as an edge, over a time range, from stored telemetry through the KQL engine (so it
reads any store the engine reads). This KQL path is the reference; GET /api/map answers from the
store's per-hour rollups (`map_from_rollups`), held equal to it by tests/live/test_map_rollups.py.

Three queries, none a join over all rows:
- nodes: the requests per role (count, failures, p95, instances);
- edges: the dependencies per (role, target, type) (calls, failures, average and p95 duration);
- links: which role answered a (role, target): as App Insights does, a dependency's `id` is the
  `operation_ParentId` of the request it caused in the called role. A few dependency ids per
  (role, target) suffice to name the callee (one per last character of the id: up to 16 for the
  usual hex span ids), so only those are joined with the requests.
A target no request links to is an external node, named by its target and typed from the
dependency type: an HTTP host, a database, a queue. In-process dependencies are not calls
between nodes and are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collector.store.map_rollups import MapRows

UNNAMED = "(no role name)"
"""The node of the items that carry no cloud_RoleName."""
WARN_FAILURE_RATE, FAIL_FAILURE_RATE = 0.01, 0.10
SLOW_P95_MS = 1000.0

NODES_KQL = """requests
| summarize requests = count(), failed = countif(success == false), p95 = percentile(duration, 95),
            avgDuration = avg(duration), instances = dcount(cloud_RoleInstance), service = take_any(appName)
  by role = cloud_RoleName"""
EDGES_KQL = """dependencies
| where type !~ "InProc"
| summarize calls = count(), failed = countif(success == false), avgDuration = avg(duration),
            p95 = percentile(duration, 95), service = take_any(appName)
  by role = cloud_RoleName, target, type"""
LINKS_KQL = """dependencies
| where type !~ "InProc"
| summarize id = take_any(id) by role = cloud_RoleName, target, sample = substring(id, strlen(id) - 1, 1)
| join kind=inner (requests | project operation_ParentId, callee = cloud_RoleName)
    on $left.id == $right.operation_ParentId
| summarize links = count() by role, target, callee"""

Query = Callable[[str], list[dict]]
"""Runs one KQL query over the map's services and time range; rows as dicts."""

_DATABASES = ("sql", "postgres", "mysql", "mongo", "redis", "cosmos", "db2", "oracle", "sqlite", "cassandra")
_QUEUES = ("queue", "service bus", "kafka", "rabbit", "event hub", "eventhub", "sqs", "pubsub")


@dataclass(frozen=True)
class Health:
    failure_rate: float
    p95_ms: float | None

    @property
    def state(self) -> str:
        if self.failure_rate >= FAIL_FAILURE_RATE:
            return "failing"
        if self.failure_rate >= WARN_FAILURE_RATE or (self.p95_ms or 0) > SLOW_P95_MS:
            return "warning"
        return "healthy"


def external_kind(dependency_type: str) -> str:
    lowered = (dependency_type or "").lower()
    if any(word in lowered for word in _DATABASES):
        return "database"
    if any(word in lowered for word in _QUEUES):
        return "queue"
    if lowered.startswith("http"):
        return "http"
    return "external"


def _named(rows: list[dict]) -> list[dict]:
    """Rows with a role (and callee) that has no name under UNNAMED, a target without one as ''."""
    for row in rows:
        for column in ("role", "callee"):
            if column in row:
                row[column] = row[column] or UNNAMED
        for column in ("target", "type"):
            if column in row:
                row[column] = row[column] or ""
    return rows


def build_map(query: Query, minutes: float) -> dict:
    """The map from the three KQL queries over the raw rows: the reference the rollups are held to."""
    return assemble_map(query(LINKS_KQL), query(NODES_KQL), query(EDGES_KQL), minutes)


def map_from_rollups(rows: MapRows, minutes: float) -> dict:
    """The map from the store's per-hour rollups (collector/store/map_rollups.py, which says where
    its role resolution can differ from the KQL links): what GET /api/map answers by default."""
    return assemble_map(rows.links, rows.nodes, rows.edges, minutes)


def assemble_map(links: list[dict], node_rows: list[dict], edge_rows: list[dict], minutes: float) -> dict:
    """The map from rows shaped as the three queries' (LINKS, NODES, EDGES); `minutes` is the time
    range's length (for rates)."""
    callees: dict[tuple[str, str], str] = {}
    for row in sorted(_named(links), key=lambda r: r["links"]):
        callees[(row["role"], row["target"])] = row["callee"]  # the callee most links name wins
    nodes = {row["role"]: _role_node(row, minutes) for row in _named(node_rows)}
    edges: dict[tuple[str, str], dict] = {}
    for row in _named(edge_rows):
        callee = callees.get((row["role"], row["target"]))
        if row["role"] not in nodes:
            nodes[row["role"]] = _role_node({"role": row["role"], "service": row["service"]}, minutes)
        target_id = callee if callee is not None else f"{row['target']} ({external_kind(row['type'])})"
        if target_id not in nodes:
            nodes[target_id] = _role_node({"role": callee, "service": None}, minutes) if callee is not None \
                else _external_node(target_id, row)
        _merge_edge(edges, row, target_id, "role" if callee is not None else "external")
    return {"minutes": minutes, "nodes": sorted(nodes.values(), key=lambda n: (n["kind"] != "role", n["id"])),
            "edges": sorted((_finish_edge(edge, minutes) for edge in edges.values()),
                            key=lambda e: (e["source"], e["target"]))}


def _role_node(row: dict, minutes: float) -> dict:
    requests, failed = row.get("requests") or 0, row.get("failed") or 0
    rate = failed / requests if requests else 0.0
    p95 = row.get("p95")
    return {"id": row["role"], "kind": "role", "service": row.get("service"), "requests": requests,
            "requestsPerMinute": _round(requests / minutes if minutes else None), "failed": failed,
            "failureRate": round(rate, 4), "p95Ms": _round(p95), "avgMs": _round(row.get("avgDuration")),
            "instances": row.get("instances") or 0, "health": Health(rate, p95).state if requests else "unknown"}


def _external_node(node_id: str, row: dict) -> dict:
    return {"id": node_id, "kind": external_kind(row["type"]), "target": row["target"], "type": row["type"],
            "service": None, "requests": 0, "requestsPerMinute": None, "failed": 0, "failureRate": 0.0,
            "p95Ms": None, "avgMs": None, "instances": 0, "health": "unknown"}


def _merge_edge(edges: dict, row: dict, target_id: str, kind: str) -> None:
    edge = edges.setdefault((row["role"], target_id), {
        "source": row["role"], "target": target_id, "targetKind": kind, "types": [], "targets": [],
        "calls": 0, "failed": 0, "_total": 0.0, "p95Ms": None})
    edge["calls"] += row["calls"]
    edge["failed"] += row["failed"]
    edge["_total"] += (row["avgDuration"] or 0.0) * row["calls"]
    edge["p95Ms"] = max(edge["p95Ms"] or 0.0, row["p95"] or 0.0)  # the slowest path's p95 when merged
    for name, value in (("types", row["type"]), ("targets", row["target"])):
        if value not in edge[name]:
            edge[name].append(value)


def _finish_edge(edge: dict, minutes: float) -> dict:
    total = edge.pop("_total")
    rate = edge["failed"] / edge["calls"] if edge["calls"] else 0.0
    return {**edge, "callsPerMinute": _round(edge["calls"] / minutes if minutes else None),
            "failureRate": round(rate, 4), "avgMs": _round(total / edge["calls"] if edge["calls"] else None),
            "p95Ms": _round(edge["p95Ms"]), "health": Health(rate, edge["p95Ms"]).state}


def drilldown_kql(source: str, target: str | None = None, targets: Sequence[str] = ()) -> dict[str, str]:
    """The KQL of a node's (or an edge's) failures and slowest calls: what clicking it opens."""
    role = "isempty(cloud_RoleName)" if source == UNNAMED else f"cloud_RoleName == {_kql_string(source)}"
    if target is None:
        scope = f"requests | where {role}"
    else:
        names = ", ".join(_kql_string(t) for t in targets or [target])
        scope = f"dependencies | where {role} and target in ({names})"
    columns = "timestamp, name, resultCode, duration, success, cloud_RoleInstance, operation_Id"
    return {"failures": f"{scope} | where success == false | project {columns} | order by timestamp desc | take 50",
            "slowest": f"{scope} | project {columns} | order by duration desc | take 50"}


def _kql_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)
