"""Telemetry rows in the import format of DESIGN.md, shaped like a scoring service's traffic.

Deterministic (seeded random), spread over the last `minutes`, so every Overview chart, the
Failures and Performance tables and the Logs page have something to show. The benchmark uses the
same generator for its 1M requests, hence `requests_only`.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
SEEDED_REQUESTS = 600

OPERATIONS = ("POST /score", "GET /", "GET /swagger.json")
FAILURES = (("500", "ValueError", "could not convert string to float: 'abc'"),
            ("400", "KeyError", "'data'"),
            ("504", "TimeoutError", "scoring timed out after 60000 ms"))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _request(rng: random.Random, moment: datetime, operation_id: str) -> dict:
    name = OPERATIONS[0] if rng.random() < 0.85 else rng.choice(OPERATIONS[1:])
    failed = name == OPERATIONS[0] and rng.random() < 0.1
    code = rng.choice(FAILURES)[0] if failed else "200"
    duration = rng.lognormvariate(3.0, 0.6) * (8 if rng.random() < 0.03 else 1)
    return {"itemType": "request", "timestamp": _stamp(moment), "id": operation_id[:16], "name": name,
            "url": f"http://127.0.0.1:5001{name.split()[1]}", "success": not failed, "resultCode": code,
            "duration": round(duration, 3), "operation_Id": operation_id, "operation_Name": name,
            "cloud_RoleName": "demo-model", "customDimensions": {"Container Id": "local"}}


def _dependency(rng: random.Random, moment: datetime, operation_id: str) -> dict:
    failed = rng.random() < 0.05
    return {"itemType": "dependency", "timestamp": _stamp(moment), "id": uuid.uuid4().hex[:16],
            "target": "feature-store:6379", "type": "HTTP", "name": "GET /features",
            "data": "http://feature-store:6379/features", "success": not failed,
            "resultCode": "503" if failed else "200", "duration": round(rng.uniform(1, 40), 3),
            "operation_Id": operation_id, "operation_Name": OPERATIONS[0]}


def _exception(moment: datetime, operation_id: str, code: str) -> dict:
    kind, message = next((k, m) for c, k, m in FAILURES if c == code)
    frames = [{"level": 0, "method": "run", "assembly": "score", "fileName": "score.py", "line": 27},
              {"level": 1, "method": "invoke", "assembly": "scoring.user_script", "fileName": "user_script.py", "line": 88}]
    return {"itemType": "exception", "timestamp": _stamp(moment), "type": kind, "message": message,
            "outerType": kind, "outerMessage": message, "innermostType": kind, "innermostMessage": message,
            "method": "run", "problemId": f"{kind} at run", "severityLevel": 3,
            "operation_Id": operation_id, "operation_Name": OPERATIONS[0],
            "details": [{"id": 1, "outerId": 0, "type": kind, "message": message, "parsedStack": frames}],
            "customDimensions": {"Request Id": operation_id, "input": {"data": [["abc", 1.0]]}}}


def _trace(rng: random.Random, moment: datetime, operation_id: str) -> dict:
    contents = {"input": {"data": [[round(rng.uniform(4, 8), 1), round(rng.uniform(2, 4), 1)]]}, "prediction": [rng.randint(0, 2)]}
    return {"itemType": "trace", "timestamp": _stamp(moment), "message": "STDOUT", "severityLevel": 1,
            "operation_Id": operation_id, "operation_Name": OPERATIONS[0],
            "customDimensions": {"Contents": contents}}


def rows(count: int, minutes: float = 60, seed: int = 7, requests_only: bool = False):
    """`count` requests (with their dependencies, traces and exceptions unless requests_only),
    as JSON lines, timestamps spread evenly over the last `minutes`."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    step = timedelta(minutes=minutes) / max(count, 1)
    for index in range(count):
        moment = now - step * (count - index)
        operation_id = uuid.UUID(int=rng.getrandbits(128)).hex
        request = _request(rng, moment, operation_id)
        yield orjson.dumps(request)
        if requests_only:
            continue
        if request["name"] == OPERATIONS[0]:
            yield orjson.dumps(_dependency(rng, moment, operation_id))
            yield orjson.dumps(_trace(rng, moment, operation_id))
        if not request["success"]:
            yield orjson.dumps(_exception(moment, operation_id, request["resultCode"]))


def seed_service(collector, count: int = SEEDED_REQUESTS, prefix: str = "dash") -> tuple[str, list[dict]]:
    """A new service holding `count` requests (and their dependencies, traces, exceptions) from the
    last hour; returns its name and the rows, so tests can compute what the pages must show."""
    service = collector.create_service(prefix)["name"]
    lines = list(rows(count, minutes=55))
    result = collector.import_rows(service, lines)
    assert result["imported"] == len(lines), result
    return service, [orjson.loads(line) for line in lines]


def seed_with_gap(collector, gap: tuple[float, float] = (35, 20), prefix: str = "dash-gap") -> tuple[str, list[dict]]:
    """A new service with traffic over the last 50 minutes except from `gap[0]` to `gap[1]` minutes
    ago (an outage): nothing at all was sent then."""
    now = datetime.now(UTC)
    start, end = now - timedelta(minutes=gap[0]), now - timedelta(minutes=gap[1])
    kept = [line for line in rows(300, minutes=50, seed=11)
            if not start <= datetime.fromisoformat(orjson.loads(line)["timestamp"]) < end]
    service = collector.create_service(prefix)["name"]
    result = collector.import_rows(service, kept)
    assert result["imported"] == len(kept), result
    return service, [orjson.loads(line) for line in kept]
