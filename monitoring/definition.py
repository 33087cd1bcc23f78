"""A monitor's definition: what it watches, against what, how often, and its thresholds.

Defaults (each one configurable per monitor through `thresholds`):

| metric                  | default | drift when | from                                                   |
|-------------------------|---------|------------|--------------------------------------------------------|
| normalized_wasserstein  | 0.1     | >=         | Azure ML numerical default; Evidently (reference > 1000)|
| jensen_shannon          | 0.1     | >=         | Azure ML categorical default; Evidently                 |
| psi                     | 0.1     | >=         | Evidently (0.25 is the common "act now" level)          |
| ks                      | 0.05    | p <        | Evidently (small data)                                  |
| chi_squared             | 0.05    | p <        | Evidently (small data)                                  |
| linf                    | 0.1     | >=         | ours (Azure ML names the metric, gives no default)      |
| new_categories          | 0       | >          | ours: any category the reference never saw              |
| null_rate, data_type_error_rate, out_of_bounds_rate | 0 | > | Azure ML data quality defaults      |
| drift_share             | 0.5     | >=         | Evidently's dataset drift (`drift_share`)               |

A feature drifts when its *primary* metric does: normalized Wasserstein for numerical features and
Jensen-Shannon for categorical ones, or, for windows of at most `small_window_rows` rows, KS and
chi-squared (Evidently switches to tests on small data the same way). The dataset drifts when at
least `drift_share` of the features drift. A reference is an uploaded file's sketch
(`reference`), or else the production data of the two windows before the one monitored (Azure
ML's default offset of 2x the window).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_THRESHOLDS = {
    "normalized_wasserstein": 0.1, "jensen_shannon": 0.1, "psi": 0.1, "ks": 0.05, "chi_squared": 0.05,
    "linf": 0.1, "new_categories": 0.0, "null_rate": 0.0, "data_type_error_rate": 0.0, "out_of_bounds_rate": 0.0,
    "drift_share": 0.5,
}
SIGNALS = ("data_drift", "prediction_drift", "data_quality")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FEATURE = re.compile(r"^[^\x00-\x1f]{1,128}$")


class MonitorSpec(BaseModel):
    """The JSON of `PUT /api/services/{service}/monitors/{name}`."""

    model_config = ConfigDict(extra="forbid")

    collection: str = Field("model_inputs", description="The collection watched (model_outputs for prediction drift).")
    signals: list[str] | None = Field(None, description="Some of data_drift, prediction_drift, data_quality "
                                      "(default: prediction_drift on model_outputs, else data_drift and data_quality).")
    features: list[str] | None = Field(None, description="Features watched (default: all the reference has).")
    categorical: list[str] = Field(default_factory=list, description="Features treated as categorical whatever their type.")
    reference: str | None = Field(None, description="An uploaded reference's name; default: the 2 windows before.")
    window_seconds: int = Field(86_400, ge=60, le=90 * 86_400, description="The production window, and how often it runs.")
    small_window_rows: int = Field(1000, ge=0, description="Windows up to this many rows use KS / chi-squared.")
    thresholds: dict[str, float] = Field(default_factory=dict, description="Overrides of DEFAULT_THRESHOLDS.")
    enabled: bool = True

    @field_validator("collection")
    @classmethod
    def _collection(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("1 to 64 letters, digits, '_', '.' or '-'")
        return value.lower()

    @field_validator("signals")
    @classmethod
    def _signals(cls, value: list[str] | None) -> list[str] | None:
        unknown = [s for s in value or [] if s not in SIGNALS]
        if unknown:
            raise ValueError(f"unknown signal {unknown[0]!r}; expected some of {', '.join(SIGNALS)}")
        return value

    @field_validator("features", "categorical")
    @classmethod
    def _features(cls, value: list[str] | None) -> list[str] | None:
        bad = [f for f in value or [] if not FEATURE.match(f)]
        if bad:
            raise ValueError(f"feature name {bad[0][:40]!r}: 1 to 128 characters, no control characters")
        return value

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = [k for k in value if k not in DEFAULT_THRESHOLDS]
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r}; expected some of {', '.join(DEFAULT_THRESHOLDS)}")
        return value

    def active_signals(self) -> list[str]:
        if self.signals:
            return self.signals
        return ["prediction_drift"] if self.collection == "model_outputs" else ["data_drift", "data_quality"]

    def threshold(self, metric: str) -> float:
        return self.thresholds.get(metric, DEFAULT_THRESHOLDS[metric])
