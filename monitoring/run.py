"""One monitor run: sketch a production window against the monitor's reference, compute every
signal per feature, and write the results as `modelMonitorResults` rows (one per window, feature
and metric; `feature` "*" for the dataset-level drift share).

The primary metric of each feature carries, in `details`, the two histograms (bin labels, and for
numerical features the bin edges, reference and production shares) and the bins that drifted most:
the dashboard draws them and turns a drifted bin into the query of the requests whose inputs fell
in it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from collector.store.monitors import MonitorState
from monitoring import metrics, sketch
from monitoring.definition import MonitorSpec
from monitoring.sketch import FeatureSketch


class MonitorError(ValueError):
    """A monitor cannot run (no reference, a feature its reference lacks); the message says which."""


@dataclass
class RunResult:
    run_id: str
    window_start: datetime
    window_end: datetime
    rows: int
    drifted: list[str]
    dataset_drift: bool
    results: list[dict]

    def to_json(self) -> dict:
        return {"run_id": self.run_id, "window_start": _iso(self.window_start), "window_end": _iso(self.window_end),
                "rows": self.rows, "drifted_features": self.drifted, "dataset_drift": self.dataset_drift,
                "results": [{**r, "details": orjson.loads(r["details"]), "windowStart": _iso(self.window_start),
                             "windowEnd": _iso(self.window_end)} for r in self.results]}


def run_monitor(state: MonitorState, service: str, name: str, spec: MonitorSpec, window_end: datetime,
                window_start: datetime | None = None, write: bool = True) -> RunResult:
    """Run over [window_start, window_end) (default: one window back from its end)."""
    start = window_start or window_end - timedelta(seconds=spec.window_seconds)
    reference = _reference(state, service, spec, start, window_end)
    wanted = spec.features or sorted(reference)
    missing = [f for f in wanted if f not in reference]
    if missing:
        raise MonitorError(f"feature {missing[0]!r} is not in the reference (it has {', '.join(sorted(reference)[:20])})")
    current, rows = window_sketches(state, service, spec.collection, start, window_end,
                                    {f: reference[f] for f in wanted})
    results, drifted = _feature_results(spec, reference, current, wanted, rows)
    run_id = uuid.uuid4().hex
    dataset_drift = False
    if "data_drift" in spec.active_signals() or "prediction_drift" in spec.active_signals():
        share = len(drifted) / len(wanted) if wanted else 0.0
        dataset_drift = bool(wanted) and metrics.is_drift("drift_share", share, spec.threshold("drift_share"))
        results.append(_row("dataset_drift", "*", "dataset", "drift_share", share, spec.threshold("drift_share"),
                            {"drifted": drifted, "features": len(wanted), "rows": rows}, drifted=dataset_drift))
    result = RunResult(run_id, start, window_end, rows, drifted, dataset_drift, results)
    if write:
        stamp = _micros(datetime.now(UTC).replace(tzinfo=None))
        state.write_results(service, [{**r, "monitor": name, "runId": run_id, "timestamp": stamp,
                                       "windowStart": _micros(start), "windowEnd": _micros(window_end)}
                                      for r in results]).result()
    return result


def _feature_results(spec: MonitorSpec, reference: dict[str, FeatureSketch], current: dict[str, FeatureSketch],
                     features: list[str], rows: int) -> tuple[list[dict], list[str]]:
    signals = spec.active_signals()
    drift_signal = "prediction_drift" if "prediction_drift" in signals else ("data_drift" if "data_drift" in signals else None)
    results, drifted = [], []
    for feature in features:
        ref, cur = reference[feature], current[feature]
        if drift_signal and cur.present:
            primary = _primary(ref.kind, cur.present, spec.small_window_rows)
            values = metrics.drift_metrics(ref, cur, prediction=drift_signal == "prediction_drift")
            for metric, value in values.items():
                flagged = metrics.is_drift(metric, value, spec.threshold(metric))
                details = _histograms(ref, cur, flagged) if metric == primary else {}
                results.append(_row(drift_signal, feature, ref.kind, metric, value, spec.threshold(metric),
                                    {**details, "primary": metric == primary}, flagged))
                if metric == primary and flagged:
                    drifted.append(feature)
        if "data_quality" in signals and cur.rows:
            for metric, value in metrics.quality_metrics(cur).items():
                results.append(_row("data_quality", feature, ref.kind, metric, value, spec.threshold(metric),
                                    {"rows": cur.rows}, metrics.is_drift(metric, value, spec.threshold(metric))))
    return results, drifted


def _primary(kind: str, rows: int, small: int) -> str:
    if kind == "numerical":
        return "ks" if rows <= small else "normalized_wasserstein"
    return "chi_squared" if rows <= small else "jensen_shannon"


def _histograms(ref: FeatureSketch, cur: FeatureSketch, flagged: bool) -> dict:
    labels, ref_shares, cur_shares = metrics.binned(ref, cur)
    gaps = np.abs(cur_shares - ref_shares)
    grown = [int(i) for i in np.argsort(-(cur_shares - ref_shares))[:3] if cur_shares[i] > ref_shares[i]]
    return {"bins": labels, "reference": [round(float(v), 6) for v in ref_shares],
            "current": [round(float(v), 6) for v in cur_shares], "edges": ref.edges,
            "drifted_bins": grown if flagged else [], "largest_gap": float(gaps.max()) if len(gaps) else 0.0}


def _row(signal: str, feature: str, kind: str, metric: str, value: float, threshold: float, details: dict,
         drifted: bool) -> dict:
    return {"signal": signal, "feature": feature, "featureType": kind, "metric": metric,
            "value": float(value), "threshold": float(threshold), "drifted": bool(drifted), "details": _json(details)}


def _json(details: dict) -> str:
    return orjson.dumps(details).decode()


def _reference(state: MonitorState, service: str, spec: MonitorSpec, start: datetime, end: datetime) -> dict[str, FeatureSketch]:
    if spec.reference:
        stored = state.reference(service, spec.reference)
        if stored is None:
            raise MonitorError(f"no reference named {spec.reference!r} (upload one: insights monitor reference upload)")
        return {name: FeatureSketch.from_json(s) for name, s in stored["features"].items()}
    lookback = timedelta(seconds=2 * spec.window_seconds)
    features = spec.features or state.feature_names(service, spec.collection, start - lookback, start)
    if not features:
        raise MonitorError(f"no {spec.collection} rows in the reference window (the 2 windows before "
                           f"{_iso(start)}) and no uploaded reference")
    kinds = {f: FeatureSketch(f, "numerical", 0, 0) for f in features}
    sketches, _ = window_sketches(state, service, spec.collection, start - lookback, start, kinds,
                                  infer=True, categorical=frozenset(spec.categorical))
    return sketches


def window_sketches(state: MonitorState, service: str, collection: str, start: datetime, end: datetime,
                    reference: dict[str, FeatureSketch], infer: bool = False,
                    categorical: frozenset[str] = frozenset()) -> tuple[dict[str, FeatureSketch], int]:
    """Sketches of the window's values, binned on `reference`'s (or, with `infer`, a new reference
    whose kinds are inferred from the values); and the window's row count."""
    numerical = [f for f, s in reference.items() if s.kind == "numerical" and f not in categorical]
    texts = [f for f in reference if f not in numerical]
    table = state.collected(service, collection, start, end, numerical, texts)
    out: dict[str, FeatureSketch] = {}
    for i, feature in enumerate(numerical):
        values = table.column(f"n{i}").to_numpy()
        errors = int(np.count_nonzero(table.column(f"t{i}").to_numpy(zero_copy_only=False)))
        nulls = int(np.isnan(values).sum()) - errors
        if infer:
            present = values[~np.isnan(values)]
            if errors > present.size or sketch.infer_kind(present) == "categorical":
                texts.append(feature)
                continue
            out[feature] = sketch.numerical(feature, values, nulls, type_errors=errors)
        else:
            out[feature] = sketch.numerical(feature, values, nulls, reference=reference[feature], type_errors=errors)
    categorical_table = table
    if len(texts) > len(reference) - len(numerical):  # inferred categorical: read again, as text
        categorical_table = state.collected(service, collection, start, end, [], texts)
    for j, feature in enumerate(texts):
        column = categorical_table.column(f"c{j}")
        out[feature] = _categorical(feature, column, None if infer else reference[feature])
    return out, table.num_rows


def _categorical(feature: str, column: pa.ChunkedArray, reference: FeatureSketch | None) -> FeatureSketch:
    """Counted in Arrow (distinct values only reach Python), labels normalized as sketches write
    them (a whole number collected as 1.0 and uploaded as 1 is one category)."""
    nulls = column.null_count
    counts = pc.value_counts(column.drop_null()) if len(column) - nulls else None
    labels: list[str] = [] if counts is None else counts.field("values").to_pylist()
    numbers = np.array([_number(t) for t in labels])
    if labels and not np.isnan(numbers).any():
        labels = list(sketch.category_text(numbers))
    tally: dict[str, int] = {}
    for label, count in zip(labels, [] if counts is None else counts.field("counts").to_pylist(), strict=True):
        tally[label] = tally.get(label, 0) + count
    return sketch.categorical_counts(feature, tally, nulls, reference=reference)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _micros(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1_000_000)


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat() + "Z"
