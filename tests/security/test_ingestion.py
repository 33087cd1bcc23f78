"""Ingestion under bad values (#14, items 3 and 6, and the low ones of ingestion): a value out of a
column's range, not finite, nested too deep or at an impossible time is its own item's 400 (206 for
the batch, the valid items stored), never a 500 that loses the batch and that SDKs resend for ever;
a small body that expands a lot is prepared off the event loop; a payload spill on a full disk is a
503 with Retry-After that leaves no file behind and does not take the collector down."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
import uuid
import zlib
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from wait import rows_eventually

ROOT = Path(__file__).resolve().parent.parent.parent
INT_RANGE = "-2147483648 to 2147483647"
TIME_RANGE = "0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"


def nested(levels: int) -> dict:
    """A JSON object nesting `levels` objects (valid JSON: orjson reads up to 1024)."""
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def envelope(ikey: str, base_type: str, base: dict, **top) -> dict:
    return {"iKey": ikey, "time": "2026-11-23T16:53:49.943891Z", "tags": {"ai.cloud.role": "sec"},
            "data": {"baseType": base_type, "baseData": base}, **top}


def message(ikey: str, text: str, **top) -> dict:
    return envelope(ikey, "MessageData", {"message": text}, **top)


def metric(ikey: str, name: str, value: float = 1.0, **fields) -> dict:
    return envelope(ikey, "MetricData", {"metrics": [{"name": name, "value": value, **fields}]})


def post(collector, items: list, python_json: bool = False):
    """POST a track body: orjson, or Python's json module as opencensus writes it (NaN, Infinity)."""
    body = json.dumps(items).encode() if python_json else orjson.dumps(items)
    return collector.http.post("/v2.1/track", content=body, headers={"content-type": "application/json"})


def errors_by_index(response) -> dict[int, str]:
    body = response.json()
    assert all(error["statusCode"] == 400 for error in body["errors"]), body
    return {error["index"]: error["message"] for error in body["errors"]}


def test_a_count_or_sample_rate_that_overflows_its_column_is_that_items_400(app_collector):
    service = app_collector.create_service("sec-int")
    ikey = service["instrumentation_key"]
    items = [
        message(ikey, "kept-1"),
        metric(ikey, "histogram", 90.0, count=2**31),  # a cumulative count past 2^31
        metric(ikey, "tracked", 5.0, count=1e12),
        message(ikey, "sampled away", sampleRate=1e-9),
        metric(ikey, "fine", 7.0, count=2**31 - 1),
        message(ikey, "kept-2", sampleRate=4.7e-8),
    ]
    response = post(app_collector, items)
    assert response.status_code == 206, response.text
    assert response.json()["itemsAccepted"] == 3
    errors = errors_by_index(response)
    assert set(errors) == {1, 2, 3}
    assert errors[1].startswith("data.baseData.metrics[0].count: 2147483648 does not fit valueCount") and INT_RANGE in errors[1]
    assert errors[2].startswith("data.baseData.metrics[0].count: 1000000000000 does not fit valueCount")
    assert errors[3].startswith("sampleRate: 1e-09") and "expected a percentage from 4.65" in errors[3]
    (fine,) = rows_eventually(app_collector, "customMetrics", service)
    assert (fine["name"], fine["valueCount"]) == ("fine", 2**31 - 1)
    traces = rows_eventually(app_collector, "traces", service, count=2)
    assert sorted((row["message"], row["itemCount"]) for row in traces) == [("kept-1", 1), ("kept-2", 2127659574)]


def test_an_otlp_histogram_count_past_2_31_is_refused_point_by_point(app_collector):
    service = app_collector.create_service("sec-otlp")
    request = ExportMetricsServiceRequest()
    scope = request.resource_metrics.add().scope_metrics.add()
    histogram = scope.metrics.add(name="latency_ms").histogram
    histogram.aggregation_temporality = 2  # cumulative: what a long-running service reaches 2^31 with
    for count in (2**31 + 5, 10):
        point = histogram.data_points.add(time_unix_nano=1_795_000_000_000_000_000, count=count, sum=123.0)
        point.attributes.add(key="route").value.string_value = f"/c{count}"
    response = app_collector.http.post(
        "/v1/metrics", content=request.SerializeToString(),
        headers={"content-type": "application/x-protobuf", "x-instrumentation-key": service["instrumentation_key"]},
    )
    assert response.status_code == 200, response.text  # OTLP's partial success
    (row,) = rows_eventually(app_collector, "customMetrics", service)
    assert (row["valueCount"], row["customDimensions"]["route"]) == (10, "/c10")
    with app_collector.admin as admin:
        stats = admin.get(f"/api/services/{service['name']}/stats").json()
    assert (stats["accepted"], stats["received"]) == (1, 2)


def test_import_lines_out_of_range_are_reported_and_the_others_kept(app_collector):
    service = app_collector.create_service("sec-import")
    lines = [
        {"itemType": "trace", "timestamp": "2026-11-23T16:53:49Z", "message": "kept", "itemCount": 3},
        {"itemType": "trace", "timestamp": "2026-11-23T16:53:49Z", "message": "huge", "itemCount": 10**12},
        {"itemType": "customMetric", "timestamp": "2026-11-23T16:53:49Z", "name": "m", "value": 1.0, "valueCount": 2**31},
        {"itemType": "trace", "timestamp": "2026-11-23T16:53:49Z", "message": "deep", "customDimensions": nested(300)},
        {"itemType": "trace", "timestamp": "9999-12-31T23:59:59-01:00", "message": "year 10000"},
        {"itemType": "request", "timestamp": "2026-11-23T16:53:49Z", "name": "n", "duration": 1e400},
    ]
    result = app_collector.import_rows(service["name"], [json.dumps(line).encode() for line in lines])  # Infinity too
    assert (result["lines"], result["imported"]) == (6, 1)
    errors = {error["line"]: error["message"] for error in result["errors"]}
    assert errors[2].startswith("itemCount: 1000000000000 does not fit itemCount") and INT_RANGE in errors[2]
    assert errors[3].startswith("valueCount: 2147483648 does not fit valueCount")
    assert errors[4] == "customDimensions.a: nested deeper than 100 levels of objects and arrays"
    assert errors[5].startswith("timestamp: '9999-12-31T23:59:59-01:00' is outside the accepted range") and TIME_RANGE in errors[5]
    assert errors[6].startswith("line 6") or "not valid JSON" in errors[6]
    (row,) = rows_eventually(app_collector, "traces", service)
    assert (row["message"], row["itemCount"]) == ("kept", 3)


def test_timestamps_before_year_1_or_after_9999_are_refused_with_the_range(app_collector):
    """Year 0 passed the column-wise parse (Arrow reads it); an offset pushed 9999-12-31 into year
    10000 in the mapper; both were stored and then broke the export-import round trip."""
    service = app_collector.create_service("sec-time")
    ikey = service["instrumentation_key"]
    for odd in ("0000-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"):
        items = [message(ikey, f"before {odd}"), {**message(ikey, "odd"), "time": odd}, message(ikey, f"after {odd}")]
        response = post(app_collector, items)
        assert response.status_code == 206, (odd, response.text)
        (problem,) = errors_by_index(response).values()
        assert problem.startswith("time: ") and TIME_RANGE in problem and odd in problem
    edges = [{**message(ikey, "first"), "time": "0001-01-01T00:00:00Z"},
             {**message(ikey, "last"), "time": "9999-12-31T23:59:59.999999Z"}]
    assert post(app_collector, edges).status_code == 200
    rows_eventually(app_collector, "traces", service, count=8)


def test_dynamic_values_nested_deep_are_that_items_400(app_collector):
    service = app_collector.create_service("sec-deep")
    ikey = service["instrumentation_key"]
    deep = nested(300)
    items = [
        message(ikey, "kept-1"),
        envelope(ikey, "MessageData", {"message": "deep", "properties": {"input": deep}}),
        envelope(ikey, "FutureData", {"name": "payload", "x": deep}),
        envelope(ikey, "ExceptionData", {"exceptions": [{"typeName": "E", "message": "m", "id": deep}]}),
        {**message(ikey, "tag"), "tags": {"ai.cloud.role": nested(900)}},
        envelope(ikey, "MessageData", {"message": "kept-2", "properties": {"input": nested(99)}}),
    ]
    response = post(app_collector, items, python_json=True)  # orjson writes at most 255 levels
    assert response.status_code == 206, response.text
    assert errors_by_index(response) == {
        1: "data.baseData.properties.input: nested deeper than 100 levels of objects and arrays",
        2: "data.baseData.x: nested deeper than 100 levels of objects and arrays",
        3: "data.baseData.exceptions: nested deeper than 100 levels of objects and arrays",
        4: "tags.ai.cloud.role: nested deeper than 100 levels of objects and arrays",
    }
    rows = rows_eventually(app_collector, "traces", service, count=2)
    assert [row["message"] for row in rows] == ["kept-1", "kept-2"]


def test_nan_and_infinity_as_python_json_writes_them_spoil_only_their_item(app_collector):
    """opencensus serialises with json.dumps, which writes NaN and Infinity: the batch was a 400."""
    service = app_collector.create_service("sec-nan")
    ikey = service["instrumentation_key"]
    items = [
        message(ikey, "kept-1"),
        metric(ikey, "gauge", float("nan")),
        metric(ikey, "peak", 1.0, max=float("inf")),
        envelope(ikey, "EventData", {"name": "e", "measurements": {"x": float("-inf")}}),
        message(ikey, "kept-2"),
    ]
    response = post(app_collector, items, python_json=True)
    assert response.status_code == 206, response.text
    assert errors_by_index(response) == {
        1: "data.baseData.metrics[0].value: expected a finite number, got nan",
        2: "data.baseData.metrics[0].max: expected a finite number, got inf",
        3: "data.baseData.measurements.x: expected a finite number, got -inf",
    }
    assert [row["message"] for row in rows_eventually(app_collector, "traces", service, count=2)] == ["kept-1", "kept-2"]


def test_a_small_body_is_judged_by_what_it_expands_to(app_collector, monkeypatch):
    """A deflate body that expands 250:1 was prepared in the event loop (judged by its compressed
    size times 8); now what it expands to decides, and a small body is decompressed once."""
    service = app_collector.create_service("sec-ratio")
    ikey = service["instrumentation_key"]
    pipeline = app_collector.app.state.pipeline
    calls = []
    original = pipeline._prepare_and_commit

    async def spy(small, prepare, *args):
        calls.append((small, args[0], args[1]))
        return await original(small, prepare, *args)

    monkeypatch.setattr(pipeline, "_prepare_and_commit", spy)
    padding = " " * 50_000  # compresses to nothing
    bomb = [message(ikey, f"bomb-{index}{padding}") for index in range(40)]  # ~2 MB of JSON
    raw = orjson.dumps(bomb)
    deflated = zlib.compress(raw, 9)
    assert len(raw) > 250 * len(deflated)
    response = app_collector.http.post("/v2.1/track", content=deflated, headers={"content-encoding": "deflate"})
    assert response.status_code == 200, response.text
    assert calls[-1] == (False, deflated, "deflate")  # to the pool, still compressed

    rng = random.Random(14)
    noisy = [message(ikey, f"noisy-{index}-" + "".join(rng.choice("abcdef0123456789") for _ in range(400)))
             for index in range(105)]
    raw = orjson.dumps(noisy)
    gzipped = gzip.compress(raw)
    assert len(raw) <= 64 * 1024 < 8 * len(gzipped)  # the old rule sent this one to the pool
    response = app_collector.http.post("/v2.1/track", content=gzipped, headers={"content-encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert calls[-1] == (True, raw, None)  # inline, from the bytes decompressed to judge it
    rows_eventually(app_collector, "traces", service, count=145)


def _big(ikey: str, tag: str) -> dict:
    return envelope(ikey, "MessageData", {"message": tag + "x" * 70_000})


def test_a_payload_spill_that_fails_is_a_503_that_leaves_no_file(app_collector):
    """A full disk, simulated without root: the service's payload folder is a plain file, so the
    spill cannot create its folder, as a full or read-only disk refuses a write. The body with a
    big item for that service and one for another is refused whole (503, Retry-After); the other
    service's original, written first, is removed; the collector stays up and takes the body
    once the disk has room."""
    ok_service = app_collector.create_service("sec-spill-ok")
    full_service = app_collector.create_service("sec-spill-full")
    payloads = app_collector.data_dir / "blob" / "payloads"
    payloads.mkdir(parents=True, exist_ok=True)
    blocker = payloads / full_service["name"]
    blocker.write_bytes(b"")
    items = [message(ok_service["instrumentation_key"], "small"), _big(ok_service["instrumentation_key"], "first"),
             _big(full_service["instrumentation_key"], "second")]
    response = post(app_collector, items)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    assert "cannot keep the original of an item over 64 KB" in response.text
    assert not list((payloads / ok_service["name"]).glob("*")), "no orphan payload"
    assert app_collector.http.get("/healthz").status_code == 200
    assert app_collector.query("traces | count", service=ok_service["name"]) == [{"Count": 0}]

    blocker.unlink()
    response = post(app_collector, items)
    assert response.status_code == 200, response.text
    for service in (ok_service, full_service):
        (path,) = (payloads / service["name"]).glob("*.json")
        assert path.stat().st_size > 70_000


def test_a_spill_that_fails_half_written_removes_its_file(tmp_path):
    """A disk that fills in the middle of the write: a file-size limit (RLIMIT_FSIZE, no root) makes
    the write fail after its first bytes, as ENOSPC would; the half-written file used to stay."""
    script = f"""
import resource, sys
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from collector.ingest.cap import Spill
try:
    from collector.ingest.cap import SpillFailed
except ImportError:  # the code before the fix raised the OSError itself
    SpillFailed = OSError
resource.setrlimit(resource.RLIMIT_FSIZE, (16_384, 16_384))
spill = Spill(Path({str(tmp_path)!r}))
first = spill.write("svc", "small", {{"message": "x" * 1_000}})
try:
    spill.write("svc", "big", {{"message": "x" * 200_000}})
except SpillFailed as error:
    print("refused:", error)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.rglob("*.json")), "the half-written file, and the body's other one, are removed"
    assert result.stdout.startswith("refused: cannot keep the original of an item over 64 KB: ")


EXTREMES = [
    2**31, -(2**31) - 1, 2**63, 2**64 - 1, -(2**63), 10**30, 1e12, 1e308, -1e308, 1e-320, 1e-9, 0, -1,
    float("nan"), float("inf"), float("-inf"), True, "1e400", "nan", "²", "9" * 5000, None, [], {},
    nested(99), nested(101), nested(300), [nested(100)],
]
TIMES = [
    "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59.9999999Z",
    "10000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "1969-12-31T23:59:59.999999Z", 2**63,
    float("nan"), nested(300),
]
extremes = st.sampled_from(EXTREMES) | st.integers() | st.floats()
templates = st.sampled_from([
    ("MetricData", {"metrics": [{"name": "m", "value": 1.0, "count": 2, "min": 0.5, "max": 1.5, "stdDev": 0.1}]}),
    ("RequestData", {"id": "1", "name": "POST /score", "duration": 12.5, "responseCode": "200", "success": True,
                     "measurements": {"ms": 1.0}, "properties": {"p": "v"}}),
    ("RemoteDependencyData", {"name": "GET /", "duration": "0.00:00:00.100", "resultCode": "200", "type": "HTTP"}),
    ("MessageData", {"message": "m", "severityLevel": 1, "properties": {"p": "v"}}),
    ("EventData", {"name": "e", "measurements": {"x": 1.0}}),
    ("ExceptionData", {"exceptions": [{"typeName": "E", "message": "m", "id": 1, "outerId": 0,
                                        "parsedStack": [{"level": 0, "method": "f", "line": 3}]}], "severityLevel": 3}),
    ("FutureData", {"name": "f", "value": 1}),
])
PATHS = [
    ("sampleRate",), ("time",), ("data", "baseData", "metrics", 0, "value"), ("data", "baseData", "metrics", 0, "count"),
    ("data", "baseData", "metrics", 0, "min"), ("data", "baseData", "metrics", 0, "stdDev"), ("data", "baseData", "duration"),
    ("data", "baseData", "measurements", "ms"), ("data", "baseData", "severityLevel"), ("data", "baseData", "properties", "p"),
    ("data", "baseData", "exceptions", 0, "id"), ("data", "baseData", "exceptions", 0, "parsedStack", 0, "line"),
    ("data", "baseData", "value"), ("tags", "ai.operation.id"),
]


@st.composite
def mutated(draw, ikey: str) -> dict:
    base_type, base = draw(templates)
    item = envelope(ikey, base_type, json.loads(json.dumps(base)))
    for path in draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3)):
        value = draw(st.sampled_from(TIMES) | extremes) if path == ("time",) else draw(extremes)
        target = item
        for key in path[:-1]:
            if isinstance(target, dict):
                target = target.setdefault(key, {})
            elif isinstance(target, list) and isinstance(key, int) and key < len(target):
                target = target[key]
            else:
                break
        else:
            last = path[-1]
            if isinstance(target, dict) or (isinstance(target, list) and isinstance(last, int) and last < len(target)):
                target[last] = value
    return item


def test_extreme_numbers_and_times_never_spoil_the_valid_items(app_collector):
    """Valid envelopes of every kind with numeric and timestamp fields mutated to extremes, among
    valid messages, written as Python's json module writes them: 200, 206 or 400, never a 5xx, and
    every valid message stored."""
    service = app_collector.create_service("sec-fuzz")
    ikey = service["instrumentation_key"]
    sent = []

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(mutated(ikey), min_size=1, max_size=5), st.randoms(use_true_random=False))
    def check(bad, rng):
        marker = uuid.uuid4().hex
        good = [message(ikey, f"valid-{marker}-{index}") for index in range(3)]
        items = good + bad
        rng.shuffle(items)
        response = post(app_collector, items, python_json=True)
        assert response.status_code in (200, 206), response.text
        body = response.json()
        assert body["itemsReceived"] == len(items)
        assert body["itemsAccepted"] + len(body["errors"]) == len(items)
        failed = {error["index"] for error in body["errors"]}
        assert all(error["statusCode"] == 400 and error["message"] for error in body["errors"])
        assert not failed & {items.index(item) for item in good}, body
        sent.extend(item["data"]["baseData"]["message"] for item in good)

    check()
    assert app_collector.http.get("/healthz").status_code == 200
    stored = app_collector.query("traces | where message startswith 'valid-' | project message", service=service["name"])
    assert sorted(row["message"] for row in stored) == sorted(sent)
