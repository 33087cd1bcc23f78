"""Models and model monitors on the ClickHouse store with two collectors (store/clickhouse/models.py,
monitors.py, monitoring/extension.py's lease), against real collector processes: the ClickHouse
stand-in (chdb behind ClickHouse's HTTP interface: no ClickHouse server can run here) shared by two
collectors, and the session's DuckDB collector (tests/conftest.py) beside them as the oracle.

- the same collected rows and reference give the same drift and quality metrics per feature on
  both stores (a differential test; the rows include type errors, nulls, numbers sent as text and
  numbers in a categorical feature, where the two stores' JSON functions must agree);
- a model registered through one collector downloads through the other, byte for byte, and
  registrations through both at once get a version each;
- a monitor created on one collector runs each window once between the two (the lease).
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import orjson
import pytest
from scaleout import collector_pair
from store_helpers import eventually

from collector.client import ApiError, Model, Workspace

WINDOW = 3600


@pytest.fixture(scope="module")
def pair(clickhouse_server, tmp_path_factory):
    """Two collectors on one ClickHouse store; their monitor schedulers tick every second."""
    root = tmp_path_factory.mktemp("models-monitors")
    with collector_pair(clickhouse_server, "models", root, {"INSIGHTS_MONITOR_TICK_S": "1"}) as collectors:
        yield collectors


# data ---------------------------------------------------------------------------------------------


def _rows(count: int, seed: int, shift: float = 0.0) -> list[dict]:
    rng = np.random.default_rng(seed)
    weights = [0.2, 0.3, 0.5] if shift else [0.5, 0.3, 0.2]
    return [{"a": float(a), "b": float(b), "c": str(c), "d": float(d), "e": int(e)} for a, b, c, d, e in zip(
        rng.normal(shift, 1.0, count), rng.normal(5.0, 2.0, count), rng.choice(["x", "y", "z"], count, p=weights),
        rng.uniform(0.0, 10.0, count), rng.integers(1, 4, count))]


ODD = [{"a": "oops", "b": None, "c": 7, "d": "4.5", "e": 2.0}, {"a": " 1.25 ", "c": True, "d": [1], "e": "3"},
       {"b": "7e0", "c": None, "d": {"x": 1}, "e": 1}, {"a": True, "b": 12, "c": "x", "d": 11.0, "e": 5}]
"""Rows where the stores' JSON readings must agree: type errors, nulls, absent keys, numbers as text,
booleans, a number and a boolean in a categorical feature, arrays and objects."""


def _items(rows: list[dict], first: datetime, last: datetime, per_item: int = 100) -> list[bytes]:
    """POST /api/modeldata lines, their `time` spread evenly from `first` to `last`."""
    chunks = [rows[i:i + per_item] for i in range(0, len(rows), per_item)]
    step = (last - first) / max(len(chunks) - 1, 1)
    return [orjson.dumps({"collection": "model_inputs", "data": chunk, "time": (first + step * i).isoformat() + "Z"})
            for i, chunk in enumerate(chunks)]


def _send(collector, service: dict, lines: list[bytes]) -> None:
    headers = {"x-instrumentation-key": service["instrumentation_key"]}
    for start in range(0, len(lines), 50):
        answer = httpx.post(f"{collector.url}/api/modeldata", content=b"\n".join(lines[start:start + 50]),
                            headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text


def _csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"


def _by_metric(run: dict) -> dict:
    return {(r["signal"], r["feature"], r["metric"]): r for r in run["results"]}


# the differential test ----------------------------------------------------------------------------


def _feed_and_run(collector, end: datetime) -> tuple[dict, dict, str]:
    """The same rows and reference into one store; (the run against the uploaded reference, the run
    against the two windows before, the service)."""
    service = collector.create_service("drift-diff")
    name = service["name"]
    production = _rows(2000, seed=2, shift=0.7) + ODD
    past = _rows(1500, seed=3)
    _send(collector, service, _items(production, end - timedelta(seconds=WINDOW - 60), end - timedelta(seconds=30)))
    _send(collector, service, _items(past, end - timedelta(seconds=3 * WINDOW - 60), end - timedelta(seconds=WINDOW + 60)))
    with collector.admin as admin:
        uploaded = admin.put(f"/api/services/{name}/monitor-references/training?format=csv", content=_csv(_rows(3000, seed=1)))
        assert uploaded.status_code == 200, uploaded.text
        for monitor, body in (("uploaded", {"reference": "training", "window_seconds": WINDOW,
                                             "signals": ["data_drift", "data_quality"]}),
                              ("past", {"window_seconds": WINDOW, "signals": ["data_drift", "data_quality"]})):
            created = admin.put(f"/api/services/{name}/monitors/{monitor}", json={**body, "enabled": False})
            assert created.status_code == 200, created.text
        runs = [admin.post(f"/api/services/{name}/monitors/{monitor}/run", params={"end": _iso(end)})
                for monitor in ("uploaded", "past")]
    for run in runs:
        assert run.status_code == 200, run.text
    return runs[0].json(), runs[1].json(), name


def test_scaleout_drift_and_quality_metrics_are_the_same_on_duckdb_and_clickhouse(collector, pair):
    duck, (a, b) = collector, pair
    end = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(minutes=1)
    duck_runs, click_runs = _feed_and_run(duck, end), _feed_and_run(a, end)
    for on_duck, on_click in zip(duck_runs[:2], click_runs[:2]):
        assert on_click["rows"] == on_duck["rows"] > 0
        assert on_click["drifted_features"] == on_duck["drifted_features"]
        duck_metrics, click_metrics = _by_metric(on_duck), _by_metric(on_click)
        assert set(click_metrics) == set(duck_metrics)
        for key, expected in duck_metrics.items():
            got = click_metrics[key]
            assert got["value"] == pytest.approx(expected["value"], rel=1e-9, abs=1e-12), key
            assert got["drifted"] == expected["drifted"] and got["featureType"] == expected["featureType"], key
            assert got["details"].get("current") == pytest.approx(expected["details"].get("current"), abs=1e-9), key
    uploaded, past, service = click_runs
    assert "a" in uploaded["drifted_features"]  # the shift is seen, not an empty agreement
    assert _by_metric(uploaded)[("data_quality", "a", "data_type_error_rate")]["value"] == pytest.approx(1 / 2004)
    assert {r["feature"] for r in past["results"]} >= {"a", "b", "c", "d", "e"}  # feature names read in ClickHouse
    # the results are ClickHouse's: the other collector reads them, through the API and through KQL
    url = f"/api/services/{service}/monitors/uploaded/results"
    with b.admin as admin:  # b learns of the service a created within its registry's refresh
        eventually(lambda: admin.get(url).status_code == 200)
        answer = admin.get(url)
    assert answer.status_code == 200, answer.text
    stored = answer.json()["results"]
    assert sorted((r["feature"], r["metric"]) for r in stored) == sorted((r["feature"], r["metric"]) for r in uploaded["results"])
    counted = b.query('modelMonitorResults | where monitor == "past" | count', service)
    assert counted == [{"Count": len(past["results"])}]


# models -------------------------------------------------------------------------------------------


def test_scaleout_a_model_registered_through_one_collector_downloads_through_the_other(pair, tmp_path):
    a, b = pair
    through_a, through_b = Workspace(a.url, api_key=a.admin_key), Workspace(b.url, api_key=b.admin_key)
    name = f"shared_{os.urandom(4).hex()}"
    weights = os.urandom(5 * 2**20 + 123)  # two chunks in ClickHouse
    (tmp_path / "model.bin").write_bytes(weights)
    (tmp_path / "bundle" / "sub").mkdir(parents=True)
    (tmp_path / "bundle" / "sub" / "w.bin").write_bytes(b"w" * 1000)
    (tmp_path / "bundle" / "config.json").write_text("{}")
    registered = Model.register(through_a, tmp_path / "model.bin", name, tags={"stage": "dev"})
    folder = Model.register(through_a, tmp_path / "bundle", name)
    seen = Model(through_b, name, version=1)
    assert (seen.sha256, seen.tags, folder.version) == (registered.sha256, {"stage": "dev"}, 2)
    assert seen.download(tmp_path / "out") == str(tmp_path / "out" / "model.bin")
    assert (tmp_path / "out" / "model.bin").read_bytes() == weights
    Model(through_b, name).download(tmp_path / "out")
    assert (tmp_path / "out" / "bundle" / "sub" / "w.bin").read_bytes() == b"w" * 1000

    (tmp_path / "small.bin").write_bytes(b"small")
    with ThreadPoolExecutor(4) as pool:  # registrations through both collectors at once get a version each
        versions = sorted(pool.map(lambda ws: Model.register(ws, tmp_path / "small.bin", name).version,
                                   [through_a, through_b, through_a, through_b]))
    assert versions == [3, 4, 5, 6]
    Model(through_b, name, version=1).delete()
    with pytest.raises(ApiError, match=r"no model .*:1'; its versions are 2, 3, 4, 5, 6"):
        Model(through_a, name, version=1)
    with a.admin as admin:
        assert admin.get(f"/api/models/{name}/versions/1/content").status_code == 404


# scheduled runs -----------------------------------------------------------------------------------


def test_scaleout_a_monitor_created_on_one_collector_runs_each_window_once(pair):
    a, b = pair
    service = a.create_service("drift-once")
    name = service["name"]
    now = datetime.now(UTC).replace(tzinfo=None)
    _send(a, service, _items(_rows(1200, seed=5, shift=0.5), now - timedelta(seconds=170), now))
    with a.admin as admin:
        assert admin.put(f"/api/services/{name}/monitor-references/training?format=csv",
                         content=_csv(_rows(1000, seed=1))).status_code == 200
        created = admin.put(f"/api/services/{name}/monitors/every-minute", json={"reference": "training", "window_seconds": 60})
        assert created.status_code == 200, created.text
    deadline = time.monotonic() + 90
    with b.admin as admin:
        # B knows the new service within its registry's 2 s refresh: until then it answers 404
        while (shown := admin.get(f"/api/services/{name}/monitors/every-minute")).status_code != 200 or \
                shown.json()["last_window_end"] is None:
            assert time.monotonic() < deadline, f"no collector ran the monitor: {shown.status_code} {shown.text}"
            time.sleep(0.5)
        time.sleep(3)  # three more ticks of both schedulers: a second run of the window would show now
        results = admin.get(f"/api/services/{name}/monitors/every-minute/results").json()["results"]
    runs: dict[str, set[str]] = defaultdict(set)
    for row in results:
        runs[row["windowEnd"]].add(row["runId"])
    assert runs and all(len(ids) == 1 for ids in runs.values()), dict(runs)
    per_run = defaultdict(int)
    for row in results:
        per_run[row["runId"]] += 1
    assert len(set(per_run.values())) == 1  # every window's rows are one run's, none written twice
