"""Changing the split under load drops nothing; mirrored copies are compared, never returned."""

import threading
import time
from collections import Counter

import httpx
import pytest
from endpoint_scripts import SCRIPTS


@pytest.fixture(scope="module")
def blue_green(collector):
    """One endpoint for the module: the traffic test leaves no mirror behind, the mirror test sets its own split."""
    import uuid

    from collector.client import OnlineEndpoint, Workspace

    endpoint = OnlineEndpoint.create(Workspace(collector.url, api_key=collector.admin_key),
                                     f"shift-{uuid.uuid4().hex[:8]}", rate_limit=100_000)
    # 4 clients at once: within 2 x max_concurrent (2) pending, so none is refused
    endpoint.create_deployment("blue", SCRIPTS / "blue_score.py", max_concurrent_requests_per_instance=2)
    endpoint.create_deployment("green", SCRIPTS / "green_score.py", max_concurrent_requests_per_instance=2)
    endpoint.key = endpoint.created["primary_key"]
    yield endpoint
    endpoint.delete()


def _load(endpoint, stop: threading.Event, seen: list, clients: int = 4) -> list[threading.Thread]:
    def client() -> None:
        with httpx.Client(timeout=30, headers={"authorization": f"Bearer {endpoint.key}"}) as http:
            while not stop.is_set():
                response = http.post(endpoint.scoring_uri, json={"data": [1, 7]})
                seen.append((time.monotonic(), response.status_code, response.headers.get("azureml-model-deployment"),
                             response.text))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def test_a_traffic_change_under_load_fails_no_request_and_applies_within_a_second(blue_green):
    blue_green.update(traffic="blue=100")
    stop, seen = threading.Event(), []
    threads = _load(blue_green, stop, seen)
    time.sleep(1.0)
    changed = time.monotonic()
    blue_green.update(traffic={"blue": 0, "green": 100})
    time.sleep(1.5)
    blue_green.update(traffic="blue=50 green=50")
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert len(seen) > 100
    assert [s for s in seen if s[1] != 200] == []
    after = [deployment for at, _, deployment, _ in seen if changed + 1.0 < at < changed + 1.5]
    assert after and set(after) == {"green"}
    assert {deployment for at, _, deployment, _ in seen if at < changed} == {"blue"}


def test_mirrored_answers_are_compared_and_never_returned(blue_green, collector):
    blue_green.update(traffic="blue=100", mirror="green=50")
    time.sleep(1.5)  # a change applies within a second (the test above): until then the last test's 50/50 split serves
    stop, seen = threading.Event(), []
    threads = _load(blue_green, stop, seen, clients=2)
    deadline = time.monotonic() + 120
    while len(seen) < 100:  # a count, not a duration: on loaded cores 2 s can be 20 requests
        assert time.monotonic() < deadline, len(seen)
        time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join()
    assert seen and all(status == 200 and deployment == "blue" and '"blue"' in text
                        for _, status, deployment, text in seen)
    name = blue_green.name
    deadline, previous = time.monotonic() + 20, None
    while True:  # the router's comparisons and the wrapper's marked requests arrive within seconds, in batches
        rollout = blue_green.rollout("PT10M")
        mirrored = collector.query('requests | where tostring(customDimensions.Mirrored) == "true" '
                                   '| summarize n = count() by d = tostring(customDimensions.Deployment)', service=name)
        if rollout["mirror"] and rollout["mirror"][0]["compared"] > 20 and mirrored and mirrored == previous:
            break  # the same count twice, a second apart: every mirrored request has landed
        assert time.monotonic() < deadline, (rollout["mirror"], mirrored)
        previous = mirrored
        time.sleep(1.0)
    assert {row["d"] for row in mirrored} == {"green"}
    share = mirrored[0]["n"] / len(seen)
    assert 0.3 < share < 0.7, share
    comparison = rollout["mirror"][0]
    assert (comparison["primary"], comparison["mirror"]) == ("blue", "green")
    # green answers every input differently ("deployment": "green", and 7 -> 15): all differ, with examples
    assert comparison["differing_share"] == 1.0
    example = comparison["examples"][0]
    assert '"blue"' in example["primary_response"] and '"green"' in example["mirror_response"]
    assert "7" in example["input"]
    assert Counter(d for _, _, d, _ in seen) == Counter({"blue": len(seen)})
