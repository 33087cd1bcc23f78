"""Performance: how long each operation takes (count, avg, p50, p95, p99) and how durations spread."""

import math

import streamlit as st

from dashboard import charts, collector_api, escape, kql_text, selection
from dashboard.selection import Selection

OPERATIONS = ("requests | summarize requests=count(), avg_ms=avg(duration), p50_ms=percentile(duration, 50), "
              "p95_ms=percentile(duration, 95), p99_ms=percentile(duration, 99) by name | order by requests desc")
ALL = "All operations"
BUCKETS = 30


def bucket_width(p99_ms: float) -> float:
    """A round bucket width (1, 2 or 5 x 10^n ms) giving about BUCKETS buckets up to p99."""
    raw = max(p99_ms, 1.0) / BUCKETS
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(step * magnitude for step in (1, 2, 5, 10) if step * magnitude >= raw)


def _distribution(chosen: Selection, operations, operation: str) -> None:
    rows = operations if operation == ALL else operations[operations["name"] == operation]
    width = bucket_width(float(rows["p99_ms"].max()))
    where = "" if operation == ALL else f"| where name == {kql_text.string(operation)} "
    kql = f"requests {where}| summarize requests=count() by duration_ms=bin(duration, {width:g}) | order by duration_ms asc"
    frame = collector_api.query(chosen.link, kql, chosen.range.timespan, chosen.service).frame
    st.plotly_chart(charts.bars(frame, "duration_ms", "requests", f"Duration distribution: {operation}",
                                f"duration (ms, buckets of {width:g})", width=width), key="distribution")


def render() -> None:
    chosen = selection.current()
    st.title("Performance")
    service = selection.require_service(chosen)
    st.caption(f"**{escape.markdown(service)}** · {chosen.range.label.lower()}")
    operations = collector_api.query(chosen.link, OPERATIONS, chosen.range.timespan, chosen.service).frame
    if operations.empty:
        selection.no_data("requests", chosen)
        return
    st.dataframe(operations.rename(columns={"name": "operation"}).round(1), hide_index=True,
                 column_config={c: st.column_config.NumberColumn(c, format="%.1f") for c in ("avg_ms", "p50_ms", "p95_ms", "p99_ms")})
    operation = st.selectbox("Operation", [ALL, *operations["name"].dropna().tolist()], key="perf_operation")
    _distribution(chosen, operations, operation)


if __name__ == "__main__":  # run as a page by app.py's st.navigation
    render()
