"""Logs: a KQL editor over the selected service, as in the portal's Logs blade.

The query runs whenever the editor's text changes (Ctrl+Enter) or Run is pressed; a wrong query
shows the collector's message with a caret under the position it names. A long text cell (a
`customDimensions`) is shown from just before the first string the query searched for, since a
table cell shows only a value's beginning; "Whole values" shows them uncut, and the CSV is always whole.
"""

import re

import pandas as pd
import streamlit as st

from dashboard import charts, collector_api, escape, selection
from dashboard.collector_api import QueryError, QueryResult
from dashboard.time_range import TimeRange

DEFAULT_QUERY = 'traces | where customDimensions contains "input" | limit 10'
EXAMPLES = {
    "Scoring inputs (print of JSON in run())": DEFAULT_QUERY,
    "Requests per 5 minutes": "requests | summarize requests=count() by bin(timestamp, 5m) | render timechart",
    "Failed requests by result code": "requests | where success == false | summarize failed=count() by resultCode | render barchart",
    "Slowest requests": "requests | top 20 by duration desc | project timestamp, name, resultCode, duration, operation_Id",
    "Exceptions with their request": ("exceptions | join kind=inner (requests | project operation_Id, request=name, resultCode) "
                                      "on operation_Id | project timestamp, type, message, request, resultCode | limit 50"),
    "p95 response time per operation": ("requests | summarize p95_ms=percentile(duration, 95) by bin(timestamp, 5m), name "
                                        "| render timechart"),
    "stderr output": 'traces | where message == "STDERR" | project timestamp, customDimensions | limit 50',
}


EXCERPT = 100
"""Characters of a long value shown around the searched string."""
_STRINGS = re.compile(r'"((?:[^"\\]|\\.)+)"|\'((?:[^\'\\]|\\.)+)\'')


def searched(query: str) -> list[str]:
    """The string literals in the query (what a `contains`, `has`, `==` looks for)."""
    return [re.sub(r"\\(.)", r"\1", double or single) for double, single in _STRINGS.findall(query)]


def excerpt(value: str, terms: list[str], width: int = EXCERPT) -> str:
    """`value` from a little before its first `terms` match, cut to `width` (… marks a cut); the
    whole value when it is short, matches nowhere, or matches near its start."""
    lower = value.lower()
    hits = [at for at in (lower.find(term.lower()) for term in terms) if at >= 0]
    if len(value) <= width or not hits or min(hits) < width // 2:
        return value
    start = max(0, min(hits) - width // 5)
    end = start + width
    return ("…" if start else "") + value[start:end] + ("…" if end < len(value) else "")


def around_matches(frame: pd.DataFrame, query: str) -> pd.DataFrame:
    """`frame` with each long text cell cut to the part around what the query searched for."""
    terms = searched(query)
    if not terms or frame.empty:
        return frame
    shown = frame.copy()
    for column in shown.columns:
        if shown[column].dtype == object or pd.api.types.is_string_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: excerpt(v, terms) if isinstance(v, str) else v)
    return shown


def _load_example() -> None:
    """on_change of the examples picker: put the chosen query into the editor."""
    st.session_state["kql"] = EXAMPLES[st.session_state["example"]]


def caret(query: str, line: int, column: int) -> str:
    """The offending line of the query with a caret under the column (both 1-based)."""
    lines = query.splitlines() or [""]
    text = lines[min(line, len(lines)) - 1]
    return f"{text}\n{' ' * max(column - 1, 0)}^"


def _show_error(error: QueryError, query: str) -> None:
    st.error(f"The query failed: {escape.markdown(error.message)}")
    if error.line is not None:
        st.code(caret(query, error.line, error.column), language="text")


def _show_result(result: QueryResult, query: str, chosen_range: TimeRange) -> None:
    frame = result.frame
    note = f"{len(frame):,} rows" + (f" in {result.elapsed_ms:.0f} ms" if result.elapsed_ms is not None else "")
    st.caption(note + (" — truncated at the collector's row limit" if result.truncated else ""))
    figure = None
    if result.render or _summarizes_by_time(query):
        figure = charts.for_result(frame, result.render, buckets=time_axis(query, chosen_range), counts=counted(query))
    if figure is not None:
        st.plotly_chart(figure, key="result_chart")
    whole = st.toggle("Whole values", key="logs_whole", help="Long values are shown around the searched string; "
                      "on: every value whole (the CSV is always whole).")
    st.dataframe(frame if whole else around_matches(frame, query), hide_index=True)
    st.download_button("Download CSV", frame.to_csv(index=False).encode(), file_name="query-result.csv",
                       mime="text/csv", disabled=frame.empty)


_BIN = re.compile(r"bin\(\s*timestamp\s*,\s*(\d+(?:\.\d+)?)\s*(ms|min|d|h|m|s)\s*\)", re.IGNORECASE)
_COUNTED = re.compile(r"(\w+)\s*=\s*(?:count|countif|dcount|dcountif|sum|sumif)\s*\(", re.IGNORECASE)
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "min": "minutes", "s": "seconds", "ms": "milliseconds"}
MAX_BUCKETS = 5000


def time_axis(query: str, range_: TimeRange) -> charts.Buckets | None:
    """The picked range in the query's `bin(timestamp, ...)` buckets; None without one, or when
    they would be too many to draw."""
    found = _BIN.search(query)
    if not found:
        return None
    step = pd.Timedelta(**{_UNITS[found.group(2).lower()]: float(found.group(1))})
    if step <= pd.Timedelta(0) or pd.Timedelta(range_.timespan) / step > MAX_BUCKETS:
        return None
    return charts.Buckets(range_.buckets(step=step), step)


def counted(query: str) -> tuple[str, ...]:
    """The columns the query counts or sums (0 in an empty bucket); `count_` for a bare count()."""
    names = _COUNTED.findall(query)
    if re.search(r"(?:summarize|,)\s*count\(\s*\)", query, re.IGNORECASE):
        names.append("count_")
    return tuple(names)


def _summarizes_by_time(query: str) -> bool:
    """A `summarize ... by bin(timestamp, ...)` is a time series, worth a chart without `render`."""
    text = " ".join(query.split()).lower()
    return "summarize" in text and "bin(timestamp" in text.replace("bin( ", "bin(")


def render() -> None:
    chosen = selection.current()
    st.title("Logs")
    service = selection.require_service(chosen)
    st.caption(f"KQL over **{escape.markdown(service)}**'s tables (requests, traces, dependencies, exceptions, customEvents, "
               f"customMetrics) · {chosen.range.label.lower()}")
    st.session_state.setdefault("kql", DEFAULT_QUERY)
    st.selectbox("Example queries", list(EXAMPLES), index=None, placeholder="Load an example query…",
                 key="example", on_change=_load_example)
    query = st.text_area("Query", key="kql", height=120)
    st.button("Run", type="primary", key="run")
    if not query.strip():
        st.info("Write a KQL query above, e.g. `requests | take 10`.")
        return
    try:
        result = collector_api.query(chosen.link, query, chosen.range.timespan, service)
    except QueryError as error:
        _show_error(error, query)
        return
    _show_result(result, query, chosen.range)


if __name__ == "__main__":  # run as a page by app.py's st.navigation
    render()
