"""A deployment the test steers through its input: {"sleep": s} sleeps, {"fail": true} raises,
{"big": n} answers n bytes; otherwise it echoes the input."""
import json
import time


def init():
    print("knobs ready")


def run(raw_data):
    data = json.loads(raw_data)
    time.sleep(data.get("sleep", 0))
    if data.get("fail"):
        raise ValueError("asked to fail")
    if data.get("big"):
        return "x" * data["big"]
    return {"deployment": "knobs", "echo": data}
