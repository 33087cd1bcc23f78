"""Sample score.py for `insights demo`: an iris classifier (scikit-learn, trained on the data set
scikit-learn ships) in the init()/run() shape Azure ML uses.

    POST /score {"data": [[5.1, 3.5, 1.4, 0.2]]}            -> {"predictions": ["setosa"]}
    ... {"data": ..., "slow": 0.8}                            -> the same, 0.8 s later
    ... {"rows": ...}                                         -> 400 (no "data")
    ... {"data": [["abc", 1, 2, 3]]}                          -> 500 (ValueError from the model)

Each call looks the flower's "region" up in a feature service (FEATURE_STORE_URL: the demo's
features.py under `insights score`, a service of its own), so the demo has dependency calls, some
slow and some failing, and prints its input as JSON, so
`traces | where customDimensions contains "input"` finds it. Its inputs are collected for model
monitoring (`modelData | where collection == "model_inputs"`).
"""

import json
import os
import time
import urllib.error
import urllib.request

import joblib
import pandas as pd
from azureml.ai.monitoring import Collector
from azureml.contrib.services.aml_response import AMLResponse

model = None
labels = None
inputs_collector = None
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def init():
    global model, labels, inputs_collector
    inputs_collector = Collector(name="model_inputs")  # model data collection, as on Azure ML
    bundle = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))
    model, labels = bundle["model"], bundle["labels"]
    print(f"init: loaded {type(model).__name__} for {len(labels)} classes")


def _features(region: str) -> dict:
    """One outgoing HTTP call, tracked as a dependency by the wrapper."""
    url = f"{os.environ.get('FEATURE_STORE_URL', 'http://127.0.0.1:9')}/score"
    call = urllib.request.Request(url, data=json.dumps({"region": region}).encode(),
                                  headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(call, timeout=2) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, TimeoutError) as error:
        print(f"feature store unavailable: {error}")
        return {}


def run(raw_data):
    request = json.loads(raw_data)
    if "data" not in request:
        return AMLResponse(json.dumps({"error": "expected {\"data\": [[sepal_length, sepal_width, petal_length, petal_width], ...]}"}), 400)
    print(json.dumps({"input": request["data"]}))
    inputs_collector.collect(pd.DataFrame(request["data"], columns=FEATURES))
    _features(request.get("region", "eu"))
    if request.get("slow"):
        time.sleep(float(request["slow"]))
    predictions = [labels[int(i)] for i in model.predict(request["data"])]
    return {"predictions": predictions}
