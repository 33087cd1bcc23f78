"""Every dashboard page, run by streamlit's AppTest against a real collector with seeded data, in a
session signed in with the admin key (the sign-in itself: tests/security/test_dashboard.py)."""

from __future__ import annotations

import json
from base64 import b64decode
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pandas as pd
from collector_process import CollectorProcess, free_port
from dashboard_harness import signed_in
from dashboard_seed import APP, SEEDED_REQUESTS, rows, seed_with_gap
from streamlit.testing.v1 import AppTest

from dashboard import collector_api, health


def figures(at: AppTest) -> dict[str, dict]:
    """Plotly charts by title (AppTest hands them over as raw protos holding the figure JSON)."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {spec["layout"].get("title", {}).get("text", ""): spec for spec in specs}


def values(array) -> list:
    """A figure's data array as plain values (Plotly 7 ships numbers as base64 typed arrays)."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def series(trace: dict) -> pd.Series:
    return pd.Series(values(trace["y"]), index=pd.to_datetime(values(trace["x"]), utc=True), dtype="float64")


def texts(at: AppTest) -> str:
    parts = [e.value for kind in (at.markdown, at.info, at.error, at.success, at.caption) for e in kind]
    return "\n".join(str(p) for p in parts)


def test_overview_tiles_match_the_seeded_requests(app, seeded):
    service, items = seeded
    requests = [r for r in items if r["itemType"] == "request"]
    failed = [r for r in requests if not r["success"]]
    at = app(service)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == f"{len(requests):,}" == f"{SEEDED_REQUESTS:,}"
    assert metrics["Failed requests"] == f"{len(failed):,}"
    assert metrics["Availability"] == f"{100 * (len(requests) - len(failed)) / len(requests):.1f}%"
    assert metrics["Exceptions"] == f"{sum(r['itemType'] == 'exception' for r in items):,}"
    assert metrics["Dependency calls"] == f"{sum(r['itemType'] == 'dependency' for r in items):,}"
    average = sum(r["duration"] for r in requests) / len(requests)
    assert metrics["Avg response"] == f"{average:,.1f} ms"


def test_overview_draws_every_chart(app, seeded):
    charts = figures(app(seeded[0]))
    assert set(charts) == {"Request rate", "Response time", "Failed requests by result code", "Availability",
                           "Dependency calls", "Dependency duration", "Exceptions by type"}
    assert [t["name"] for t in charts["Response time"]["data"]] == ["avg", "p50", "p95", "p99"]
    assert {t["name"] for t in charts["Failed requests by result code"]["data"]} == {"400", "500", "504"}
    assert {t["name"] for t in charts["Exceptions by type"]["data"]} == {"KeyError", "ValueError", "TimeoutError"}


def test_overview_charts_are_zero_filled_over_the_picked_range(app, collector):
    """An outage from 35 to 20 minutes ago is a run of zeros in the request rate, a gap (not 0 ms) in
    the response time; the x axis spans the whole hour; the rate tile is the chart's mean; every
    legend sits under its plot, clear of the toolbar (top right)."""
    service, items = seed_with_gap(collector)
    at = app(service)
    now = datetime.now(UTC)
    charts = figures(at)
    rate = series(charts["Request rate"]["data"][0])
    outage = rate[(rate.index >= now - timedelta(minutes=33)) & (rate.index < now - timedelta(minutes=22))]
    assert len(outage) >= 10 and (outage == 0).all(), rate
    assert rate.sum() == sum(r["itemType"] == "request" for r in items)  # 1-minute buckets: per minute == count
    assert len(rate) >= 61 and rate.index[0] <= pd.Timestamp(now - timedelta(minutes=60))
    p95 = series(charts["Response time"]["data"][2])
    assert p95[outage.index].isna().all() and p95.notna().sum() > 20
    availability = series(charts["Availability"]["data"][0])
    assert availability[outage.index].isna().all()
    calls = series(charts["Dependency calls"]["data"][0])
    assert (calls[outage.index] == 0).all()
    for title, chart in charts.items():
        start, end = pd.to_datetime(chart["layout"]["xaxis"]["range"], utc=True)
        assert start <= pd.Timestamp(now - timedelta(minutes=60)) and end >= pd.Timestamp(now), title
        assert end - start <= timedelta(minutes=62), title
        assert chart["layout"]["legend"]["y"] < 0, title
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Request rate"] == f"{health.per_minute(rate.mean())}/min"
    assert "the mean of the Request rate chart" in at.metric[1].help


def test_overview_of_a_single_bucket_is_one_bar_in_the_range(app, collector):
    """Requests within a few seconds: the axis is still the hour, each bar one bucket wide."""
    service = collector.create_service("dash-one")["name"]
    assert collector.import_rows(service, list(rows(40, minutes=0.05, seed=3)))["imported"] > 40
    at = app(service)
    chart = figures(at)["Failed requests by result code"]
    start, end = pd.to_datetime(chart["layout"]["xaxis"]["range"], utc=True)
    assert end - start >= timedelta(minutes=60)
    assert [trace["width"] for trace in chart["data"]] == [0.9 * 60_000] * len(chart["data"])
    rate = series(figures(at)["Request rate"]["data"][0])
    assert len(rate) >= 61 and 1 <= (rate > 0).sum() <= 2  # 2 when the seconds straddle a minute


def test_overview_of_a_service_without_data_says_what_to_do(app, collector):
    service = collector.create_service("dash-empty")["name"]
    at = app(service)
    assert not at.metric
    assert f"No requests from **{service}**" in texts(at)
    assert "insights score" in texts(at)


def test_time_range_picker_changes_the_buckets(app, seeded):
    at = app(seeded[0])
    at.sidebar.selectbox(key="time_range").set_value("Last 7 days").run()
    assert "buckets of 2h" in texts(at)
    assert {m.label: m.value for m in at.metric}["Requests"] == f"{SEEDED_REQUESTS:,}"


def test_unreachable_collector_says_what_to_run(monkeypatch):
    address = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("INSIGHTS_URL", address)
    at = signed_in(AppTest.from_file(APP, default_timeout=30), address, "whatever").run()
    assert not at.exception
    assert "No collector answers" in at.error[0].value
    assert "insights up" in texts(at)
    # The same at sign-in.
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input(key="sign_in_key").input("whatever")
    at.button[0].click().run()
    assert "No collector answers" in at.error[0].value
    assert "insights up" in texts(at)


def test_a_session_whose_key_stopped_working_is_signed_out(app, collector):
    created = collector.create_service("dash-gone")
    at = app(created["name"], key=created["api_key"])
    assert at.sidebar.selectbox(key="service").options == [created["name"]]
    with collector.admin as client:
        client.delete(f"/api/services/{created['name']}").raise_for_status()
    collector_api.services.clear()
    at.sidebar.selectbox(key="time_range").set_value("Last 7 days").run()
    assert not at.exception
    assert "no longer accepts this session's key" in at.warning[0].value
    assert at.text_input(key="sign_in_key") is not None and not at.metric and not at.sidebar.selectbox


def test_no_services_yet(tmp_path, monkeypatch):
    empty = CollectorProcess(tmp_path / "data").start()
    try:
        monkeypatch.setenv("INSIGHTS_URL", empty.url)
        for page in (None, "services"):
            at = signed_in(AppTest.from_file(APP, default_timeout=30), empty.url, empty.admin_key).run()
            if page:
                at.switch_page(f"views/{page}.py").run()
            assert not at.exception
            assert "No services yet" in texts(at)
            assert "insights service create" in texts(at)
    finally:
        empty.stop()


def test_failures_tables_and_drill_into_an_exception(app, seeded):
    service, items = seeded
    at = app(service, "failures")
    operations, exceptions = at.dataframe[0].value, at.dataframe[1].value
    failed = [r for r in items if r["itemType"] == "request" and not r["success"]]
    assert operations.set_index("operation").loc["POST /score", "failed"] == len(failed)
    assert set(exceptions["type"]) == {"KeyError", "ValueError", "TimeoutError"}
    at.radio(key="drill_kind").set_value("Exception type").run()
    at.selectbox(key="drill_exceptions").set_value("KeyError").run()
    assert len(at.expander) == 5
    assert "KeyError: 'data'\n  at invoke (user_script.py:88)\n  at run (score.py:27)" in at.code[0].value
    assert json.loads(at.json[0].value)["input"] == {"data": [["abc", 1.0]]}


def test_failures_drill_into_an_operation_shows_the_requests_exception(app, seeded):
    at = app(seeded[0], "failures")
    at.radio(key="drill_kind").set_value("Operation").run()
    assert "POST /score" in at.expander[0].label
    assert "at run (score.py:27)" in at.code[0].value
    assert "duration" in texts(at)


def test_performance_operations_table_and_distribution(app, seeded):
    service, items = seeded
    at = app(service, "performance")
    table = at.dataframe[0].value.set_index("operation")
    for name in ("POST /score", "GET /", "GET /swagger.json"):
        assert table.loc[name, "requests"] == sum(r["itemType"] == "request" and r["name"] == name for r in items)
    assert list(table.columns) == ["requests", "avg_ms", "p50_ms", "p95_ms", "p99_ms"]
    assert (table["p50_ms"] <= table["p95_ms"]).all() and (table["p95_ms"] <= table["p99_ms"]).all()
    chart = figures(at)["Duration distribution: All operations"]
    assert chart["data"][0]["type"] == "bar"
    at.selectbox(key="perf_operation").set_value("GET /").run()
    assert "Duration distribution: GET /" in figures(at)


def test_logs_runs_the_default_query(app, seeded):
    at = app(seeded[0], "logs")
    assert at.text_area(key="kql").value == 'traces | where customDimensions contains "input" | limit 10'
    result = at.dataframe[0].value
    assert len(result) == 10
    assert result["customDimensions"].str.contains('"input"').all()
    assert at.get("download_button")


def test_logs_shows_a_long_value_around_what_was_searched(app, collector):
    """A table cell shows a value's beginning: a long customDimensions is shown from just before the
    searched string, and whole on demand."""
    name = collector.create_service("dash-long")["name"]
    dimensions = {"features": "x" * 400, "model_version": "needle-7", "tail": "y" * 200}
    trace = {"itemType": "trace", "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
             "message": "STDOUT", "severityLevel": 1, "customDimensions": dimensions}
    assert collector.import_rows(name, [json.dumps(trace).encode()])["imported"] == 1
    at = app(name, "logs")
    at.text_area(key="kql").set_value('traces | where customDimensions contains "needle-7"').run()
    shown = at.dataframe[0].value["customDimensions"][0]
    assert 0 < shown.find("needle-7") < 40 and shown.startswith("…") and len(shown) < 120
    at.toggle(key="logs_whole").set_value(True).run()
    whole = at.dataframe[0].value["customDimensions"][0]
    assert json.loads(whole) == dimensions


def test_logs_time_chart_is_zero_filled_over_the_picked_range(app, collector):
    service, items = seed_with_gap(collector, prefix="dash-logs-gap")
    at = app(service, "logs")
    at.text_area(key="kql").set_value("requests | summarize n=count(), ms=avg(duration) by bin(timestamp, 1m)").run()
    now = datetime.now(UTC)
    chart = figures(at)[""]
    counts, durations = series(chart["data"][0]), series(chart["data"][1])
    outage = counts[(counts.index >= now - timedelta(minutes=33)) & (counts.index < now - timedelta(minutes=22))]
    assert len(outage) >= 10 and (outage == 0).all() and durations[outage.index].isna().all()
    assert counts.sum() == sum(r["itemType"] == "request" for r in items)
    start, end = pd.to_datetime(chart["layout"]["xaxis"]["range"], utc=True)
    assert start <= pd.Timestamp(now - timedelta(minutes=60)) and end >= pd.Timestamp(now)
    assert len(at.dataframe[0].value) < len(counts)  # the table is the query's answer, unfilled


def test_logs_shows_an_error_with_its_position(app, seeded):
    at = app(seeded[0], "logs")
    at.text_area(key="kql").set_value("requests\n| where success == ").run()
    assert "line 2, column" in at.error[0].value
    assert at.code[0].value.startswith("| where success == \n")
    assert at.code[0].value.splitlines()[1].endswith("^")
    assert not at.dataframe


def test_logs_charts_a_time_summary_and_render(app, seeded):
    at = app(seeded[0], "logs")
    at.text_area(key="kql").set_value("requests | summarize n=count() by bin(timestamp, 5m)").run()
    assert figures(at)[""]["data"][0]["type"] == "scatter"
    at.selectbox(key="example").set_value("Failed requests by result code").run()
    assert "render barchart" in at.text_area(key="kql").value
    assert figures(at)[""]["data"][0]["type"] == "bar"
    at.text_area(key="kql").set_value("requests | take 3").run()
    assert not at.get("plotly_chart")


def test_services_toggle_calls_the_api(app, collector, seeded):
    service = collector.create_service("dash-toggle")["name"]
    at = app(service, "services")
    assert at.toggle(key=f"enable_{service}").value is True
    at.toggle(key=f"enable_{service}").set_value(False).run()
    assert "App Insights is now **off**" in at.success[0].value
    with collector.admin as client:
        assert client.get(f"/api/services/{service}").json()["enable_app_insights"] is False
    at.toggle(key=f"enable_{service}").set_value(True).run()
    with collector.admin as client:
        assert client.get(f"/api/services/{service}").json()["enable_app_insights"] is True


def test_services_keys_are_masked_until_revealed(app, collector):
    created = collector.create_service("dash-keys")
    at = app(created["name"], "services")
    shown = "\n".join(c.value for c in at.code)
    assert created["api_key"] not in shown and created["instrumentation_key"] not in shown
    assert created["api_key"][:6] + "…" in shown and created["instrumentation_key"][-4:] in shown
    at.toggle(key=f"reveal_{created['name']}").set_value(True).run()
    shown = "\n".join(c.value for c in at.code)
    assert created["connection_string"] in shown
    assert created["api_key"] not in shown, "the API key is never shown again after create: rotate-key makes a new one"


def test_services_rotate_key_shows_the_new_key_once(app, collector):
    created = collector.create_service("dash-rotate")
    name = created["name"]
    at = app(name, "services")
    at.button(key=f"rotate_{name}").click().run()
    assert not at.exception, at.exception
    new_key = at.code[2].value
    assert new_key != created["api_key"] and len(new_key) > 20
    assert "shown this once" in at.warning[0].value
    with collector.client({"x-api-key": new_key}) as client:
        assert client.get(f"/api/services/{name}").status_code == 200
    with collector.client({"x-api-key": created["api_key"]}) as client:
        assert client.get(f"/api/services/{name}").status_code == 401
    at.run()
    assert new_key not in "\n".join(c.value for c in at.code) and new_key[:6] + "…" in at.code[2].value


def test_services_counters_and_export_section(app, seeded, collector, tmp_path):
    at = app(seeded[0], "services")
    counters = {m.label: m.value for m in at.metric}
    assert counters["imported"] == f"{len(seeded[1]):,}"
    assert "Continuous export" in [h.value for h in at.subheader]
    assert any("Not configured" in c.value for c in at.caption)

    with collector.admin as admin:
        admin.put(f"/api/services/{seeded[0]}/export", json={"destination": str(tmp_path), "interval_seconds": 3600}).raise_for_status()
    at = app(seeded[0], "services")
    shown = "\n".join(str(j.value) for j in at.json)
    assert str(tmp_path) in shown and "3600" in shown
    assert not any("Not configured" in c.value for c in at.caption)


def test_export_settings_and_status_agree_for_an_unconfigured_service(app, collector):
    name = collector.create_service("dash-noexport")["name"]
    with collector.admin as admin:
        settings = admin.get(f"/api/services/{name}/export").json()
        status = admin.get(f"/api/services/{name}/export/status").json()
    assert settings["configured"] is status["configured"] is False
    assert settings["enabled"] is status["enabled"] is False and status["next_run"] is None
    for key in ("types", "interval_seconds", "retention_days"):
        assert settings[key] == status[key], key
    assert settings["destination"] is None and status["destination"].endswith("blob")  # null: the default folder
    at = app(name, "services")
    shown_settings, shown_status = (json.loads(j.value) for j in at.json)
    assert shown_settings["enabled"] is shown_status["enabled"] is False
    assert any("Not configured" in c.value for c in at.caption)


def test_console_logs_tail(app, collector):
    created = collector.create_service("dash-console")
    with httpx.Client(base_url=collector.url, timeout=30) as client:
        sent = client.post("/api/logs", headers={"x-instrumentation-key": created["instrumentation_key"]},
                           content=b'{"stream":"stdout","line":"model loaded"}\n{"stream":"stderr","line":"boom"}\n')
    at = app(created["name"], "console")
    assert sent.status_code == 200, sent.text
    assert at.code[0].value == "model loaded\nboom"
