"""What score.py does becomes telemetry, linked to its request by operation_Id: prints (stdout and
stderr, at the stream level), logging, outgoing HTTP, exceptions with the user's own type; printed
JSON stays an object; an item over 64 KB is capped with its whole payload kept in blob storage."""

import uuid

import httpx
import pytest
from downstream import downstream_service
from telemetry_rows import rows, wait_for


def _score(wrapper, body, **headers):
    request_id = str(uuid.uuid4())
    response = httpx.post(f"{wrapper.url}/score", json=body, headers={"x-request-id": request_id, **headers}, timeout=10)
    return response, uuid.UUID(request_id).hex


def _request_row(collector, service, operation_id):
    return wait_for(collector, service, "requests", lambda r: r["operation_Id"] == operation_id)[0]


def test_prints_and_logging_become_traces_of_their_request(echo, scoring_collector):
    marker = f"find-me-{uuid.uuid4().hex[:6]}"
    response, operation_id = _score(echo, {"x": marker, "stderr": "careful", "write": "raw write", "log": marker})
    assert response.status_code == 200
    request = _request_row(scoring_collector, echo.service, operation_id)
    traces = wait_for(scoring_collector, echo.service, "traces", (lambda r: r["operation_Id"] == operation_id, 4))
    assert all(t["operation_ParentId"] == request["id"] for t in traces)
    by_message = {}
    for trace in traces:
        by_message.setdefault(trace["message"], []).append(trace)
    contents = [t["customDimensions"]["Contents"] for t in by_message["STDOUT"]]
    assert {"input": {"x": marker, "stderr": "careful", "write": "raw write", "log": marker}, "note": "scored"} in contents
    assert "raw write" in contents
    assert [t["customDimensions"]["Contents"] for t in by_message["STDERR"]] == ["careful"]
    logged = by_message[f"scoring {marker}"][0]
    assert logged["severityLevel"] == 2
    assert logged["customDimensions"]["model_version"] == "7"
    assert logged["customDimensions"]["logger_name"] == "echo_score"
    assert logged["customDimensions"]["Request Id"] == request["customDimensions"]["Request Id"]
    found = scoring_collector.query(f'traces | where customDimensions contains "{marker}" | where message == "STDOUT"',
                                    service=echo.service["name"])
    assert len(found) == 1


def test_init_print_is_a_trace(echo, scoring_collector):
    traces = wait_for(scoring_collector, echo.service, "traces",
                      lambda r: r["customDimensions"].get("Contents") == "init: model loaded")
    assert traces[0]["message"] == "STDOUT"


def test_exception_keeps_the_users_type(echo, scoring_collector):
    response, operation_id = _score(echo, {"fail": "no such feature"})
    assert response.status_code == 500
    request = _request_row(scoring_collector, echo.service, operation_id)
    exception = wait_for(scoring_collector, echo.service, "exceptions", lambda r: r["operation_Id"] == operation_id)[0]
    assert exception["type"] == "ModelInputError"
    assert exception["message"] == "no such feature"
    assert exception["method"] == "run"
    assert exception["operation_ParentId"] == request["id"]
    assert request["resultCode"] == "500" and request["success"] is False


def test_timeout_is_an_exception_with_where_run_was(echo, scoring_collector):
    response, operation_id = _score(echo, {"sleep": 3})
    assert response.status_code == 408
    exception = wait_for(scoring_collector, echo.service, "exceptions", lambda r: r["operation_Id"] == operation_id)[0]
    assert exception["type"] == "ScoringTimeout"
    assert "echo_score.py" in str(exception["details"])


def test_incoming_traceparent_is_honoured(echo, scoring_collector):
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    response, _ = _score(echo, {"a": 1}, traceparent=f"00-{trace_id}-{parent}-01")
    assert response.status_code == 200
    request = _request_row(scoring_collector, echo.service, trace_id)
    assert request["operation_ParentId"] == parent


@pytest.fixture
def downstream():
    """A local HTTP server standing for a feature store; remembers the traceparent it was sent."""
    with downstream_service() as service:
        yield service


def test_outgoing_http_becomes_dependencies(echo, scoring_collector, downstream):
    url, seen = downstream
    response, operation_id = _score(echo, {"call": url})
    assert response.json() == [200, 200, 200, 200]
    request = _request_row(scoring_collector, echo.service, operation_id)
    deps = wait_for(scoring_collector, echo.service, "dependencies", (lambda r: r["operation_Id"] == operation_id, 4))
    assert sorted(d["name"] for d in deps) == ["GET /httpx", "GET /requests", "GET /urllib", "GET /urllib3"]
    assert all(d["operation_ParentId"] == request["id"] and d["type"] == "HTTP" and d["resultCode"] == "200"
               and d["success"] is True and d["target"] == url.split("//")[1] for d in deps)
    assert sorted(path for path, _ in seen) == ["/httpx", "/requests", "/urllib", "/urllib3"]
    assert all(traceparent and traceparent.split("-")[1] == operation_id for _, traceparent in seen)


def test_failed_urllib3_call_is_a_failed_dependency(echo, scoring_collector):
    from collector_process import free_port

    url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    response, operation_id = _score(echo, {"unreachable": url})
    assert response.status_code == 500
    dependency = wait_for(scoring_collector, echo.service, "dependencies", lambda r: r["operation_Id"] == operation_id)[0]
    assert (dependency["name"], dependency["data"], dependency["success"]) == ("GET /nobody-listens", url, False)


def test_trace_over_64kb_is_capped_and_kept_whole(echo, scoring_collector):
    response, operation_id = _score(echo, {"big": 100_000})
    assert response.status_code == 200
    traces = wait_for(scoring_collector, echo.service, "traces",
                      lambda r: r["operation_Id"] == operation_id and "payloadRef" in r["customDimensions"])
    dims = traces[0]["customDimensions"]
    assert dims["capped"] == "True" and int(dims["originalSize"]) > 100_000
    assert "capped" in str(dims.get("Contents"))
    original = (scoring_collector.data_dir / "blob" / dims["payloadRef"]).read_text()
    assert "x" * 100_000 in original


def test_no_response_body_unless_opted_in(echo, scoring_collector):
    assert all("Response Value" not in r["customDimensions"] for r in rows(scoring_collector, echo.service, "requests"))
