"""The map from the store's per-minute rollups equals the map from the raw rows (the three KQL
queries, `source=kql`): counts exactly, p95 within 5%. Traffic goes in through the real collector
(the track protocol and an import); retention is run on a real store."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from collector.kql import run_query
from collector.store import map_rollups
from collector.store.database import Store
from collector.store.schema import TABLES
from live.appmap import build_map, map_from_rollups

NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _envelope(ikey: str, kind: str, at: datetime, role: str, instance: str, data: dict, parent: str | None) -> dict:
    base = "RequestData" if kind == "request" else "RemoteDependencyData"
    tags = {"ai.cloud.role": role, "ai.cloud.roleInstance": instance, "ai.operation.id": "op"}
    if parent:
        tags["ai.operation.parentId"] = parent
    name = "Request" if kind == "request" else "RemoteDependency"
    return {"iKey": ikey, "time": at.isoformat() + "Z", "name": f"Microsoft.ApplicationInsights.{name}",
            "tags": tags, "data": {"baseType": base, "baseData": {"ver": 2, **data}}}


def _duration(ms: float) -> str:
    return f"0.00:00:{ms / 1000:09.6f}"


def traffic(front: dict, back: dict, count: int, seed: int) -> list[tuple[str, dict]]:
    """(instrumentation key, envelope): front's requests each call back (which answers as role
    'back' in its own service, most of the time), a database and an external API."""
    rng = random.Random(seed)
    out = []
    for number in range(count):
        at = NOW - timedelta(seconds=rng.uniform(5, 150 * 60))
        failed = rng.random() < 0.05
        ms = rng.lognormvariate(3, 1)
        out.append((front["instrumentation_key"], _envelope(
            front["instrumentation_key"], "request", at, "front", f"front-{number % 2}",
            {"id": f"r{seed}-{number:x}", "name": "POST /score", "duration": _duration(ms), "success": not failed,
             "responseCode": "500" if failed else "200"}, None)))
        for target, kind, dep_ms in (("back:8080", "HTTP", ms / 2), ("orders", "SQL", ms / 5),
                                     ("api.example.com", "HTTP", ms / 3)):
            dep_id = f"{rng.getrandbits(64):016x}"  # a W3C span id: the KQL links sample one per last hex digit
            dep_failed = rng.random() < 0.03
            out.append((front["instrumentation_key"], _envelope(
                front["instrumentation_key"], "dependency", at, "front", f"front-{number % 2}",
                {"id": dep_id, "name": f"call {target}", "target": target, "type": kind, "duration": _duration(dep_ms),
                 "success": not dep_failed, "resultCode": "500" if dep_failed else "200"}, None)))
            if target == "back:8080" and rng.random() < 0.9:
                out.append((back["instrumentation_key"], _envelope(
                    back["instrumentation_key"], "request", at, "back", f"back-{number % 3}",
                    {"id": f"b{seed}-{number:x}", "name": "GET /features", "duration": _duration(dep_ms * 0.9),
                     "success": not dep_failed, "responseCode": "500" if dep_failed else "200"}, dep_id)))
    return out


def send(collector, items: list[tuple[str, dict]]) -> None:
    with collector.client() as client:  # its own: `collector.http` is shared and must stay open
        for start in range(0, len(items), 500):
            response = client.post("/v2.1/track", content=orjson.dumps([e for _, e in items[start:start + 500]]))
            response.raise_for_status()
            assert response.json()["itemsAccepted"] == len(items[start:start + 500])


def assert_same_map(rolled: dict, raw: dict) -> None:
    assert {n["id"]: n["kind"] for n in rolled["nodes"]} == {n["id"]: n["kind"] for n in raw["nodes"]}
    raw_nodes = {n["id"]: n for n in raw["nodes"]}
    for node in rolled["nodes"]:
        reference = raw_nodes[node["id"]]
        for field in ("requests", "failed", "instances", "health"):
            assert node[field] == reference[field], (node["id"], field)
        _close(node["avgMs"], reference["avgMs"], 0.001, node["id"])
        _close(node["p95Ms"], reference["p95Ms"], 0.05, node["id"])
    assert {(e["source"], e["target"]) for e in rolled["edges"]} == {(e["source"], e["target"]) for e in raw["edges"]}
    raw_edges = {(e["source"], e["target"]): e for e in raw["edges"]}
    for edge in rolled["edges"]:
        reference = raw_edges[(edge["source"], edge["target"])]
        for field in ("calls", "failed", "targetKind", "types", "targets"):
            assert edge[field] == reference[field], (edge["source"], edge["target"], field)
        _close(edge["avgMs"], reference["avgMs"], 0.001, edge["source"], edge["target"])
        _close(edge["p95Ms"], reference["p95Ms"], 0.05, edge["source"], edge["target"])


def _close(value: float | None, reference: float | None, relative: float, *where: str) -> None:
    if reference is None:
        assert value is None, where
        return
    assert value == pytest.approx(reference, rel=relative, abs=0.02), where


def maps(collector, services: list[str], timespan: str) -> tuple[dict, dict]:
    with collector.admin as client:
        found = [client.get("/api/map", params={"timespan": timespan, "service": services, "source": source})
                 for source in ("rollups", "kql")]
    for response in found:
        response.raise_for_status()
    return found[0].json(), found[1].json()


def test_the_map_from_rollups_equals_the_map_from_the_rows(collector):
    front, back = collector.create_service("map-front"), collector.create_service("map-back")
    send(collector, traffic(front, back, 800, seed=1))
    names = [front["name"], back["name"]]
    middle = (NOW - timedelta(minutes=137, seconds=21)).isoformat(), (NOW - timedelta(minutes=4, seconds=43)).isoformat()
    inside = (NOW - timedelta(minutes=20, seconds=50)).isoformat(), (NOW - timedelta(minutes=20, seconds=10)).isoformat()
    for timespan in ("PT3H", "/".join(middle), "/".join(inside)):
        rolled, raw = maps(collector, names, timespan)
        assert_same_map(rolled, raw)
    rolled, _ = maps(collector, names, "PT3H")
    edges = {(e["source"], e["target"]): e for e in rolled["edges"]}
    assert edges[("front", "back")]["calls"] == 800  # a call to another service's role, resolved
    assert {n["id"] for n in rolled["nodes"]} == {"front", "back", "orders (database)", "api.example.com (http)"}
    assert {n["id"]: n["instances"] for n in rolled["nodes"] if n["kind"] == "role"} == {"front": 2, "back": 3}


def test_imported_rows_are_on_the_map(collector):
    service = collector.create_service("map-import")
    stamp = (NOW - timedelta(minutes=30)).isoformat() + "Z"
    rows = [{"itemType": "request", "timestamp": stamp, "cloud_RoleName": "scorer", "cloud_RoleInstance": "i-1",
             "name": "POST /score", "resultCode": code, "success": code == "200", "duration": 3.0 + n,
             "itemId": f"imp-{n}"} for n, code in enumerate(["200"] * 7 + ["500"] * 3)]
    rows.append({"itemType": "dependency", "timestamp": stamp, "cloud_RoleName": "scorer", "target": "cache",
                 "type": "Redis", "id": "x1", "success": True, "duration": 1.5, "itemId": "imp-dep"})
    lines = [orjson.dumps(row) for row in rows]
    assert collector.import_rows(service["name"], lines)["imported"] == 11
    assert collector.import_rows(service["name"], lines)["imported"] == 0  # stored once, counted once
    rolled, raw = maps(collector, [service["name"]], "PT1H")
    assert_same_map(rolled, raw)
    scorer = next(n for n in rolled["nodes"] if n["id"] == "scorer")
    assert (scorer["requests"], scorer["failed"]) == (10, 3)
    assert [(e["target"], e["calls"]) for e in rolled["edges"]] == [("cache (database)", 1)]


def _rows(table: str, service: str, start: datetime, count: int, role: str) -> dict:
    epoch = (start - datetime(1970, 1, 1)) // timedelta(microseconds=1)
    rows = [{"timestamp": epoch + 7_000_000 * n, "cloud_RoleName": role,
             "cloud_RoleInstance": f"{role}-{n % 2}", "id": f"{table[0]}{role}{n}", "duration": float(n % 40 + 1),
             "success": n % 9 != 0, "target": "db", "type": "SQL", "_service": service, "itemType": table}
            for n in range(count)]
    for row in rows:
        if table == "requests":
            row.pop("target"), row.pop("type")
    return {table: TABLES[table].to_arrow(rows)}


def test_retention_leaves_the_rollups_equal_to_the_rows_that_remain(tmp_path, monkeypatch):
    monkeypatch.setattr(map_rollups, "FOLD_SECONDS", 0)  # every commit rolls up and folds what it stored
    monkeypatch.setattr(map_rollups, "FLUSH_SECONDS", 0)
    store = Store(tmp_path / "data")
    try:
        start = datetime(2026, 1, 1, 10, 0, 0)
        for table in ("requests", "dependencies"):
            for part in range(3):  # 3 x 1,200 rows, 7 s apart: 7 hours
                store.writer.write(_rows(table, "svc", start + timedelta(seconds=8400 * part), 1200, "model")).result()
        store.writer.write(_rows("requests", "other", start, 100, "other")).result()
        cutoff = start + timedelta(hours=2, minutes=23, seconds=31)
        assert store.exports.delete_expired("svc", ["requests", "dependencies"], cutoff, {}) > 0
        end = start + timedelta(hours=9)
        timespan = f"{start.isoformat()}/{end.isoformat()}"

        def query(text: str) -> list[dict]:
            with store.reader() as cursor:
                result = run_query(cursor, text, services=None, timespan=timespan)
            return [dict(zip([n for n, _ in result.columns], row, strict=True)) for row in result.rows]

        rolled = map_from_rollups(store.map_rollups.map_rows(None, start, end), 540)
        raw = build_map(query, 540)
        assert_same_map(rolled, raw)
        model = next(n for n in rolled["nodes"] if n["id"] == "model")
        assert model["requests"] == 3 * 1200 - (2 * 3600 + 23 * 60 + 31 + 6) // 7
        assert next(n for n in rolled["nodes"] if n["id"] == "other")["requests"] == 100  # another service: kept
    finally:
        store.close()


def test_a_call_made_three_times_resolves_to_its_callee_in_whole_hours(tmp_path, monkeypatch):
    """Three calls are too few for the sampled links: the pairs seen arriving (callee first) resolve them."""
    monkeypatch.setattr(map_rollups, "FLUSH_SECONDS", 0)
    store = Store(tmp_path / "data")
    try:
        start = datetime(2026, 1, 1, 10, 0, 0)
        epoch = (start + timedelta(minutes=30) - datetime(1970, 1, 1)) // timedelta(microseconds=1)
        requests = [{"timestamp": epoch + n, "cloud_RoleName": "features", "operation_ParentId": f"call-{n}",
                     "duration": 2.0, "success": True, "_service": "svc", "itemType": "request"} for n in range(3)]
        calls = [{"timestamp": epoch + n, "cloud_RoleName": "model", "id": f"call-{n}", "target": "features:80",
                  "type": "HTTP", "duration": 3.0, "success": True, "_service": "svc", "itemType": "dependency"}
                 for n in range(3)]
        store.writer.write({"requests": TABLES["requests"].to_arrow(requests)}).result()
        store.writer.write({"dependencies": TABLES["dependencies"].to_arrow(calls)}).result()
        rolled = map_from_rollups(store.map_rollups.map_rows(None, start, start + timedelta(hours=3)), 180)
        assert [(e["source"], e["target"], e["calls"]) for e in rolled["edges"]] == [("model", "features", 3)]
    finally:
        store.close()
