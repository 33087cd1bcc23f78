"""The router in front of two real deployments (each an `insights score` process started by the
endpoint host the collector runs): the weighted split, targeting a deployment, and the managed
online endpoints' status codes."""

import threading
import time
from collections import Counter

import httpx
import pytest
from endpoint_scripts import SCRIPTS
from scipy import stats

from collector.client import ScoringError


@pytest.fixture(scope="module")
def two_deployments(collector):
    """One endpoint with blue (blue_score.py) and green (green_score.py, a different script)."""
    import uuid

    from collector.client import OnlineEndpoint, Workspace

    endpoint = OnlineEndpoint.create(Workspace(collector.url, api_key=collector.admin_key),
                                     f"split-{uuid.uuid4().hex[:8]}", rate_limit=100_000, request_timeout_ms=1500)
    endpoint.create_deployment("blue", SCRIPTS / "blue_score.py")
    endpoint.create_deployment("green", SCRIPTS / "knobs_score.py", max_concurrent_requests_per_instance=1)
    endpoint.update(traffic="blue=90,green=10")
    time.sleep(1.5)  # the host applies a traffic change within a second; until then the default split serves
    endpoint.key = endpoint.created["primary_key"]
    yield endpoint
    endpoint.delete()


def _post(endpoint, body, key=None, headers=None, path="/score"):
    url = endpoint.scoring_uri.replace("/score", path)
    return httpx.post(url, json=body, timeout=30, headers={
        **({"authorization": f"Bearer {key or endpoint.key}"} if key != "" else {}), **(headers or {})})


def test_a_90_10_split_lands_within_binomial_bounds(two_deployments):
    counts = Counter()
    with httpx.Client(timeout=30, headers={"authorization": f"Bearer {two_deployments.key}"}) as client:
        for _ in range(400):
            response = client.post(two_deployments.scoring_uri, json={"data": [1]})
            assert response.status_code == 200, response.text
            assert response.headers["azureml-model-deployment"] == response.json()["deployment"].replace("knobs", "green")
            counts[response.headers["azureml-model-deployment"]] += 1
    # a one-in-a-million band: 90/10 lands inside it, a swapped or even split cannot
    low, high = stats.binom.interval(1 - 1e-6, 400, 0.10)
    assert low <= counts["green"] <= high, counts
    assert counts["blue"] + counts["green"] == 400


def test_the_deployment_header_bypasses_the_split(two_deployments):
    for _ in range(5):
        assert two_deployments.invoke({"data": [3]}, deployment="green")["deployment"] == "knobs"
    assert two_deployments.invoke({"data": [3]}, deployment="blue") == {"deployment": "blue", "result": [6]}
    with pytest.raises(ScoringError) as unknown:
        two_deployments.invoke({"data": [3]}, deployment="purple")
    assert unknown.value.status_code == 404


def test_a_change_is_in_force_when_its_request_returns(two_deployments):
    """No sleep after update(): the collector answers once the host's router runs on the change."""
    try:
        for turn in range(12):
            side = ("blue", "green")[turn % 2]
            two_deployments.update(traffic={side: 100, ("green", "blue")[turn % 2]: 0})
            assert _post(two_deployments, {"data": [1]}).headers["azureml-model-deployment"] == side, turn
    finally:
        two_deployments.update(traffic="blue=90,green=10")


def test_429_above_the_rate_limit_and_above_the_pending_requests_a_deployment_takes(two_deployments):
    two_deployments.update(rate_limit=5)
    try:
        begun = time.monotonic()
        with httpx.Client(timeout=30, headers={"authorization": f"Bearer {two_deployments.key}"}) as client:
            statuses = Counter(client.post(two_deployments.scoring_uri, json={"data": [1]}).status_code for _ in range(30))
        elapsed = time.monotonic() - begun
    finally:
        two_deployments.update(rate_limit=100_000)
    # a bucket of 5 (one second's worth), refilled at 5/s while the 30 calls went
    assert statuses[429] > 0 and 5 <= statuses[200] <= 5 + 5 * elapsed + 1, (statuses, elapsed)
    # green: 1 instance x max_concurrent 1 -> 2 pending at most; a third at once is refused
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        _post(two_deployments, {"sleep": 0.4}, headers={"azureml-model-deployment": "green"}).status_code))
        for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 200, 429]


def test_status_codes_of_a_managed_endpoint(two_deployments):
    assert _post(two_deployments, {"data": [1]}, key="").status_code == 401
    assert _post(two_deployments, {"data": [1]}, key="not-the-key").status_code == 401
    assert _post(two_deployments, {"data": [1]}, path="/nope").status_code == 404
    too_big = httpx.post(two_deployments.scoring_uri, content=b"x" * 1_600_000, timeout=30,
                         headers={"authorization": f"Bearer {two_deployments.key}"})
    assert too_big.status_code == 413
    green = {"azureml-model-deployment": "green"}
    failed = _post(two_deployments, {"fail": True}, headers=green)
    assert failed.status_code == 424
    assert failed.json()["message"] == "model error; original-code=500"
    assert failed.headers["ms-azureml-model-error-statuscode"] == "500"
    assert _post(two_deployments, {"big": 1_600_000}, headers=green).status_code == 424
    slow = _post(two_deployments, {"sleep": 3}, headers=green)
    assert slow.status_code == 408, slow.text
    # green is still busy with the late call; blue serves meanwhile
    assert _post(two_deployments, {"data": [2]}, headers={"azureml-model-deployment": "blue"}).status_code == 200


def test_secondary_key_works_and_a_regenerated_key_replaces_the_old(two_deployments):
    credentials = two_deployments.get_credentials()
    assert credentials["primaryKey"] == two_deployments.key
    assert _post(two_deployments, {"data": [1]}, key=credentials["secondaryKey"]).status_code == 200
    renewed = two_deployments.regenerate_keys("secondary")
    assert renewed["primaryKey"] == credentials["primaryKey"] and renewed["secondaryKey"] != credentials["secondaryKey"]
    deadline = time.monotonic() + 1.5
    while _post(two_deployments, {"data": [1]}, key=credentials["secondaryKey"]).status_code != 401:
        assert time.monotonic() < deadline, "the old secondary key still works"
        time.sleep(0.05)
    assert _post(two_deployments, {"data": [1]}, key=renewed["secondaryKey"]).status_code == 200
