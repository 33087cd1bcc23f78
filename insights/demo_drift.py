"""The demo's model monitoring: the sample score.py collects its inputs (azureml-ai-monitoring's
Collector, as on Azure ML), the demo uploads a reference drawn from the traffic generator's own
distribution and creates a monitor over 1-minute windows, and after SHIFT_AFTER_S the generator
adds SHIFT to every sepal_length it sends: within a window or two the Model monitoring page shows
sepal_length drifting, and only it."""

from __future__ import annotations

import io
import random

import httpx

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
SHIFT_AFTER_S = 120.0
SHIFT = 1.5
WINDOW_S = 60
MONITOR = "iris-inputs"
REFERENCE_ROWS = 2000


def jittered(rng: random.Random, rows: list[list[float]]) -> list[float]:
    """One of `rows` with a little noise, so each feature has a distribution to drift from."""
    return [round(value + rng.gauss(0, 0.1), 2) for value in rng.choice(rows)]


def shifted(body: dict, elapsed_s: float) -> dict:
    """The body with sepal_length moved by SHIFT, once the demo has run SHIFT_AFTER_S."""
    data = body.get("data")
    if elapsed_s < SHIFT_AFTER_S or not isinstance(data, list):
        return body
    moved = [[round(row[0] + SHIFT, 2), *row[1:]] if row and isinstance(row[0], float) else row for row in data]
    return {**body, "data": moved}


def start_monitor(collector_url: str, key: str, service: str, rows: list[list[float]]) -> None:
    """Upload the reference (the generator's unshifted distribution) and create the monitor."""
    rng = random.Random(7)
    text = io.StringIO()
    text.write(",".join(FEATURES) + "\n")
    for _ in range(REFERENCE_ROWS):
        text.write(",".join(str(v) for v in jittered(rng, rows)) + "\n")
    headers = {"x-api-key": key}
    base = f"{collector_url}/api/services/{service}"
    httpx.put(f"{base}/monitor-references/training", params={"format": "csv"}, content=text.getvalue().encode(),
              headers=headers, timeout=30).raise_for_status()
    httpx.put(f"{base}/monitors/{MONITOR}", json={"reference": "training", "window_seconds": WINDOW_S},
              headers=headers, timeout=30).raise_for_status()
