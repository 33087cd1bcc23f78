"""The wrapper's HTTP contract (azmlinfsrv's routes and headers, managed online endpoint status
codes, keep-alive), and a `requests` row with the true status and duration for each of them."""

import http.client
import threading
import time
import uuid

import httpx
from telemetry_rows import wait_for


def _post(wrapper, json=None, **kwargs):
    return httpx.post(f"{wrapper.url}/score", json=json, timeout=10, **kwargs)


def test_liveness_readiness_and_unknown_routes(echo):
    assert httpx.get(f"{echo.url}/").text == "Healthy"
    assert httpx.get(f"{echo.url}/ready").status_code == 200
    missing = httpx.get(f"{echo.url}/nope")
    assert missing.status_code == 404 and "message" in missing.json()
    assert httpx.put(f"{echo.url}/score").status_code == 405


def test_score_and_request_id_headers(echo):
    response = _post(echo, {"a": 1}, headers={"x-request-id": "my-req-1", "x-ms-client-request-id": "client-abc"})
    assert response.status_code == 200
    assert response.json() == [1, 42]
    assert response.headers["x-request-id"] == "my-req-1"
    assert response.headers["x-ms-request-id"] == "client-abc"
    assert response.headers["x-ms-client-request-id"] == "client-abc"
    assert response.headers["x-ms-run-function-failed"] == "False"
    assert float(response.headers["x-ms-run-fn-exec-ms"]) >= 0
    legacy = _post(echo, {"a": 1}, headers={"x-ms-request-id": "legacy-1"})
    assert legacy.headers["x-ms-client-request-id"] == "legacy-1"
    generated = _post(echo, {"a": 1})
    uuid.UUID(generated.headers["x-request-id"])


def test_error_statuses_and_their_request_rows(echo, scoring_collector):
    tag = uuid.uuid4().hex[:8]
    ids = {code: f"{tag}-{code}" for code in (400, 413, 431, 500, 408)}
    failed = _post(echo, {"fail": "bad input"}, headers={"x-request-id": ids[500]})
    assert failed.status_code == 500
    assert failed.headers["x-ms-run-function-failed"] == "True"
    assert failed.json() == {"message": "An unexpected error occurred in scoring script. Check the logs for more info."}
    bad_utf8 = httpx.post(f"{echo.url}/score", content=b"\xff\xfe", headers={"x-request-id": ids[400]})
    assert bad_utf8.status_code == 400
    assert bad_utf8.json()["message"].startswith("Input cannot be decoded as UTF-8")
    too_big = httpx.post(f"{echo.url}/score", content=b"[" + b"1," * 150_000 + b"1]", headers={"x-request-id": ids[413]})
    assert too_big.status_code == 413
    too_long = _post(echo, {"a": 1}, headers={"x-request-id": "r" * 101, "x-ms-client-request-id": ids[431]})
    assert too_long.status_code == 431
    started = time.monotonic()
    slow = _post(echo, {"sleep": 3}, headers={"x-request-id": ids[408]})
    assert slow.status_code == 408 and 0.9 < time.monotonic() - started < 2.5
    assert slow.json() == {"message": "Scoring timeout after 1000 ms"}
    unserializable = _post(echo, {"unserializable": True})
    assert unserializable.status_code == 500 and unserializable.headers["x-ms-run-function-failed"] == "False"

    def ours(row):
        dims = row["customDimensions"]
        return dims.get("Request Id", "").startswith(tag) or dims.get("Client Request Id") == ids[431]

    found = wait_for(scoring_collector, echo.service, "requests", (ours, 5))
    by_code = {row["resultCode"]: row for row in found}
    assert set(by_code) == {"400", "408", "413", "431", "500"}
    assert all(row["success"] is False for row in found)
    assert all(row["name"] == "POST /score" and row["url"].endswith("/score") for row in found)
    assert by_code["408"]["duration"] >= 1000
    assert by_code["500"]["customDimensions"]["Service Name"] == echo.service["name"]


def test_more_than_twice_max_concurrent_pending_gets_429(echo):
    statuses = []

    def score():
        statuses.append(_post(echo, {"sleep": 0.3}).status_code)

    threads = [threading.Thread(target=score) for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 200, 429]


def test_keep_alive(echo):
    connection = http.client.HTTPConnection("127.0.0.1", echo.port, timeout=5)
    connection.request("POST", "/score", body=b'{"a": 1}', headers={"content-type": "application/json"})
    first = connection.getresponse()
    first.read()
    sock = connection.sock
    connection.request("POST", "/score", body=b'{"a": 2}', headers={"content-type": "application/json"})
    second = connection.getresponse()
    second.read()
    assert first.status == second.status == 200
    assert first.getheader("connection", "").lower() != "close"
    assert connection.sock is sock, "the server closed the connection between requests"
    connection.close()


def test_options_get_and_cors(echo):
    allowed = httpx.options(f"{echo.url}/score", headers={"origin": "http://allowed.example"})
    assert allowed.status_code == 200 and allowed.text == ""
    assert allowed.headers["access-control-allow-origin"] == "http://allowed.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    other = httpx.options(f"{echo.url}/score", headers={"origin": "http://other.example"})
    assert "access-control-allow-origin" not in other.headers
    assert httpx.get(f"{echo.url}/score", params={"a": "1"}).json() == [1, 42]


def test_metrics_counts_the_telemetry_path(echo):
    _post(echo, {"a": 1})
    deadline = time.monotonic() + 10
    while True:
        telemetry = echo.metrics()["telemetry"]
        if telemetry["sent"] > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert telemetry["captured"] >= telemetry["spooled"] > 0
    assert telemetry["sent"] > 0
    assert telemetry["dropped_queue_full"] == 0
