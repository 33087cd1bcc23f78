"""The live enable_app_insights switch loses nothing when it turns on: a wrapper learns of the flip
up to one heartbeat later, and the requests it served in between still arrive (held while the switch
said off, see scoring/telemetry_queue.py). What was served well before the flip, while the service
was off, is never sent."""

import time

import httpx
from telemetry_rows import rows, wait_for
from wrapper_process import Wrapper

from collector.client import Webservice, Workspace
from scoring import switch
from scoring.telemetry_queue import MemorySink, TelemetryQueue


def _score(wrapper, client_id: str) -> None:
    response = httpx.post(f"{wrapper.url}/score", json={"a": 1}, headers={"x-ms-client-request-id": client_id}, timeout=10)
    assert response.status_code == 200, response.text


def _client_ids(collector, service) -> list[str]:
    return [row["customDimensions"].get("Client Request Id") for row in rows(collector, service, "requests")]


def test_requests_right_after_enable_app_insights_all_arrive(scoring_collector, tmp_path):
    service = scoring_collector.create_service("switch-on", enable_app_insights=False)
    wrapper = Wrapper("echo_score.py", service, tmp_path / "spool").start()
    workspace = Workspace(scoring_collector.url, api_key=scoring_collector.admin_key)
    try:
        for i in range(3):
            _score(wrapper, f"while-off-{i}")
        time.sleep(4.5)  # two heartbeats confirm "off" after them
        Webservice(workspace, service["name"]).update(enable_app_insights=True)
        for i in range(20):  # at once: the wrapper has not heard of the flip yet
            _score(wrapper, f"after-{i}")
        arrived = wait_for(scoring_collector, service, "requests",
                           (lambda row: row["customDimensions"].get("Client Request Id", "").startswith("after-"), 20))
        assert sorted(row["customDimensions"]["Client Request Id"] for row in arrived) == sorted(f"after-{i}" for i in range(20))
        assert not [i for i in _client_ids(scoring_collector, service) if i and i.startswith("while-off")]
    finally:
        wrapper.stop()


class _Switch:
    def __init__(self):
        self.value = False
        self.off_at = 0.0

    def __call__(self) -> bool:
        return self.value


def test_the_queue_holds_while_off_and_drops_what_the_collector_confirmed_off():
    flip = _Switch()
    queue = TelemetryQueue(MemorySink(), switch=flip)
    queue.enabled = False
    queue.put(b"before")
    flip.off_at = time.time() + 0.001  # the collector said "off" after that item was built
    time.sleep(0.01)
    queue.put(b"during")
    queue.follow_switch()
    assert (queue.queued, queue.withheld, queue.accepted) == (0, 1, 0)
    flip.value = True
    queue.follow_switch()
    queue.flush()
    assert queue.sink.lines == [b"during"] and queue.accepted == 1


def test_switch_file_says_when_off_was_confirmed(tmp_path):
    path = tmp_path / switch.FILENAME
    switch.write(path, False, asked_at=123.0)
    reader = switch.SwitchFile(tmp_path)
    assert reader() is False and reader.off_at == 123.0
    switch.write(path, True)
    assert switch.read(path) is True
