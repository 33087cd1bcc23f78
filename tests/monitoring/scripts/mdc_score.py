"""An unmodified Azure ML score.py using azureml-ai-monitoring's Collector (as Microsoft's docs show)."""
import json

import pandas as pd
from azureml.ai.monitoring import Collector


def init():
    global inputs_collector, outputs_collector
    inputs_collector = Collector(name="model_inputs")
    outputs_collector = Collector(name="model_outputs")


def run(raw_data):
    data = json.loads(raw_data)["data"]
    input_df = pd.DataFrame(data)
    context = inputs_collector.collect(input_df)
    output_df = pd.DataFrame({"prediction": [int(row["petal_length"] > 2.5) for row in data]})
    outputs_collector.collect(output_df, context)
    return output_df["prediction"].tolist()
