"""Deployment green: the same answer as blue's, except for inputs holding 7 (a model change)."""
import json


def init():
    print("green init")


def run(raw_data):
    data = json.loads(raw_data)
    values = data.get("data", [])
    return {"deployment": "green", "result": [2 * x + (1 if x == 7 else 0) for x in values]}
