"""Deployment blue: answers which deployment it is and doubles the input."""
import json


def init():
    print("blue init")


def run(raw_data):
    data = json.loads(raw_data)
    return {"deployment": "blue", "result": [2 * x for x in data.get("data", [])]}
