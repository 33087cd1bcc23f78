"""A slower, more error-prone candidate: 20 ms per call and 1 failure in 5."""
import json
import random
import time


def init():
    pass


def run(raw_data):
    time.sleep(0.02)
    if random.random() < 0.2:
        raise ValueError("flaky model failed")
    return {"deployment": "flaky", "result": json.loads(raw_data).get("data", [])}
