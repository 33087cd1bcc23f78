"""Failures: which operations fail, with which result codes and exceptions — then the samples.

A drill-in shows a few recent failed items, each with its stack and `customDimensions` as a JSON
tree, because the input that made run() fail is usually the answer.
"""

import orjson
import pandas as pd
import streamlit as st

from dashboard import charts, collector_api, escape, kql_text, selection
from dashboard.selection import Selection

SAMPLES = 5
QUERIES = {
    "operations": ("requests | summarize total=count(), failed=countif(success == false) by name "
                   "| where failed > 0 | top 10 by failed"),
    "codes": "requests | where success == false | summarize failed=count() by resultCode | top 10 by failed",
    "exceptions": ("exceptions | summarize exceptions=count(), last_seen=max(timestamp) by type, problemId "
                   "| top 10 by exceptions"),
}
DRILLS = {
    "Operation": ("operations", "name"),
    "Result code": ("codes", "resultCode"),
    "Exception type": ("exceptions", "type"),
}


def _tables(results: dict) -> None:
    operations = results["operations"].frame
    operations["failure_rate_%"] = (100.0 * operations["failed"] / operations["total"]).round(1)
    left, middle = st.columns([3, 2])
    left.subheader("Top failing operations")
    left.dataframe(operations.rename(columns={"name": "operation"}), hide_index=True)
    middle.subheader("Result codes")
    middle.plotly_chart(charts.bars(results["codes"].frame, "resultCode", "failed", "", "result code"), key="codes")
    st.subheader("Top exception types")
    exceptions = results["exceptions"].frame
    if exceptions.empty:
        st.success("No exceptions in this range.")
    else:
        st.dataframe(exceptions, hide_index=True)


def _sample_query(kind: str, value: str) -> str:
    if kind == "Exception type":
        return f"exceptions | where type == {kql_text.string(value)} | top {SAMPLES} by timestamp desc"
    column = "name" if kind == "Operation" else "resultCode"
    return f"requests | where success == false and {column} == {kql_text.string(value)} | top {SAMPLES} by timestamp desc"


def _drill(results: dict, chosen: Selection) -> None:
    st.subheader("Samples")
    left, right = st.columns([1, 3])
    kind = left.radio("Drill into", list(DRILLS), key="drill_kind")
    table, column = DRILLS[kind]
    values = results[table].frame[column].dropna().astype(str).unique().tolist()
    if not values:
        right.info(f"No {kind.lower()}s with failures in this range.")
        return
    value = right.selectbox(kind, values, key=f"drill_{table}")
    samples = collector_api.query(chosen.link, _sample_query(kind, value), chosen.range.timespan, chosen.service).frame
    if kind != "Exception type":
        samples = _with_exceptions(samples, chosen)
    for _, item in samples.iterrows():
        _sample(item)


def _with_exceptions(requests: pd.DataFrame, chosen: Selection) -> pd.DataFrame:
    """Attach each failed request's exception (same operation_Id), when it raised one."""
    ids = requests["operation_Id"].dropna().tolist()
    if not ids:
        return requests
    kql = f"exceptions | where operation_Id in {kql_text.string_list(ids)} | project operation_Id, type, details"
    exceptions = collector_api.query(chosen.link, kql, chosen.range.timespan, chosen.service).frame
    exceptions = exceptions.drop_duplicates("operation_Id").rename(columns={"type": "exception_type"})
    return requests.merge(exceptions, on="operation_Id", how="left")


def _sample(item: pd.Series) -> None:
    title = " · ".join(str(item[c]) for c in ("timestamp", "name", "resultCode", "type", "message") if c in item and pd.notna(item[c]))
    with st.expander(escape.markdown(title[:160]), expanded=False):
        if "duration" in item and pd.notna(item["duration"]):
            st.markdown(f"duration **{item['duration']:.1f} ms** · operation {escape.markdown(item.get('operation_Id'))}")
        stack = stack_text(item.get("details"))
        if stack:
            st.markdown(f"**{escape.markdown(item.get('exception_type') or item.get('type') or 'Exception')}** stack")
            st.code(stack, language="text")
        st.markdown("**customDimensions**")
        st.json(_decoded(item.get("customDimensions")), expanded=2)


def stack_text(details) -> str:
    """A readable traceback from the `details` chain: each exception, its frames innermost last."""
    chain = _decoded(details)
    if not isinstance(chain, list):
        return ""
    parts = []
    for exception in chain:
        if exception.get("rawStack"):
            parts.append(exception["rawStack"])
            continue
        parts.append(f"{exception.get('type')}: {exception.get('message')}")
        for frame in reversed(exception.get("parsedStack") or []):
            parts.append(f"  at {frame.get('method')} ({frame.get('fileName')}:{frame.get('line')})")
    return "\n".join(parts)


def _decoded(value):
    if isinstance(value, str) and value[:1] in "{[":
        return orjson.loads(value)
    return {} if value is None or (not isinstance(value, (dict, list)) and pd.isna(value)) else value


def render() -> None:
    chosen = selection.current()
    st.title("Failures")
    service = selection.require_service(chosen)
    st.caption(f"**{escape.markdown(service)}** · {chosen.range.label.lower()}")
    results = collector_api.query_all(chosen.link, QUERIES, chosen.range.timespan, chosen.service)
    if results["operations"].frame.empty and results["exceptions"].frame.empty:
        st.success(f"No failed requests or exceptions from {escape.markdown(service)} in the {chosen.range.label.lower()}.")
        return
    _tables(results)
    _drill(results, chosen)


if __name__ == "__main__":  # run as a page by app.py's st.navigation
    render()
