"""`insights demo`'s drift: its reference and monitor (as the demo creates them), and traffic from
its generator before and after the shift, collected as the sample score.py collects it: before, no
feature drifts; after, exactly sepal_length does."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import httpx
import orjson

from insights.demo import GOOD
from insights.demo_drift import FEATURES, MONITOR, SHIFT_AFTER_S, jittered, shifted, start_monitor


def _collect(collector, service: dict, elapsed_s: float, rng: random.Random) -> None:
    rows = [shifted({"data": [jittered(rng, GOOD)]}, elapsed_s)["data"][0] for _ in range(1500)]
    lines = [orjson.dumps({"collection": "model_inputs", "data": [dict(zip(FEATURES, row, strict=True))]}) for row in rows]
    answer = httpx.post(f"{collector.url}/api/modeldata", content=b"\n".join(lines),
                        headers={"x-instrumentation-key": service["instrumentation_key"]})
    assert answer.status_code == 200, answer.text


def test_the_demo_shift_drifts_sepal_length_only(collector):
    rng = random.Random(3)
    before, after = collector.create_service("demo-before"), collector.create_service("demo-after")
    for service, elapsed in ((before, 0.0), (after, SHIFT_AFTER_S + 1)):
        start_monitor(collector.url, collector.admin_key, service["name"], GOOD)
        _collect(collector, service, elapsed, rng)
    drifted = {}
    for service in (before, after):
        with collector.admin as admin:
            run = admin.post(f"/api/services/{service['name']}/monitors/{MONITOR}/run",
                             params={"end": datetime.now(UTC).isoformat()})
        assert run.status_code == 200, run.text
        drifted[service["name"]] = run.json()["drifted_features"]
    assert drifted == {before["name"]: [], after["name"]: ["sepal_length"]}
