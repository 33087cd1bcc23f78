"""Live metrics: the picked service second by second, as the collector counts telemetry arriving
(not from the store): incoming requests, outgoing dependency calls, exceptions, each instance's
CPU and memory, and the sample failures. Redrawn every second, only this part of the page; the
collector aggregates, so the page reads 60 rows a second whatever the traffic."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from collector.client import ApiError
from dashboard import charts, collector_api, escape, selection

WINDOW_S = 60
SAMPLE_COLUMNS = ["timestamp", "table", "cloud_RoleName", "cloud_RoleInstance", "name", "resultCode", "duration",
                  "target", "type", "message", "operation_Id"]


def seconds_frame(snapshot: dict) -> pd.DataFrame:
    """One row per second: rates, durations, CPU and memory."""
    rows = []
    for second in snapshot["seconds"]:
        requests, dependencies = second["requests"], second["dependencies"]
        rows.append({"time": pd.Timestamp(second["time"]), "requests": requests["count"], "failed": requests["failed"],
                     "p50": requests["p50Ms"], "p95": requests["p95Ms"], "p99": requests["p99Ms"],
                     "dependency calls": dependencies["count"], "dependency failures": dependencies["failed"],
                     "dependency p95": dependencies["p95Ms"], "exceptions": second["exceptions"],
                     "cpu %": second["cpuPercent"],
                     "memory MB": None if second["memoryBytes"] is None else second["memoryBytes"] / 2**20,
                     "matched": second.get("matched")})
    return pd.DataFrame(rows)


def _tiles(frame: pd.DataFrame, instances: list[dict]) -> None:
    last = frame.iloc[-1] if not frame.empty else None
    healthy = sum(1 for instance in instances if instance["healthy"])
    values = [("Requests/s", last["requests"] if last is not None else 0),
              ("Failed/s", last["failed"] if last is not None else 0),
              ("p95 (ms)", "-" if last is None or pd.isna(last["p95"]) else f"{last['p95']:.0f}"),
              ("Dependencies/s", last["dependency calls"] if last is not None else 0),
              ("Exceptions/s", last["exceptions"] if last is not None else 0),
              ("Healthy instances", f"{healthy}/{len(instances)}")]
    for column, (label, value) in zip(st.columns(len(values)), values):
        column.metric(label, value, border=True)


def _charts(frame: pd.DataFrame) -> None:
    left, right = st.columns(2)
    left.plotly_chart(charts.lines(frame, "time", ["requests", "failed"], "Incoming requests", "per second"),
                      key="live_requests")
    right.plotly_chart(charts.lines(frame, "time", ["p50", "p95", "p99"], "Request duration", "ms"),
                       key="live_duration")
    left, right = st.columns(2)
    left.plotly_chart(charts.lines(frame, "time", ["dependency calls", "dependency failures", "exceptions"],
                                   "Outgoing dependencies and exceptions", "per second"), key="live_dependencies")
    right.plotly_chart(charts.lines(frame, "time", ["cpu %", "memory MB"], "CPU and memory (all instances)"),
                       key="live_process")


def _instances(instances: list[dict]) -> None:
    st.subheader("Instances")
    if not instances:
        st.info("No instance has sent anything since the collector started.")
        return
    table = pd.DataFrame([{"role": i["role"], "instance": i["instance"], "healthy": i["healthy"],
                           "seconds since seen": i["secondsSinceSeen"], "cpu %": i["cpuPercent"],
                           "memory MB": None if i["memoryBytes"] is None else round(i["memoryBytes"] / 2**20, 1),
                           "processes": len(i["processes"])} for i in instances])
    st.dataframe(table, hide_index=True)


def _samples(samples: list[dict], condition: str | None) -> None:
    st.subheader("Sample telemetry" if condition else "Sample failures")
    if not samples:
        st.success(f"Nothing has matched {condition!r} yet." if condition else "No failures while you watched.")
        return
    frame = pd.DataFrame(samples[::-1])
    st.dataframe(frame[[c for c in SAMPLE_COLUMNS if c in frame.columns]], hide_index=True)


def body(chosen: selection.Selection, service: str, role: str | None, instance: str | None,
         condition: str | None) -> None:
    """One second's redraw."""
    try:
        snapshot = collector_api.live(chosen.link, service, WINDOW_S, role, instance, condition)
    except ApiError as error:
        if error.status_code == 404 and error.message == "Not Found":
            st.warning("This collector has no live metrics (it runs without the live extension).")
        else:
            st.error(escape.markdown(error.message))
        return
    frame = seconds_frame(snapshot)
    _tiles(frame, snapshot["instances"])
    _charts(frame)
    _instances(snapshot["instances"])
    _samples(snapshot["samples"], snapshot["condition"])


def render() -> None:
    chosen = selection.current()
    st.title("Live metrics")
    service = selection.require_service(chosen)
    st.caption(f"**{escape.markdown(service)}** · the last {WINDOW_S} seconds, as telemetry arrives · every second")
    left, middle, right = st.columns([1, 1, 2])
    role = left.text_input("Role", key="live_role", placeholder="all roles") or None
    instance = middle.text_input("Instance", key="live_instance", placeholder="all instances") or None
    condition = right.text_input("Condition", key="live_condition",
                                 placeholder='e.g. duration > 500, resultCode == "500"') or None
    st.fragment(body, run_every=1)(chosen, service, role, instance, condition)


if __name__ == "__main__":  # run as a page by app.py's st.navigation
    render()
