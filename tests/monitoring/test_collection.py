"""Model data collection through `insights score`: an unmodified score.py using the real
azureml-ai-monitoring Collector, payload logging switched per service, the legacy
ModelDataCollector, and the join from modelData to requests (all real processes)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
from wrapper_process import Wrapper

SCRIPTS = Path(__file__).parent / "scripts"
IRIS = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
        {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}]


def _wrapper(script: str, service: dict, tmp_path: Path) -> Wrapper:
    wrapper = Wrapper("echo_score.py", service, tmp_path / "spool")
    wrapper.script = str(SCRIPTS / script)
    return wrapper.start()


def _eventually(query, collector, service: str, count: int, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = collector.query(query, service)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def test_real_collector_rows_join_their_requests(collector, tmp_path):
    service = collector.create_service("mdc")
    wrapper = _wrapper("mdc_score.py", service, tmp_path)
    request_ids = [str(uuid.uuid4()) for _ in range(3)]
    try:
        for request_id in request_ids:
            response = httpx.post(f"{wrapper.url}/score", json={"data": IRIS}, headers={"x-request-id": request_id})
            assert response.status_code == 200, response.text
            assert response.json() == [0, 1]
    finally:
        assert wrapper.stop() == 0
    name = service["name"]
    inputs = _eventually('modelData | where collection == "model_inputs" | extend f = toreal(data.sepal_length) '
                         '| project correlationId, operation_Id, rowIndex, f, endpoint, deployment', collector, name, 6)
    assert len(inputs) == 6
    assert sorted(r["f"] for r in inputs) == [5.1] * 3 + [6.7] * 3
    assert {r["correlationId"] for r in inputs} == set(request_ids)  # the request's id, not the library's uuid4
    assert {(r["endpoint"], r["deployment"]) for r in inputs} == {(name, "default")}
    outputs = _eventually('modelData | where collection == "model_outputs"', collector, name, 6)
    assert len(outputs) == 6
    joined = _eventually('modelData | where collection == "model_inputs" | join kind=inner '
                         '(requests | project operation_Id, resultCode, rid = tostring(customDimensions["Request Id"])) '
                         'on operation_Id | project correlationId, rid, resultCode', collector, name, 6)
    assert len(joined) == 6
    assert all(r["correlationId"] == r["rid"] and r["resultCode"] == "200" for r in joined)


def test_payload_logging_is_off_by_default_and_switched_per_service(collector, tmp_path):
    service = collector.create_service("payload")
    name = service["name"]
    wrapper = _wrapper("mdc_score.py", service, tmp_path)
    try:
        httpx.post(f"{wrapper.url}/score", json={"data": IRIS})
        with collector.admin as admin:
            answer = admin.put(f"/api/services/{name}/collection", json={"collect": ["request", "response"], "sample_rate": 1})
            assert answer.status_code == 200, answer.text
            bad = admin.put(f"/api/services/{name}/collection", json={"collect": ["body"]})
            assert bad.status_code == 400 and "body" in bad.text
        time.sleep(4)  # the wrapper polls every 2 s, its workers re-read the setting each second
        for _ in range(2):
            httpx.post(f"{wrapper.url}/score", json={"data": IRIS})
    finally:
        wrapper.stop()
    rows = _eventually('modelData | where collection in ("request", "response") | project collection, data, rowIndex',
                       collector, name, 4)
    assert sorted(r["collection"] for r in rows) == ["request", "request", "response", "response"]
    request = next(r for r in rows if r["collection"] == "request")
    assert json.loads(request["data"]) == {"data": IRIS} and request["rowIndex"] is None  # not tabular: kept whole
    with collector.admin as admin:
        counters = admin.get(f"/api/services/{name}/collection").json()["counters"]
    assert counters["non-tabular"] == 4 and counters["rows"] >= 8


def test_legacy_model_data_collector(collector, tmp_path):
    service = collector.create_service("legacy")
    wrapper = _wrapper("legacy_mdc_score.py", service, tmp_path)
    try:
        assert httpx.post(f"{wrapper.url}/score", json={"data": [[1, 2], [3, 4]]}).json() == [3, 7]
    finally:
        wrapper.stop()
    rows = _eventually('modelData | where collection == "model_inputs" | project a = toint(data.a), b = toint(data.b), '
                       'operation_Id', collector, service["name"], 2)
    assert sorted((r["a"], r["b"]) for r in rows) == [(1, 2), (3, 4)]
    assert all(r["operation_Id"] for r in rows)


def test_bad_collected_items_get_per_item_400s(collector):
    service = collector.create_service("bad-mdc")
    headers = {"x-instrumentation-key": service["instrumentation_key"]}
    body = b"\n".join([b'{"collection": "model_inputs", "data": [{"x": 1}]}', b'{"collection": "x", "data": 1, "bogus": 2}',
                       b'not json', b'{"data": []}'])
    answer = httpx.post(f"{collector.url}/api/modeldata", content=body, headers=headers)
    assert answer.status_code == 206
    errors = answer.json()["errors"]
    assert [e["index"] for e in errors] == [1, 2, 3]
    assert "bogus" in errors[0]["message"] and "collection" in errors[2]["message"]
    assert httpx.post(f"{collector.url}/api/modeldata", content=body).status_code == 401


def test_export_in_azure_mls_layout_beside_app_insights(collector, tmp_path):
    service = collector.create_service("export-mdc")
    name = service["name"]
    headers = {"x-instrumentation-key": service["instrumentation_key"]}
    moment = "2026-03-04T05:06:07.000000Z"
    body = b"\n".join([
        json.dumps({"collection": "model_inputs", "time": moment, "correlationId": "c1", "operationId": "o1",
                    "data": json.dumps([{"x": 1}, {"x": 2}])}).encode(),
        json.dumps({"collection": "model_outputs", "time": moment, "correlationId": "c1", "operationId": "o1",
                    "deployment": "blue", "data": [{"y": 0}]}).encode(),
        json.dumps({"collection": "model_inputs", "endpoint": "../escape", "data": [{"x": 1}]}).encode(),
    ])
    answer = httpx.post(f"{collector.url}/api/modeldata", content=body, headers=headers)
    assert answer.status_code == 206 and answer.json()["errors"][0]["index"] == 2  # no way out of the folder
    destination = tmp_path / "blob"
    with collector.admin as admin:
        configured = admin.put(f"/api/services/{name}/export", json={"destination": str(destination),
                                                                     "types": ["Requests", "ModelData"]})
        assert configured.status_code == 200, configured.text
        assert admin.post(f"/api/services/{name}/export/run", params={"wait": "true"}).status_code == 200
    files = sorted(str(p.relative_to(destination)) for p in destination.rglob("*.jsonl"))
    assert [f.rsplit("/", 1)[0] for f in files] == [
        f"modelDataCollector/{name}/blue/model_outputs/2026/03/04/05",
        f"modelDataCollector/{name}/default/model_inputs/2026/03/04/05",
    ]
    event = json.loads((destination / files[1]).read_text())
    assert event["type"] == "azureml.inference.model_inputs" and event["data"] == [{"x": 1}, {"x": 2}]
    assert event["correlationid"] == "c1" and event["operationid"] == "o1" and event["specversion"] == "1.0"
    assert event["time"] == moment and event["contentrange"] == "bytes 0-16/17"  # [{"x":1},{"x":2}]


def test_retention_per_service_covers_model_data(collector, tmp_path):
    service = collector.create_service("retain-mdc")
    name = service["name"]
    old = time.time() - 3 * 86_400
    body = b"\n".join(json.dumps({"collection": "model_inputs", "time": moment, "data": [{"x": 1}]}).encode()
                      for moment in (old, old, time.time()))
    assert httpx.post(f"{collector.url}/api/modeldata", content=body,
                      headers={"x-instrumentation-key": service["instrumentation_key"]}).status_code == 200
    with collector.admin as admin:
        assert admin.put(f"/api/services/{name}/export", json={"destination": str(tmp_path / "blob"), "types": ["Requests"],
                                                               "retention_days": 1}).status_code == 200
        assert admin.post(f"/api/services/{name}/export/run", params={"wait": "true"}).status_code == 200
    assert collector.query("modelData | count", name)[0]["Count"] == 1
