"""`insights store copy` moves the state beside telemetry (collector/store/clickhouse/copy_state.py):
a DuckDB store holding a service, payload settings, an alert rule with an instance and learned
values, an action group, an availability test, an endpoint with two deployments, a registered
model, a monitor reference and a monitor is copied into ClickHouse (the stand-in); a second copy
adds nothing; a collector started on the ClickHouse store lists the same, the service's API key
still works and the model downloads byte for byte. The rule, test and monitor are disabled so that
the collector on ClickHouse neither evaluates, probes nor runs them while the test reads them.

The DuckDB store is filled through its own store classes in this process (what the collector's
API handlers call), not through a collector: a DuckDB collector would start the endpoint's hosts."""

from __future__ import annotations

import asyncio
import io
import tarfile
from datetime import UTC, datetime, timedelta

import pytest
from collector_process import CollectorProcess, free_port
from store_helpers import connection, eventually, insights, migrated_url

from alerts.specs import action_group_spec, availability_spec, rule_spec
from collector.store.alerts import Evaluation, Instance, Value
from collector.store.clickhouse.copy_state import KINDS, copy_state
from collector.store.database import Store
from collector.store.endpoints import Deployment, Endpoint, new_key
from collector.store.services import Collection, Registry
from monitoring.definition import MonitorSpec

SERVICE = "copied"
MODEL_BYTES = b"weights " * 1000
WINDOW_END = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0) - timedelta(hours=1)


def _fill(store: Store, port: int) -> dict:
    """Every kind of state, as the collector's API stores it; what the API should list after the copy."""
    with store.reader() as cursor:
        registry = Registry(cursor, store.writer)
    service = asyncio.run(registry.create(SERVICE))
    asyncio.run(store.collection.set(SERVICE, Collection(("request",), 0.5)))
    rule = rule_spec({"name": "busy", "query": "requests", "threshold": 5, "action_groups": ["ops"], "enabled": False}, 60)
    store.alerts.save_action_group(SERVICE, "ops", action_group_spec({"name": "ops", "emails": ["ops@example.com"]}))
    store.alerts.save_rule(SERVICE, "busy", rule, True)
    fired = Instance(SERVICE, "busy", "{}", {}, "Fired", "alert-1", WINDOW_END, None, 9.0, 5.0, [True])
    values = [Value("{}", WINDOW_END - timedelta(minutes=n), float(n)) for n in range(3)]
    assert store.alerts.commit_evaluation(Evaluation(SERVICE, "busy", WINDOW_END, [fired], values, []))
    store.availability.save(SERVICE, "ping", availability_spec({"name": "ping", "url": "https://example.com/health", "enabled": False}, 60))
    endpoint = Endpoint("ep-copied", port, new_key(), new_key(), {"blue": 80, "green": 20}, {}, 50, 5000)
    store.endpoints.create(endpoint).result()
    for name in ("blue", "green"):
        store.endpoints.put_deployment(Deployment("ep-copied", name, f"/nowhere/{name}_score.py")).result()
    archive = store.models.staging_path()
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("model.bin")
        info.size = len(MODEL_BYTES)
        tar.addfile(info, io.BytesIO(MODEL_BYTES))
    asyncio.run(store.models.register("clf", archive, "a classifier", {"team": "ml"}))
    store.monitors.save_reference(SERVICE, "baseline", {"rows": 10, "features": {}}, 10).result()
    monitor = MonitorSpec(reference="baseline", window_seconds=3600, enabled=False).model_dump()
    store.monitors.save_monitor(SERVICE, "drift", monitor).result()
    store.monitors.mark_window(SERVICE, "drift", WINDOW_END).result()
    return {"api_key": service.api_key, "endpoint": endpoint}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("duckdb-state") / "data"
    store = Store(data_dir)
    try:
        filled = _fill(store, free_port())
    finally:
        store.close()
    return data_dir, filled


def test_store_copy_moves_the_state_once_and_a_collector_on_clickhouse_lists_it(clickhouse_server, source, tmp_path):
    data_dir, filled = source
    url = migrated_url(clickhouse_server, "copystate")
    first = insights(clickhouse_server, "store", "copy", "--from", str(data_dir), "--store", url)
    assert first.returncode == 0, first.stderr
    assert ("copied state: services 1, alert rules 1, action groups 1, availability tests 1, endpoints 1, "
            "models 1, monitor references 1, monitors 1") in first.stdout, first.stdout

    conn = connection(clickhouse_server, url)
    again = {r.table: r for r in copy_state(data_dir, conn)}  # what the command runs, in this process
    assert list(again) == list(KINDS)
    assert all(r.inserted == 0 and r.skipped == r.source_rows == 1 for r in again.values()), again

    collector = CollectorProcess(tmp_path / "ch-data", env={"INSIGHTS_STORE": url,
                                                            "INSIGHTS_STORE_PASSWORD": clickhouse_server.password})
    collector.start(timeout=90)
    try:
        _check_listed(collector, filled)
    finally:
        collector.stop()


def _check_listed(collector: CollectorProcess, filled: dict) -> None:
    with collector.client({"x-api-key": filled["api_key"]}) as own:  # the service's key, copied with it
        assert own.get(f"/api/services/{SERVICE}").status_code == 200
    with collector.admin as http:
        assert SERVICE in [s["name"] for s in http.get("/api/services").json()]
        collection = http.get(f"/api/services/{SERVICE}/collection").json()
        assert (collection["collect"], collection["sample_rate"]) == (["request"], 0.5)
        rules = http.get(f"/api/services/{SERVICE}/alert-rules").json()
        assert [(r["name"], r["query"], r["threshold"], r["action_groups"]) for r in rules] == [("busy", "requests", 5, ["ops"])]
        assert [g["name"] for g in http.get(f"/api/services/{SERVICE}/action-groups").json()] == ["ops"]
        tests = http.get(f"/api/services/{SERVICE}/availability-tests").json()
        assert [(t["name"], t["url"]) for t in tests] == [("ping", "https://example.com/health")]
        endpoint = http.get("/api/endpoints/ep-copied", params={"keys": True}).json()
        assert endpoint["traffic"] == {"blue": 80, "green": 20} and endpoint["primary_key"] == filled["endpoint"].primary_key
        assert sorted(d["name"] for d in endpoint["deployments"]) == ["blue", "green"]
        models = http.get("/api/models").json()
        assert [(m["id"], m["description"], m["tags"]) for m in models] == [("clf:1", "a classifier", {"team": "ml"})]
        with tarfile.open(fileobj=io.BytesIO(http.get("/api/models/clf/versions/1/content").content)) as tar:
            assert tar.extractfile("model.bin").read() == MODEL_BYTES  # type: ignore[union-attr]
        monitors = http.get(f"/api/services/{SERVICE}/monitors").json()
        assert [(m["name"], m["reference"]) for m in monitors] == [("drift", "baseline")]
        assert [r["name"] for r in http.get(f"/api/services/{SERVICE}/monitor-references").json()] == ["baseline"]
        values = http.get(f"/api/services/{SERVICE}/alert-rules/busy/values", params={"hours": 24}).json()
        assert values, values
    instances = eventually(lambda: _instances(collector))
    assert [(i["state"], i["alert_id"]) for i in instances] == [("Fired", "alert-1")]


def _instances(collector: CollectorProcess) -> list[dict]:
    with collector.admin as http:
        return http.get(f"/api/services/{SERVICE}/alerts").json()
