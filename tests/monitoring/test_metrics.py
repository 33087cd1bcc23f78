"""Each metric against an independent computation: scipy, or the formula on hand-made
distributions with known answers; and against Evidently's own stat tests on the same data where
the definitions match (run in .venv-evidently, a subprocess: Evidently must not enter the shared
venv). Where they differ, and why: Evidently bins numerical features over reference and current
together (Sturges), ours are fixed from the reference, so numerical Jensen-Shannon and PSI are only
compared for agreement on drift, not value."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from drift_data import frame
from scipy import stats
from scipy.spatial import distance

from monitoring import metrics, sketch
from monitoring.references import sketch_table

ROOT = Path(__file__).resolve().parents[2]
EVIDENTLY_PYTHON = ROOT / ".venv-evidently" / "bin" / "python"


def test_jensen_shannon_known_answers():
    assert metrics.jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(math.sqrt(math.log(2)))
    assert metrics.jensen_shannon(np.array([0.3, 0.7]), np.array([0.3, 0.7])) == 0.0
    p, q = np.array([0.1, 0.4, 0.5]), np.array([0.3, 0.3, 0.4])
    m = (p + q) / 2
    by_hand = math.sqrt((np.sum(p * np.log(p / m)) + np.sum(q * np.log(q / m))) / 2)
    assert metrics.jensen_shannon(p, q) == pytest.approx(by_hand)


def test_psi_known_answer_and_empty_bins():
    # (0.5-0.25)ln(2) + (0.5-0.75)ln(2/3) = 0.25 ln 3
    assert metrics.psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(0.25 * math.log(3))
    value = metrics.psi(np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.4, 0.1]))
    by_hand = (0.1 * math.log(0.5 / 0.4)) + (0.0001 - 0.1) * math.log(0.0001 / 0.1)
    assert value == pytest.approx(by_hand)


def test_linf_and_chi_squared_against_scipy():
    assert metrics.linf(np.array([0.2, 0.8]), np.array([0.5, 0.5])) == pytest.approx(0.3)
    ref, cur = np.array([50.0, 30.0, 20.0]), np.array([40.0, 45.0, 15.0])
    assert metrics.chi_squared_p_value(ref, cur) == pytest.approx(stats.chisquare(cur, ref * cur.sum() / ref.sum()).pvalue)
    assert metrics.chi_squared_p_value(np.array([10.0, 0.0]), np.array([5.0, 5.0])) == 0.0  # a new category


def test_normalized_wasserstein_against_scipy_and_a_known_shift():
    rng = np.random.default_rng(3)
    ref_values, cur_values = rng.normal(0, 2, 50_000), rng.normal(0.5, 2.5, 20_000)
    reference = sketch.numerical("x", ref_values, 0)
    current = sketch.numerical("x", cur_values, 0, reference=reference)
    expected = stats.wasserstein_distance(ref_values, cur_values) / np.std(ref_values)
    assert metrics.normalized_wasserstein(reference, current) == pytest.approx(expected, rel=0.01)
    shifted = sketch.numerical("x", ref_values + 1.0, 0, reference=reference)  # W1 of a pure shift is the shift
    assert metrics.normalized_wasserstein(reference, shifted) == pytest.approx(1.0 / np.std(ref_values), rel=1e-6)


def test_quantiles_of_large_windows_are_within_a_fine_bin():
    values = np.random.default_rng(6).lognormal(0, 1, 400_000)
    exact = np.quantile(values, sketch.quantile_levels())
    assert np.max(np.abs(sketch.quantiles(values) - exact)) <= (values.max() - values.min()) / sketch.FINE_BINS * 1.01


def test_ks_is_scipys_on_small_windows():
    rng = np.random.default_rng(4)
    ref_values, cur_values = rng.normal(0, 1, 3000), rng.normal(0.1, 1, 400)
    reference = sketch.numerical("x", ref_values, 0)
    current = sketch.numerical("x", cur_values, 0, reference=reference)
    assert metrics.ks_p_value(reference, current) == pytest.approx(stats.ks_2samp(ref_values, cur_values).pvalue)


def test_reference_bins_are_numpys_histogram_inside_the_range():
    values = np.random.default_rng(5).normal(0, 1, 10_000)
    reference = sketch.numerical("x", values, 0)
    counts, _ = np.histogram(values, bins="sturges")
    assert reference.counts[1:-1] == list(counts) and reference.counts[0] == reference.counts[-1] == 0
    js = metrics.jensen_shannon(*metrics.binned(reference, reference)[1:])
    assert js == 0.0
    assert distance.jensenshannon([1, 2], [1, 2]) == 0.0


def test_data_quality_rates_by_hand():
    reference = sketch.numerical("x", np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 0)
    values = np.array([1.0, 2.0, -1.0, 9.0, np.nan, np.nan, np.nan, 3.0, 4.0, 5.0])  # 3 NaN: 2 nulls + 1 type error
    current = sketch.numerical("x", values, nulls=2, reference=reference, type_errors=1)
    assert metrics.quality_metrics(current) == {"null_rate": 0.2, "data_type_error_rate": 0.1, "out_of_bounds_rate": 0.2}
    cats = sketch.categorical("c", np.array(["a", "b"]), 0)
    now = sketch.categorical("c", np.array(["a", "b", "q", "q"]), 1, reference=cats)
    assert metrics.quality_metrics(now)["out_of_bounds_rate"] == pytest.approx(2 / 5)
    assert metrics.drift_metrics(cats, now)["new_categories"] == 2


@pytest.mark.skipif(not EVIDENTLY_PYTHON.exists() and not os.environ.get("CI"),
                    reason=".venv-evidently not set up (.ci/run creates it)")
def test_against_evidentlys_own_stat_tests(tmp_path):
    import pyarrow as pa

    reference, current = frame(4000, seed=7), frame(2500, seed=8, shift_a=0.3, shift_c=True)
    reference.to_csv(tmp_path / "ref.csv", index=False)
    current.to_csv(tmp_path / "cur.csv", index=False)
    env = {"PATH": os.environ.get("PATH", ""), "DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
    completed = subprocess.run([str(EVIDENTLY_PYTHON), str(Path(__file__).parent / "evidently_metrics.py"),
                                str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv"), "a,b,d", "c"],
                               capture_output=True, text=True, env=env, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    theirs = json.loads(completed.stdout)
    ref_sketch = {k: sketch.FeatureSketch.from_json(v) for k, v in sketch_table(pa.Table.from_pandas(reference))["features"].items()}
    for column in ("a", "b", "d"):
        values = current[column].to_numpy()
        ours = metrics.drift_metrics(ref_sketch[column], sketch.numerical(column, values, 0, reference=ref_sketch[column]))
        assert ours["normalized_wasserstein"] == pytest.approx(theirs[column]["normalized_wasserstein"], rel=0.02, abs=0.002)
        assert ours["ks"] == pytest.approx(theirs[column]["ks"], rel=1e-9, abs=1e-300)  # both under 5,000 rows: exact
        assert (ours["jensen_shannon"] >= 0.1) == (theirs[column]["jensen_shannon"] >= 0.1)  # bins differ: agree on drift
        assert (ours["psi"] >= 0.1) == (theirs[column]["psi"] >= 0.1)
    ours_c = metrics.drift_metrics(ref_sketch["c"], sketch.categorical("c", current["c"].to_numpy(), 0, reference=ref_sketch["c"]))
    for metric in ("jensen_shannon", "psi", "chi_squared"):
        assert ours_c[metric] == pytest.approx(theirs["c"][metric], rel=1e-6, abs=1e-12), metric
