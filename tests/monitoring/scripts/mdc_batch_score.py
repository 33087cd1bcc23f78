"""A batch score.py collecting each mini-batch's inputs with azureml-ai-monitoring's Collector."""
import os

import pandas as pd
from azureml.ai.monitoring import Collector


def init():
    global inputs
    inputs = Collector(name="model_inputs")


def run(mini_batch):
    frame = pd.DataFrame({"file": [os.path.basename(p) for p in mini_batch],
                          "value": [float(open(p).read()) for p in mini_batch]})
    inputs.collect(frame)
    return frame
