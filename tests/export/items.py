"""Mixed telemetry in the row format (what import reads and export writes), for the export tests.

Timestamps are spread over the past days and shuffled, because export must follow ingestion order
(`_seq`), not time: late and out-of-order items are the ones a timestamp checkpoint would skip.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import orjson

RECORD_TYPE_OF = {"request": "Requests", "trace": "Messages", "exception": "Exceptions",
                  "dependency": "Rdd", "customEvent": "Event", "customMetric": "Metrics"}


def mixed_items(count: int, seed: int = 7, now: datetime | None = None, max_age_days: float = 3.0) -> list[dict]:
    """`count` items cycling through the six exported types, each with a unique itemId."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    makers = (_request, _trace, _dependency, _exception, _event, _metric)
    items = []
    for index in range(count):
        moment = now - timedelta(seconds=rng.uniform(0, max_age_days * 86400))
        item = makers[index % len(makers)](rng, index)
        item.update(_common(rng, moment))
        items.append(item)
    return items


def lines(items: list[dict]) -> list[bytes]:
    return [orjson.dumps(item) for item in items]


def _common(rng: random.Random, moment: datetime) -> dict:
    operation = uuid.UUID(int=rng.getrandbits(128)).hex
    return {
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "itemId": str(uuid.UUID(int=rng.getrandbits(128))),
        "operation_Id": operation,
        "operation_ParentId": operation[:16],
        "operation_Name": "POST /score",
        "cloud_RoleName": "my-endpoint",
        "cloud_RoleInstance": f"instance-{rng.randrange(4)}",
        "sdkVersion": "py3:opencensus-1.1.15",
        "client_Type": "PC",
        "customDimensions": {"model": "churn", "version": rng.randrange(10), "input": {"rows": rng.randrange(100),
                             "score": rng.random()}, "tag": "ünïcode ✓"},
    }


def _request(rng, index):
    ok = rng.random() > 0.1
    return {"itemType": "request", "id": f"req-{index}", "name": "POST /score", "url": "http://127.0.0.1:5001/score",
            "success": ok, "resultCode": "200" if ok else "500", "duration": rng.uniform(1, 500),
            "performanceBucket": "<250ms", "itemCount": 1}


def _trace(rng, index):
    return {"itemType": "trace", "message": f"scored batch {index}", "severityLevel": rng.randrange(5),
            "customMeasurements": {"latency": rng.random()}}


def _dependency(rng, index):
    return {"itemType": "dependency", "id": f"dep-{index}", "target": "db:5432", "type": "SQL", "name": "SELECT",
            "data": "SELECT * FROM features WHERE id = ?", "success": True, "resultCode": "0",
            "duration": rng.uniform(0.1, 50)}


def _exception(rng, index):
    return {"itemType": "exception", "problemId": "ValueError at run", "type": "ValueError",
            "message": f"bad input {index}", "outerType": "ValueError", "outerMessage": "bad input",
            "innermostType": "ValueError", "innermostMessage": "bad input", "severityLevel": 3,
            "details": [{"id": 1, "outerId": 0, "typeName": "ValueError", "message": "bad input",
                         "parsedStack": [{"level": 0, "method": "run", "fileName": "score.py", "line": 12}]}]}


def _event(rng, index):
    return {"itemType": "customEvent", "name": "model_loaded", "customMeasurements": {"seconds": rng.random()}}


def _metric(rng, index):
    value = rng.uniform(0, 100)
    return {"itemType": "customMetric", "name": "queue_length", "value": value, "valueCount": 1, "valueSum": value,
            "valueMin": value, "valueMax": value, "valueStdDev": 0.0}
