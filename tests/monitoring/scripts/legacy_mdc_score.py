"""A score.py written for AKS's legacy model data collector (azureml-monitoring)."""
import json

from azureml.monitoring import ModelDataCollector


def init():
    global inputs_dc
    inputs_dc = ModelDataCollector("model", designation="inputs", feature_names=["a", "b"])


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    inputs_dc.collect(rows)
    return [sum(row) for row in rows]
