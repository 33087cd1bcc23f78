"""The dashboard's pure parts: KQL quoting (checked against the real collector), carets, stacks,
bucket widths, masks, chart choice, the launcher's command line."""

from __future__ import annotations

import pandas as pd
import pytest
from dashboard_seed import rows

from dashboard import charts, collector_api, health, kql_text, launcher, time_range
from dashboard.views.failures import stack_text
from dashboard.views.logs import caret, excerpt, searched
from dashboard.views.performance import bucket_width
from dashboard.views.services import mask, shown_api_key, without_secrets


@pytest.mark.parametrize("value", ['POST /score', 'say "hi"', "back\\slash", "it's", "new\nline", "x\" | take 1 //"])
def test_kql_string_round_trips_through_the_collector(app_collector, value):
    assert app_collector.query(f"print s={kql_text.string(value)}") == [{"s": value}]


def test_caret_points_at_the_column():
    assert caret("requests\n| where x == ", 2, 12) == "| where x == \n           ^"


def test_searched_strings_and_the_excerpt_around_them():
    assert searched('traces | where customDimensions contains "in\\"put" or message == \'it\\\'s\'') == ['in"put', "it's"]
    value = "a" * 300 + "NEEDLE" + "b" * 300
    shown = excerpt(value, ["needle"])
    assert shown.startswith("…a") and shown.endswith("b…") and shown.index("NEEDLE") == 21 and len(shown) == 102
    assert excerpt("short NEEDLE", ["needle"]) == "short NEEDLE"
    assert excerpt("NEEDLE" + "b" * 300, ["needle"]) == "NEEDLE" + "b" * 300  # the start already shows it
    assert excerpt(value, ["absent"]) == value


def test_stack_text_lists_frames_innermost_last():
    details = ('[{"type": "ValueError", "message": "bad", "parsedStack": [{"level": 0, "method": "run", '
               '"fileName": "score.py", "line": 3}, {"level": 1, "method": "invoke", "fileName": "w.py", "line": 9}]}]')
    assert stack_text(details) == "ValueError: bad\n  at invoke (w.py:9)\n  at run (score.py:3)"
    assert stack_text('[{"type": "E", "rawStack": "Traceback ..."}]') == "Traceback ..."
    assert stack_text(None) == ""


@pytest.mark.parametrize("p99, width", [(215.0, 10), (64.0, 5), (0.3, 0.05), (30_000, 1000)])
def test_bucket_width_is_round(p99, width):
    assert bucket_width(p99) == pytest.approx(width)


def test_mask_keeps_only_the_last_four():
    assert mask("abcdefgh1234") == "••••••••••••1234"
    assert mask(None) == ""


def test_api_key_shows_as_its_prefix():
    assert shown_api_key({"api_key": "abc123…", "api_key_masked": True}) == "abc123…"
    assert shown_api_key({"api_key": "abc123secretsecret"}) == "abc123…"  # a collector that still answers in clear


def test_export_secrets_are_masked_wherever_they_appear():
    shown = without_secrets({"destination": "AccountName=a;AccountKey=s3cr3t==;BlobEndpoint=https://h/a",
                             "runs": [{"error": "PUT https://h/c/x?sv=1&sig=s1gn%2B&se=2 failed"}], "n": 3})
    assert "s3cr3t" not in str(shown) and "s1gn" not in str(shown)
    assert shown["destination"].startswith("AccountName=a;AccountKey=•") and shown["runs"][0]["error"].endswith("&se=2 failed")
    assert shown["n"] == 3
    assert without_secrets("AccountName=a;AccountKey=****;") == "AccountName=a;AccountKey=****;"  # as the collector masks it


def test_chart_for_result():
    times = pd.to_datetime(["2026-01-01T00:00Z", "2026-01-01T00:05Z"], utc=True)
    series = pd.DataFrame({"timestamp": times, "n": [1, 2]})
    assert charts.for_result(series, None).data[0].type == "scatter"
    by_code = pd.DataFrame({"resultCode": ["200", "500"], "n": [5, 1]})
    assert charts.for_result(by_code, "barchart").data[0].type == "bar"
    assert charts.for_result(by_code, "piechart").data[0].type == "pie"
    assert charts.for_result(pd.DataFrame({"name": ["a"]}), "timechart") is None


def test_launcher_command_is_offline_and_local():
    command = launcher.command(8501)
    flags = dict(zip(command[5::2], command[6::2]))
    assert flags["--server.address"] == "127.0.0.1"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.headless"] == "true"
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("dashboard/app.py")


def test_first_minute_of_traffic_is_a_drawn_point_on_an_hour_axis(collector):
    """The demo's first minute: the collector has one bucket. The figures built from its real answer
    span the hour, count zeros elsewhere, and mark the lone duration point so it shows."""
    service = collector.create_service("dash-first")["name"]
    collector.import_rows(service, list(rows(3, minutes=0.02, seed=5, requests_only=True)))
    link = collector_api.Link(collector.url, collector.admin_key)
    range_ = time_range.DEFAULT
    results = {name: collector_api.run_query(link, kql, range_.timespan, service) for name, kql in health.queries(range_).items()}
    assert len(results["requests"].frame) in (1, 2)  # 2 when the seconds straddle a minute
    axis = health.buckets(range_)
    series = health.request_series(results, range_, axis)
    assert len(series) == len(axis.starts) >= 61 and series["requests"].sum() == 3
    assert (series["requests"] == 0).sum() >= 59 and series["p95"].isna().sum() >= 59
    duration = charts.lines(series, "timestamp", ["avg", "p95"], "Response time", "ms", axis)
    lone = series["p95"].notna().sum() == 1  # two buckets side by side (a minute straddled) draw a line
    assert all(("markers" in trace.mode) == lone for trace in duration.data)
    start, end = pd.to_datetime(duration.layout.xaxis.range, utc=True)
    assert end - start == pd.Timedelta(minutes=len(axis.starts))
    tiles = {t.label: t.value for t in health.tiles(results, range_, axis)}
    assert tiles["Request rate"] == f"{health.per_minute(series['per_minute'].mean())}/min"
    assert tiles["Request rate"] != "0.0/min"  # 3 requests in an hour are not none


def test_one_duration_bucket_is_one_bar_from_zero():
    figure = charts.bars(pd.DataFrame({"duration_ms": [20.0], "requests": [4]}), "duration_ms", "requests", "d", width=5)
    assert figure.data[0].width == 5 and figure.data[0].offset == 0
    assert list(figure.layout.xaxis.range) == [0, 25.0]


def test_filled_follows_the_rows_phase():
    """Buckets of 7 minutes from the collector need not start where pandas' floor puts them: the
    empty buckets are filled on the rows' grid, not between them."""
    step = pd.Timedelta(minutes=7)
    axis = charts.Buckets(pd.date_range("2026-01-01T00:00Z", periods=10, freq=step), step)
    rows = pd.DataFrame({"timestamp": pd.to_datetime(["2026-01-01T00:10Z", "2026-01-01T00:38Z"], utc=True), "n": [3, 4],
                         "ms": [1.0, 2.0]})
    out = charts.filled(rows, "timestamp", axis, ["n"])
    assert len(out) == 10 and out["n"].sum() == 7 and (out["n"] == 0).sum() == 8 and out["ms"].isna().sum() == 8
    assert (out["timestamp"].diff().dropna() == step).all()


def test_a_slow_request_rate_is_not_shown_as_zero():
    assert health.per_minute(3 / 61) == "0.049"
    assert health.per_minute(0) == "0.0"
    assert health.per_minute(27.25) == "27.2"
    assert health.per_minute(1234.5) == "1,234.5"
