"""The selected service's autoscale events (customEvents named "Autoscale", sent by the wrapper's
supervisor: scoring/autoscale.py), as a small section of the Services page: when, from how many
workers to how many, and the utilization that asked for it."""

from __future__ import annotations

import orjson
import pandas as pd
import streamlit as st

from dashboard import collector_api
from dashboard.selection import Selection

QUERY = ('customEvents | where name == "Autoscale" | project timestamp, customDimensions, customMeasurements '
         '| order by timestamp desc | take 50')


def events_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per event: time, instances before and after, utilization and target."""
    rows = []
    for _, row in frame.iterrows():
        dims, measures = _object(row["customDimensions"]), _object(row["customMeasurements"])
        rows.append({"time": row["timestamp"], "from": dims.get("from", ""), "to": dims.get("to", ""),
                     "instances": measures.get("instances"), "utilization": dims.get("utilization", ""),
                     "target": dims.get("target", "")})
    return pd.DataFrame(rows, columns=["time", "from", "to", "instances", "utilization", "target"])


def _object(value) -> dict:
    if isinstance(value, dict):
        return value
    try:
        parsed = orjson.loads(value) if value else {}
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def render(chosen: Selection, service: str) -> None:
    st.subheader("Scale events")
    frame = collector_api.query(chosen.link, QUERY, chosen.range.timespan, service).frame
    if frame.empty:
        st.caption(f"No autoscale events in the {chosen.range.label.lower()}: a wrapper with autoscale on "
                   "(`--autoscale_enabled`, or `autoscale_enabled=True` in deploy_configuration) records one "
                   "each time it changes its number of workers.")
        return
    table = events_table(frame)
    latest = table.iloc[0]
    st.caption(f"{len(table)} event(s); now {latest['to']} worker(s) after a change from {latest['from']} at "
               f"{latest['utilization']} utilization (target {latest['target']}).")
    st.dataframe(table, hide_index=True)
