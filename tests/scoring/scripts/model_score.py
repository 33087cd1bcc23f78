"""Reads its model from AZUREML_MODEL_DIR, as a registered model's score.py does."""

import os

model = None


def init():
    global model
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.txt")) as handle:
        model = handle.read().strip()
    print(f"loaded model {model}")


def run(raw_data):
    return {"model": model, "input": raw_data}
