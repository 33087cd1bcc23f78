"""The track protocol as the real service answers it, and bad input answered with clear 4xx."""

import gzip
import json
import zlib

import pytest
from wait import rows_eventually


def message(ikey: str, text: str = "hello", **extra) -> dict:
    return {
        "iKey": ikey, "time": "2026-11-23T16:53:49.943891Z", "name": "Microsoft.ApplicationInsights.Message",
        "tags": {"ai.operation.id": "op-1", "ai.cloud.role": "score.py"},
        "data": {"baseType": "MessageData", "baseData": {"message": text, "severityLevel": 1, **extra}},
    }


def post(collector, body, path="/v2.1/track", **headers):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return collector.http.post(collector.url + path, content=content, headers={"content-type": "application/json", **headers})


def test_double_slash_path_of_azure_sdks_is_served(app_collector):
    service = app_collector.create_service()
    response = post(app_collector, [message(service["instrumentation_key"])], path="//v2.1/track")
    assert response.status_code == 200
    assert response.json() == {"itemsReceived": 1, "itemsAccepted": 1, "errors": []}


def test_gzip_ndjson_on_v2_track(app_collector):
    service = app_collector.create_service()
    lines = b"\n".join(json.dumps(message(service["instrumentation_key"], f"m{i}")).encode() for i in range(3))
    response = post(app_collector, gzip.compress(lines), path="/v2/track",
                    **{"content-encoding": "gzip", "content-type": "application/x-json-stream"})
    assert response.json() == {"itemsReceived": 3, "itemsAccepted": 3, "errors": []}
    deflated = post(app_collector, zlib.compress(lines), path="/v2/track", **{"content-encoding": "deflate"})
    assert deflated.json()["itemsAccepted"] == 3
    assert [r["message"] for r in rows_eventually(app_collector, "traces", service, count=6)] == ["m0", "m1", "m2"] * 2


def test_partial_success_names_index_and_field(app_collector):
    service = app_collector.create_service()
    ikey = service["instrumentation_key"]
    bad_time = message(ikey)
    bad_time["time"] = "yesterday"
    no_message = message(ikey)
    del no_message["data"]["baseData"]["message"]
    wrong_type = message(ikey)
    wrong_type["data"]["baseData"]["properties"] = ["not", "an", "object"]
    response = post(app_collector, [message(ikey), bad_time, message("00000000-0000-0000-0000-00000000dead"), no_message, wrong_type])
    assert response.status_code == 206
    body = response.json()
    assert (body["itemsReceived"], body["itemsAccepted"]) == (5, 1)
    errors = {e["index"]: e["message"] for e in body["errors"]}
    assert set(errors) == {1, 2, 3, 4}
    assert all(e["statusCode"] == 400 for e in body["errors"])
    assert errors[1].startswith("time:")
    assert errors[2] == "invalid instrumentation key"
    assert errors[3] == "data.baseData.message: missing"
    assert errors[4].startswith("data.baseData.properties: expected a JSON object")


def test_nothing_valid_is_400(app_collector):
    response = post(app_collector, [{"iKey": "x"}, 3])
    assert response.status_code == 400
    assert [e["index"] for e in response.json()["errors"]] == [0, 1]


@pytest.mark.parametrize(
    "content, headers, status, words",
    [
        (b"", {}, 400, "empty"),
        (b"[{\"iKey\": ", {}, 400, "not valid JSON"),
        (b"\x1f\x8b\x08\x00garbage", {"content-encoding": "gzip"}, 400, "not valid gzip"),
        (gzip.compress(b"[]")[:-6], {"content-encoding": "gzip"}, 400, "truncated"),
        (b"[\"\xff\xfe\"]", {}, 400, "UTF-8"),
        (b"[]", {"content-encoding": "br"}, 415, "Content-Encoding"),
        (b"<xml/>", {"content-type": "application/xml"}, 415, "Content-Type"),
    ],
)
def test_bad_bodies_get_clear_4xx(app_collector, content, headers, status, words):
    response = post(app_collector, content, **headers)
    assert response.status_code == status
    assert words in response.json()["errors"][0]["message"]
    assert app_collector.http.get("/healthz").status_code == 200


def test_oversized_body_is_413_naming_the_limit(app_collector):
    response = post(app_collector, b"[" + b" " * (33 * 2**20) + b"]")
    assert response.status_code == 413
    assert "33554432 bytes" in response.json()["errors"][0]["message"]
    bomb = gzip.compress(b"[" + b" " * (70 * 2**20) + b"]")
    response = post(app_collector, bomb, **{"content-encoding": "gzip"})
    assert response.status_code == 413 and "decompressed" in response.json()["errors"][0]["message"]


def test_disabled_service_is_acknowledged_not_stored_and_counted(app_collector):
    service = app_collector.create_service(enable_app_insights=False)
    response = post(app_collector, [message(service["instrumentation_key"])] * 4)
    assert response.json() == {"itemsReceived": 4, "itemsAccepted": 4, "errors": []}
    assert rows_eventually(app_collector, "traces", service, count=0, timeout=0.3) == []
    with app_collector.admin as admin:
        stats = admin.get(f"/api/services/{service['name']}/stats").json()
    assert (stats["received"], stats["accepted"], stats["dropped_disabled"]) == (4, 0, 4)


def test_counters_account_for_every_item(app_collector):
    service = app_collector.create_service()
    ikey = service["instrumentation_key"]
    broken = message(ikey)
    broken["data"]["baseData"]["severityLevel"] = "loud"
    post(app_collector, [message(ikey), message(ikey), broken])
    with app_collector.admin as admin:
        stats = admin.get(f"/api/services/{service['name']}/stats").json()
    assert stats["received"] == 3 and stats["accepted"] == 2 and stats["rejected"] == 1
    assert stats["rejected_by_reason"] == {"invalid item": 1}


def test_item_over_64kb_is_capped_and_spilled_whole(app_collector):
    service = app_collector.create_service()
    big = "x" * 100_000
    item = message(service["instrumentation_key"], "big input", properties={"Contents": big, "small": "kept"})
    assert post(app_collector, [item]).json()["itemsAccepted"] == 1
    (row,) = rows_eventually(app_collector, "traces", service)
    dims = row["customDimensions"]
    assert dims["capped"] == "True" and int(dims["originalSize"]) > 100_000
    assert dims["small"] == "kept"
    assert dims["Contents"].startswith("xxxx") and "[capped:" in dims["Contents"]
    assert len(json.dumps(row)) < 64 * 1024
    spilled = app_collector.data_dir / "blob" / dims["payloadRef"]
    assert json.loads(spilled.read_bytes())["data"]["baseData"]["properties"]["Contents"] == big
    with app_collector.admin as admin:
        stats = admin.get(f"/api/services/{service['name']}/stats").json()
    assert (stats["capped"], stats["spilled"]) == (1, 1)


def test_lenient_where_sdks_are_loose(app_collector):
    service = app_collector.create_service()
    ikey = service["instrumentation_key"]
    loose = message(ikey, properties={"n": 3, "flag": True, "items": [1, 2], "none": None})
    loose["time"] = "2026-11-23T16:53:51.964219"  # naive, as opencensus metrics send it
    loose["data"]["baseData"]["severityLevel"] = "Warning"
    request = {
        "iKey": ikey, "time": "2026-11-23T16:53:49.9438912Z", "name": "Microsoft.ApplicationInsights.Request",
        "data": {"baseType": "RequestData", "baseData": {"id": "a", "name": "GET /", "duration": "00:00:01.5000000",
                                                         "responseCode": 200, "success": "false"}},
    }
    unknown = {"iKey": ikey, "time": "2026-11-23T16:53:49Z", "data": {"baseType": "FancyData", "baseData": {"name": "n", "x": 1}}}
    assert post(app_collector, [loose, request, unknown]).json()["itemsAccepted"] == 3
    (trace,) = rows_eventually(app_collector, "traces", service)
    assert trace["severityLevel"] == 2
    assert trace["timestamp"].startswith("2026-11-23T16:53:51.964219")
    assert trace["customDimensions"] == {"n": "3", "flag": "True", "items": [1, 2], "none": None}
    (req,) = rows_eventually(app_collector, "requests", service)
    assert (req["duration"], req["resultCode"], req["success"], req["performanceBucket"]) == (1500.0, "200", False, "1sec-3sec")
    (kept,) = rows_eventually(app_collector, "unknownTelemetry", service)
    assert kept["baseType"] == "FancyData" and kept["payload"] == {"name": "n", "x": 1}
