"""Overview: a service's health at a glance — tiles, then the time charts App Insights users expect."""

import streamlit as st

from dashboard import alerting, charts, collector_api, escape, health, selection
from dashboard.selection import Selection


def body(chosen: Selection) -> None:
    """Everything below the title; a fragment, so auto-refresh reruns only this."""
    results = collector_api.query_all(chosen.link, health.queries(chosen.range), chosen.range.timespan, chosen.service)
    if results["requests"].frame.empty and results["exceptions"].frame.empty and results["dependencies"].frame.empty:
        selection.no_data("requests", chosen)
        return
    axis = health.buckets(chosen.range)
    _tiles(health.tiles(results, chosen.range, axis))
    _charts(results, chosen, axis)


def _tiles(tiles: list[health.Tile]) -> None:
    for row in (tiles[:5], tiles[5:]):
        for column, tile in zip(st.columns(len(row)), row):
            column.metric(tile.label, tile.value, help=tile.help, border=True)


def _charts(results: dict, chosen: Selection, axis: charts.Buckets) -> None:
    series = health.request_series(results, chosen.range, axis)
    left, right = st.columns(2)
    left.plotly_chart(charts.lines(series, "timestamp", ["per_minute"], "Request rate", "requests/min", axis), key="rate")
    right.plotly_chart(charts.lines(series, "timestamp", ["avg", "p50", "p95", "p99"],
                                    "Response time", "ms", axis), key="duration")
    left, right = st.columns(2)
    _failed_chart(left, results["failed"].frame, axis)
    right.plotly_chart(charts.lines(series, "timestamp", ["availability"], "Availability", "% successful", axis),
                       key="availability")
    left, right = st.columns(2)
    if results["dependencies"].frame.empty:
        left.info("No dependency calls in this range (outgoing HTTP calls made by run()).")
    else:
        dependencies = health.dependency_series(results, axis)
        left.plotly_chart(charts.lines(dependencies, "timestamp", ["calls", "failed"], "Dependency calls", "calls", axis),
                          key="dep_calls")
        right.plotly_chart(charts.lines(dependencies, "timestamp", ["avg_ms"], "Dependency duration", "ms", axis),
                           key="dep_duration")
    _exceptions_chart(results["exceptions"].frame, axis)
    alerting.availability_chart(st, chosen, axis)


def _failed_chart(column, failed, axis: charts.Buckets) -> None:
    if failed.empty:
        column.success("No failed requests in this range.")
        return
    column.plotly_chart(charts.stacked(failed, "timestamp", "failed", "resultCode", "Failed requests by result code",
                                       "requests", axis), key="failed")


def _exceptions_chart(exceptions, axis: charts.Buckets) -> None:
    if exceptions.empty:
        st.success("No exceptions in this range.")
        return
    st.plotly_chart(charts.stacked(exceptions, "timestamp", "exceptions", "type", "Exceptions by type", "exceptions", axis),
                    key="exceptions")


def render() -> None:
    chosen = selection.current()
    st.title("Overview")
    service = selection.require_service(chosen)
    st.caption(f"**{escape.markdown(service)}** · {chosen.range.label.lower()} · buckets of {chosen.range.bucket}")
    st.fragment(body, run_every=chosen.refresh_s)(chosen)


if __name__ == "__main__":  # run as a page by app.py's st.navigation
    render()
