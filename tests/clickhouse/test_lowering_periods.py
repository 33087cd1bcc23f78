"""series_decompose(_anomalies) with a detected period (seasonality -1) on the clickhouse store
(collector/kql/clickhouse/periods.py): the UDF's own answer (numpy's FFT autocorrelation,
series_math.periods) on noisy seasonal series of several periods, nulls, too-short and periodless
series; and a refusal, never another answer, where rounding could pick another lag (a perfectly
periodic series, whose multiples of the period tie; one constant but for rounding)."""

from __future__ import annotations

import json
import random

import pytest
from store_helpers import lowered_rows, same_reals

from collector.kql.series_functions import _udf


def _lowered(client, name: str, options: list, series: list) -> str | None:
    text = json.dumps(series).replace("'", "''")
    packed = "CAST(json_array(" + ", ".join(f"CAST('{json.dumps(o)}' AS JSON)" for o in options) + ") AS VARCHAR)"
    sql = f"SELECT kql_compute('{name}', CAST(CAST('{text}' AS JSON) AS VARCHAR), {packed}) AS r"
    return lowered_rows(client, sql)[0][0]


def _seasonal(rnd: random.Random, n: int, period: int, noise: float) -> list:
    shape = [rnd.uniform(-10, 10) for _ in range(period)]
    return [round(shape[i % period] + 0.01 * i + rnd.gauss(0, noise), 3) for i in range(n)]


def _series() -> list[list]:
    rnd = random.Random("periods")
    out = [_seasonal(rnd, n, p, noise) for n, p, noise in [(60, 7, 0.5), (200, 24, 1.0), (97, 5, 2.0), (400, 12, 3.0)]]
    with_nulls = _seasonal(rnd, 80, 6, 0.5)
    for i in (3, 17, 40):
        with_nulls[i] = None
    out += [with_nulls, [1.0, 2.0, 3.0], [rnd.gauss(0, 1) for _ in range(50)]]
    return out


_CASES = [("__kql_series_decompose", [-1]), ("__kql_series_decompose", [-1, "linefit", 5]),
          ("__kql_series_decompose_anomalies", [1.5]), ("__kql_series_decompose_anomalies", [2.5, -1, "avg", 0, "ctukey", 0.3])]


@pytest.mark.parametrize(("name", "options"), _CASES, ids=[f"{n[6:]} {o}" for n, o in _CASES])
def test_detected_period_answers_as_the_udf(client, name, options):
    answered = 0
    for series in _series():
        want = _udf(name, json.dumps(series), json.dumps(options))
        try:
            got = _lowered(client, name, options, series)
        except Exception as exc:  # noqa: BLE001 - chdb's DatabaseError carrying the refusal
            assert "kql-unsupported: " in str(exc), exc
            continue
        answered += 1
        assert want is not None and got is not None
        assert same_reals(json.loads(got), json.loads(want)), (name, options, series)
    assert answered >= len(_series()) - 1, answered


def test_the_periods_found_are_the_seasons(client):
    """Not only the same answer: a season was found (the seasonal part is not all zeros)."""
    rnd = random.Random("seasons")
    got = json.loads(_lowered(client, "__kql_series_decompose", [-1], _seasonal(rnd, 120, 10, 0.3)))
    assert any(v != 0.0 for v in got["seasonal"])
    assert got["seasonal"][:10] == got["seasonal"][10:20]


@pytest.mark.parametrize(("series", "options"), [([float(i % 6) for i in range(60)], [-1]), ([0.1] * 30, [-1, "none"])],
                         ids=["perfectly periodic: its multiples tie", "constant but for its mean's rounding"])
def test_a_period_rounding_could_change_is_refused(client, series, options):
    with pytest.raises(Exception, match="kql-unsupported: series_decompose with a detected period"):
        _lowered(client, "__kql_series_decompose", options, series)


def test_a_series_exactly_constant_has_no_period(client):
    want = _udf("__kql_series_decompose", json.dumps([4.5] * 30), "[-1]")
    assert json.loads(_lowered(client, "__kql_series_decompose", [-1], [4.5] * 30)) == json.loads(want)
