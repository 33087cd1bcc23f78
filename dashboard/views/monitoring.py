"""Model monitoring: per-feature drift over time against its threshold, reference and production
histograms side by side, data-quality rates, and from a drifted window straight to the requests
(and their exceptions) whose inputs fell in the bins that grew.

Monitors are defined with `insights monitor create` (or the SDK/API); this page reads their
results (modelMonitorResults) and can run one now.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import collector_api, escape, kql_text, selection

REQUESTS_SHOWN = 50


def _frame(results: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(results)
    frame["windowEnd"] = pd.to_datetime(frame["windowEnd"], utc=True, format="ISO8601")
    frame["primary"] = frame["details"].map(lambda d: bool(isinstance(d, dict) and d.get("primary")))
    return frame


def _drift_over_time(primary: pd.DataFrame) -> None:
    st.subheader("Drift per feature over time")
    figure = go.Figure()
    for feature, rows in primary.sort_values("windowEnd").groupby("feature"):
        figure.add_scatter(x=rows["windowEnd"], y=rows["value"], mode="lines+markers", name=f"{feature} ({rows['metric'].iloc[-1]})")
    for threshold in sorted(primary["threshold"].unique()):
        figure.add_hline(y=threshold, line_dash="dash", line_color="red", annotation_text=f"threshold {threshold:g}")
    figure.update_layout(title="Primary drift metric by window", height=360, margin={"t": 50, "b": 30},
                         legend={"orientation": "h", "y": -0.2})
    st.plotly_chart(figure, key="drift_over_time")


def _histograms(row: pd.Series) -> None:
    details = row["details"]
    figure = go.Figure()
    figure.add_bar(x=details["bins"], y=details["reference"], name="reference")
    figure.add_bar(x=details["bins"], y=details["current"], name="production")
    figure.update_layout(barmode="group", title=f"{row['feature']}: reference vs production", height=340,
                         yaxis_title="share of rows", margin={"t": 50, "b": 30})
    st.plotly_chart(figure, key=f"histogram_{row['feature']}")


def bin_filter(feature: str, kind: str, details: dict, bins: list[int]) -> str:
    """The KQL condition for rows whose `feature` falls in the given bins of a result's details."""
    value = f"data[{kql_text.string(feature)}]"
    if kind != "numerical":
        return f"tostring({value}) in {kql_text.string_list([details['bins'][i] for i in bins])}"
    edges, parts = details["edges"], []
    for index in bins:
        low = edges[index - 1] if index > 0 else None
        high = edges[index] if index < len(edges) else None
        terms = ([f"v >= {low!r}"] if low is not None else []) + ([f"v < {high!r}"] if high is not None else [])
        parts.append("(" + (" and ".join(terms) or "true") + ")")
    return " or ".join(parts)


def requests_query(collection: str, row: pd.Series, bins: list[int]) -> str:
    start = pd.Timestamp(row["windowStart"]).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    end = row["windowEnd"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    condition = bin_filter(row["feature"], row["featureType"], row["details"], bins)
    extend = f"| extend v = toreal(data[{kql_text.string(row['feature'])}]) " if row["featureType"] == "numerical" else ""
    return (f"modelData | where collection == {kql_text.string(collection)} and timestamp >= datetime({start}) "
            f"and timestamp < datetime({end}) {extend}| where {condition} "
            f"| join kind=inner (requests | project operation_Id, request_time = timestamp, name, resultCode, duration) "
            f"on operation_Id | project request_time, operation_Id, name, resultCode, duration, input = data "
            f"| top {REQUESTS_SHOWN} by request_time desc")


def _drifted_requests(chosen, collection: str, row: pd.Series) -> None:
    bins = row["details"].get("drifted_bins") or []
    if not bins:
        return
    labels = ", ".join(row["details"]["bins"][i] for i in bins)
    st.markdown(f"**Requests whose `{escape.markdown(row['feature'])}` fell in the bins that grew** ({escape.markdown(labels)})")
    kql = requests_query(collection, row, bins)
    result = collector_api.query(chosen.link, kql, None, chosen.service).frame
    st.dataframe(result, hide_index=True, key=f"drifted_requests_{row['feature']}")
    ids = result["operation_Id"].dropna().unique().tolist() if not result.empty else []
    exceptions = collector_api.query(
        chosen.link, f"exceptions | where operation_Id in {kql_text.string_list(ids)} | project timestamp, operation_Id, "
        "type, outerMessage", None, chosen.service).frame if ids else pd.DataFrame()
    st.caption(f"{len(result)} request(s) shown (the newest {REQUESTS_SHOWN} at most), {len(exceptions)} exception(s) "
               "among them; the query, for the Logs page:")
    if not exceptions.empty:
        st.dataframe(exceptions, hide_index=True, key=f"drifted_exceptions_{row['feature']}")
    st.code(kql, language="sql")


def _quality(latest: pd.DataFrame) -> None:
    quality = latest[latest["signal"] == "data_quality"]
    if quality.empty:
        return
    st.subheader("Data quality")
    table = quality.pivot_table(index="feature", columns="metric", values="value", aggfunc="first").reset_index()
    st.dataframe(table, hide_index=True, key="quality")


def _monitor_page(chosen, service: str, monitor: dict) -> None:
    name = monitor["name"]
    if st.button("Run now", key="run_monitor"):
        answer = collector_api.run_monitor(chosen.link, service, name)
        st.success(f"Ran over {answer['rows']} rows; drifted: {', '.join(answer['drifted_features']) or 'none'}")
    results = collector_api.monitor_results(chosen.link, service, name)
    if not results:
        st.info(f"Monitor {escape.markdown(name)} has no results yet: it runs once per window, or press Run now.")
        return
    frame = _frame(results)
    latest = frame[frame["windowEnd"] == frame["windowEnd"].max()]
    drifted = sorted(latest[latest["primary"] & latest["drifted"]]["feature"])
    share = latest[latest["metric"] == "drift_share"]
    left, middle, right = st.columns(3)
    left.metric("Latest window ends", latest["windowEnd"].iloc[0].strftime("%m-%d %H:%M UTC"))
    middle.metric("Drifted features", f"{len(drifted)} of {latest[latest['primary']]['feature'].nunique()}")
    right.metric("Dataset drift", "yes" if (not share.empty and bool(share["drifted"].iloc[0])) else "no")
    primary = frame[frame["primary"]]
    _drift_over_time(primary)
    st.subheader("Reference vs production")
    features = sorted(latest[latest["primary"]]["feature"])
    feature = st.selectbox("Feature", features, index=features.index(drifted[0]) if drifted else 0, key="histogram_feature")
    row = latest[latest["primary"] & (latest["feature"] == feature)].iloc[0]
    _histograms(row)
    _drifted_requests(chosen, monitor["collection"], row)
    _quality(latest)


def render() -> None:
    chosen = selection.current()
    st.title("Model monitoring")
    service = selection.require_service(chosen)
    monitors = collector_api.monitors(chosen.link, service)
    if not monitors:
        st.info(f"No monitors for {escape.markdown(service)} yet. Create one: "
                f"`insights monitor create inputs --service {service} --window 1h` "
                "(with `--reference NAME` after `insights monitor reference upload train.csv --name NAME`).")
        return
    names = [m["name"] for m in monitors]
    chosen_name = st.selectbox("Monitor", names, key="monitor")
    _monitor_page(chosen, service, next(m for m in monitors if m["name"] == chosen_name))


if __name__ == "__main__":  # run as a page by app.py's st.navigation
    render()
