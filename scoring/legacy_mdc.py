"""The legacy AKS `azureml.monitoring.ModelDataCollector`, for score.py files written for it:
`ModelDataCollector("model", designation="inputs", feature_names=[...]).collect(data)` lands in
`modelData` like the new library's collections, with the request's operation_Id.

Designations map to the collection names monitors read: `inputs` -> `model_inputs`,
`predictions`/`outputs` -> `model_outputs`, any other is kept as it is. `install_aliases` makes the
import path resolve here only when the real package is absent, as scoring/aml.py does for
azureml.contrib.services.
"""

from __future__ import annotations

import sys
import types

from scoring import modeldata

_COLLECTIONS = {"inputs": "model_inputs", "predictions": "model_outputs", "outputs": "model_outputs"}


class ModelDataCollector:
    def __init__(self, model_name, designation="default", feature_names=None, workspace=None, webservice_name=None,
                 model_version=None, **_ignored):
        self.model_name = str(model_name)
        self.designation = str(designation)
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.model_version = None if model_version is None else str(model_version)

    def collect(self, input_data, user_correlation_id: str = ""):
        """Queue the rows (a list of rows, a numpy array, a DataFrame or one value); never raises
        into run(), and returns the correlation id as the legacy collector did."""
        target = modeldata.current
        if target is not None:
            target.item(_COLLECTIONS.get(self.designation, self.designation), self._records(input_data),
                        correlation_id=user_correlation_id or None, model_version=self.model_version)
        return user_correlation_id

    def add_correlations(self, input_data, correlations):
        return input_data

    def _records(self, data) -> object:
        if hasattr(data, "to_dict") and hasattr(data, "columns"):
            return data.to_dict(orient="records")
        if hasattr(data, "tolist"):
            data = data.tolist()
        if isinstance(data, (list, tuple)):
            rows = [list(row) if isinstance(row, (list, tuple)) else [row] for row in data]
            names = self.feature_names
            if names and all(len(row) == len(names) for row in rows):
                return [dict(zip(names, row, strict=True)) for row in rows]
            return rows
        return data


def install_aliases() -> None:
    """Make `azureml.monitoring` resolve here, unless the real package is installed."""
    try:
        __import__("azureml.monitoring")
        return
    except ImportError:
        pass
    if "azureml" not in sys.modules:
        package = types.ModuleType("azureml")
        package.__path__ = []
        sys.modules["azureml"] = package
    sys.modules["azureml.monitoring"] = sys.modules[__name__]
    sys.modules["azureml"].monitoring = sys.modules[__name__]
