"""Run in .venv-evidently (never the shared venv): Evidently's own stat tests on the reference and
current frames given as two CSV files; prints {feature: {metric: value}} as JSON.

Usage: python evidently_metrics.py REFERENCE.csv CURRENT.csv NUMERICAL,COLS CATEGORICAL,COLS
"""

import json
import os
import sys

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")

import pandas as pd  # noqa: E402
from evidently.legacy.calculations.stattests import (  # noqa: E402
    chi_stat_test,
    jensenshannon_stat_test,
    ks_stat_test,
    psi_stat_test,
    wasserstein_stat_test,
)
from evidently.legacy.core import ColumnType  # noqa: E402


def main() -> None:
    reference, current = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
    numerical = [c for c in sys.argv[3].split(",") if c]
    categorical = [c for c in sys.argv[4].split(",") if c]
    out = {}
    for column in numerical:
        ref, cur = reference[column].dropna(), current[column].dropna()
        out[column] = {
            "normalized_wasserstein": wasserstein_stat_test(ref, cur, ColumnType.Numerical, None).drift_score,
            "ks": ks_stat_test(ref, cur, ColumnType.Numerical, None).drift_score,
            "jensen_shannon": jensenshannon_stat_test(ref, cur, ColumnType.Numerical, None).drift_score,
            "psi": psi_stat_test(ref, cur, ColumnType.Numerical, None).drift_score,
        }
    for column in categorical:
        ref, cur = reference[column].dropna().astype(str), current[column].dropna().astype(str)
        out[column] = {
            "jensen_shannon": jensenshannon_stat_test(ref, cur, ColumnType.Categorical, None).drift_score,
            "psi": psi_stat_test(ref, cur, ColumnType.Categorical, None).drift_score,
            "chi_squared": chi_stat_test(ref, cur, ColumnType.Categorical, None).drift_score,
        }
    print(json.dumps({k: {m: float(v) for m, v in metrics.items()} for k, metrics in out.items()}))


if __name__ == "__main__":
    main()
