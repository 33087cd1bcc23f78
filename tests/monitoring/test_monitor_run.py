"""A monitor over shifted data flags exactly the shifted features: reference uploaded as a file,
production collected through POST /api/modeldata, all through a real collector process."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from drift_data import collected_lines, frame


def _send(collector, service: dict, lines: list[bytes]) -> None:
    headers = {"x-instrumentation-key": service["instrumentation_key"]}
    for start in range(0, len(lines), 50):
        answer = httpx.post(f"{collector.url}/api/modeldata", content=b"\n".join(lines[start:start + 50]), headers=headers)
        assert answer.status_code == 200, answer.text


def test_monitor_flags_exactly_the_shifted_features(collector):
    service = collector.create_service("drift")
    name = service["name"]
    reference = frame(5000, seed=1)
    production = frame(3000, seed=2, shift_a=0.8, shift_c=True)
    _send(collector, service, collected_lines(production))
    odd = [{"a": "oops", "b": None, "c": "x", "d": 10.5} for _ in range(30)]  # a type error, a null, out of bounds
    _send(collector, service, [orjson.dumps({"collection": "model_inputs", "data": odd})])
    with collector.admin as admin:
        csv = io.BytesIO(reference.to_csv(index=False).encode())
        uploaded = admin.put(f"/api/services/{name}/monitor-references/training?format=csv", content=csv.getvalue())
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()["features"]["c"]["type"] == "categorical"
        assert uploaded.json()["features"]["a"]["type"] == "numerical"
        created = admin.put(f"/api/services/{name}/monitors/inputs", json={"reference": "training", "window_seconds": 3600})
        assert created.status_code == 200, created.text
        end = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        run = admin.post(f"/api/services/{name}/monitors/inputs/run", params={"end": end})
        assert run.status_code == 200, run.text
    result = run.json()
    assert result["rows"] == 3030
    assert sorted(result["drifted_features"]) == ["a", "c"]
    assert result["dataset_drift"] is True  # 2 of 4 features: at the default share of 0.5
    rows = collector.query('modelMonitorResults | where monitor == "inputs" and metric == "normalized_wasserstein" '
                           '| project feature, value, drifted', name)
    by_feature = {r["feature"]: r for r in rows}
    assert by_feature["a"]["drifted"] and 0.6 < by_feature["a"]["value"] < 1.0
    assert not by_feature["b"]["drifted"] and not by_feature["d"]["drifted"]
    quality = {(r["feature"], r["metric"]): r["value"] for r in result["results"] if r["signal"] == "data_quality"}
    assert quality[("a", "data_type_error_rate")] == pytest.approx(30 / 3030)
    assert quality[("b", "null_rate")] == pytest.approx(30 / 3030)
    outside = int(((production["d"] < reference["d"].min()) | (production["d"] > reference["d"].max())).sum())
    assert quality[("d", "out_of_bounds_rate")] == pytest.approx((30 + outside) / 3030)
    assert quality[("c", "out_of_bounds_rate")] == 0 and quality[("a", "null_rate")] == 0


def test_bad_references_get_clear_400s(collector):
    service = collector.create_service("badref")
    name = service["name"]
    with collector.admin as admin:
        empty = admin.put(f"/api/services/{name}/monitor-references/r?format=csv", content=b"a,b\n")
        assert empty.status_code == 400 and "no rows" in empty.text
        mixed = admin.put(f"/api/services/{name}/monitor-references/r?format=csv",
                          content=b"a\n" + b"\n".join([b"1.5"] * 20 + [b"oops"]))
        assert mixed.status_code == 400 and "'a'" in mixed.text and "mixes numbers and text" in mixed.text
        unknown = admin.put(f"/api/services/{name}/monitor-references/r?format=csv&columns=a,zz", content=b"a\n1\n2\n")
        assert unknown.status_code == 400 and "'zz'" in unknown.text
        jsonl = admin.put(f"/api/services/{name}/monitor-references/r?format=jsonl", content=b'{"a": 1}\n{"a": "x"}\n')
        assert jsonl.status_code == 400
        fmt = admin.put(f"/api/services/{name}/monitor-references/r?format=xls", content=b"a\n1\n")
        assert fmt.status_code == 400 and "xls" in fmt.text
        no_ref = admin.put(f"/api/services/{name}/monitors/m", json={"reference": "missing"})
        assert no_ref.status_code == 400 and "missing" in no_ref.text
        bad_metric = admin.put(f"/api/services/{name}/monitors/m", json={"thresholds": {"nope": 1}})
        assert bad_metric.status_code == 422 and "nope" in bad_metric.text
        other = collector.create_service("other")
    with collector.client({"x-api-key": other["api_key"]}) as stranger:
        assert stranger.get(f"/api/services/{name}/monitors").status_code == 404
