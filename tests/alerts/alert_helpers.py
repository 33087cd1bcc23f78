"""What the alert tests share: a collector process whose rules may run every second, a webhook
receiver process, telemetry sent through the real ingestion path, and polling."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from collector_process import CollectorProcess, free_port

FAST_ALERTS = {
    "INSIGHTS_ALERTS_MIN_FREQUENCY_S": "1",
    "INSIGHTS_ALERTS_GRACE_S": "0.3",
    "INSIGHTS_ALERTS_RETRY_BASE_S": "0.2",
    "INSIGHTS_ALERTS_MAX_ATTEMPTS": "3",
}


def fast_collector(data_dir: Path, env: dict | None = None) -> CollectorProcess:
    return CollectorProcess(data_dir, env={**FAST_ALERTS, **(env or {})})


class Receiver:
    """The webhook receiver process (receiver.py) and what it got."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "deliveries.jsonl"
        self.log.touch()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("receiver.py")),
                                         str(self.port), str(self.log)])
        wait_for(self._listening, 10, "the receiver to listen")

    def _listening(self) -> bool:
        try:
            httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
            return True
        except httpx.TransportError:
            return False

    def failing(self, on: bool) -> None:
        flag = self.log.with_name("fail")
        flag.touch() if on else flag.unlink(missing_ok=True)

    def slow(self, seconds: float) -> None:
        self.log.with_name("delay").write_text(str(seconds))

    def received(self) -> list[dict]:
        out = []
        for line in self.log.read_text().splitlines():
            entry = json.loads(line)
            entry["json"] = json.loads(entry["body"])
            out.append(entry)
        return out

    def conditions(self) -> list[str]:
        """The monitor conditions received, one per Idempotency-Key as a receiver keeps them: delivery
        is at least once, and an answer slower than the delivery timeout is sent again."""
        seen, out = set(), []
        for entry in self.received():
            key = next((v for k, v in entry["headers"].items() if k.lower() == "idempotency-key"), None)
            if key is None or key not in seen:
                seen.add(key)
                out.append(entry["json"]["data"]["essentials"]["monitorCondition"])
        return out

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def request_envelope(ikey: str, success: bool = True, duration_ms: int = 20, region: str = "eu",
                     at: datetime | None = None) -> dict:
    """One App Insights request item, timestamped `at` (default now, UTC), as an SDK sends it."""
    now = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"iKey": ikey, "time": now, "name": "Microsoft.ApplicationInsights.Request",
            "tags": {"ai.operation.id": uuid.uuid4().hex, "ai.cloud.role": "score.py"},
            "data": {"baseType": "RequestData", "baseData": {
                "id": uuid.uuid4().hex[:16], "name": "POST /score", "duration": f"0.00:00:00.{duration_ms:03d}",
                "responseCode": "200" if success else "500", "success": success, "url": "http://127.0.0.1/score",
                "properties": {"region": region}}}}


def send(collector: CollectorProcess, ikey: str, items: list[dict]) -> None:
    response = httpx.post(f"{collector.url}/v2/track", json=items, timeout=30)
    assert response.status_code == 200, response.text


def ikey_of(service: dict) -> str:
    return service["connection_string"].split("InstrumentationKey=")[1].split(";")[0]
