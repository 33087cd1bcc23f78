"""The dashboard's view of alerting: a service's rules, alerts, delivery log, a rule's measured
values (and learned band), availability tests; and the availability chart the Overview shows for
services that have tests. Fetched with the signed-in session's key, cached a few seconds."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard import charts, collector_api, escape
from dashboard.collector_api import Link, _call

TTL_S = 5


@st.cache_data(ttl=TTL_S, show_spinner=False)
def fetch(link: Link, service: str, what: str) -> list[dict]:
    """GET /api/services/{service}/{what}: alert-rules, alerts, alert-deliveries, availability-tests."""
    return _call(link, "GET", f"/api/services/{service}/{what}").json()


@st.cache_data(ttl=TTL_S, show_spinner=False)
def values(link: Link, service: str, rule: str, hours: float) -> pd.DataFrame:
    rows = _call(link, "GET", f"/api/services/{service}/alert-rules/{rule}/values", params={"hours": hours}).json()
    frame = pd.DataFrame(rows, columns=["dims_key", "window_end", "value", "lower", "upper"])
    frame["window_end"] = pd.to_datetime(frame["window_end"], utc=True, format="ISO8601")
    return frame


def band_chart(frame: pd.DataFrame, title: str) -> go.Figure:
    """The measured value per window, inside the band a dynamic rule learned (shaded)."""
    frame = frame.sort_values("window_end")
    figure = go.Figure([
        go.Scatter(x=frame["window_end"], y=frame["upper"], mode="lines", line={"width": 0}, name="upper",
                   showlegend=False),
        go.Scatter(x=frame["window_end"], y=frame["lower"], mode="lines", line={"width": 0}, fill="tonexty",
                   fillcolor="rgba(99, 110, 250, 0.2)", name="learned band"),
        go.Scatter(x=frame["window_end"], y=frame["value"], mode="lines+markers", name="value"),
    ])
    figure.update_layout(title={"text": escape.plotly(title), "font": {"size": 14}}, height=charts.HEIGHT,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend=charts.LEGEND)
    return figure


def timeline(alerts: list[dict]) -> go.Figure | None:
    """One bar per alert instance, from fired to resolved (or now)."""
    fired = [a for a in alerts if a["fired_at"]]
    if not fired:
        return None
    now = pd.Timestamp.now(tz="UTC")
    frame = pd.DataFrame([{
        "alert": escape.plotly(f"{a['rule']} {series(a)}".strip()), "state": a["state"],
        "fired": pd.Timestamp(a["fired_at"], tz="UTC"),
        "until": pd.Timestamp(a["resolved_at"], tz="UTC") if a["state"] == "Resolved" and a["resolved_at"] else now,
    } for a in fired])
    figure = px.timeline(frame, x_start="fired", x_end="until", y="alert", color="state",
                         color_discrete_map={"Fired": "#d62728", "Resolved": "#2ca02c"})
    figure.update_layout(title={"text": "Fired and resolved", "font": {"size": 14}}, height=charts.HEIGHT,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend=charts.LEGEND)
    figure.update_yaxes(title=None)
    return figure


def series(alert: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in alert["dimensions"].items())


AVAILABILITY_QUERY = ("availabilityResults | summarize availability = 100.0 * countif(success == true) / count() "
                      "by bin(timestamp, {bucket}), name")


def availability_by_test(chosen) -> dict[str, tuple[float, int]]:
    """{test name: (% of runs passed, runs)} over the picked range."""
    result = collector_api.query(chosen.link, "availabilityResults | summarize passed = round(100.0 * countif(success == true) "
                                 "/ count(), 1), runs = count() by name", chosen.range.timespan, chosen.service)
    return {row["name"]: (row["passed"], int(row["runs"])) for row in result.frame.to_dict("records")}


def availability_chart(column, chosen, axis: charts.Buckets) -> None:
    """Availability per test over the picked range (Overview), when the service has test runs."""
    result = collector_api.query(chosen.link, AVAILABILITY_QUERY.format(bucket=chosen.range.bucket),
                                 chosen.range.timespan, chosen.service)
    if result.frame.empty:
        return
    figure = charts.for_result(result.frame, "timechart", "Availability tests", axis)
    if figure is not None:
        figure.update_yaxes(title="% passed", range=[0, 105])
        column.plotly_chart(figure, key="availability_tests")
