"""Sample feature service for `insights demo`: what the iris model's score.py looks a region up in.
It runs under `insights score` as a service of its own (role `demo-features`), so the application
map shows two nodes and the call between them, and live metrics show its requests beside the
model's dependency calls: usually quick, sometimes slow, now and then a 503.

    POST /score {"region": "eu"}  -> {"region_factor": 1.02}
"""

import json
import random
import time

from azureml.contrib.services.aml_response import AMLResponse


def init():
    print("init: feature service ready")


def run(raw_data):
    roll = random.random()
    time.sleep(random.uniform(0.002, 0.02) if roll > 0.1 else random.uniform(0.1, 0.3))
    if roll < 0.04:
        return AMLResponse(json.dumps({"error": "feature store busy"}), 503)
    return {"region": json.loads(raw_data or "{}").get("region", "eu"), "region_factor": round(random.uniform(0.9, 1.1), 3)}
