"""Plotly figures in one look: compact, time on x, legend on top, the same height everywhere.

Plotly renders a subset of HTML (links among it) in titles, legends and axis labels, and those show
telemetry (result codes, exception types, operation names, a Logs result's values): every text
column a figure labels with, and every title, is escaped first (escape.plotly)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboard import escape

HEIGHT = 260


def _as_text(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """`frame` with its text `columns` escaped for Plotly (numbers and times untouched)."""
    text = [c for c in dict.fromkeys(columns) if c is not None and c in frame.columns
            and not pd.api.types.is_numeric_dtype(frame[c]) and not isinstance(frame[c].dtype, pd.DatetimeTZDtype)]
    if not text:
        return frame
    frame = frame.copy()
    for column in text:
        frame[column] = frame[column].map(lambda v: escape.plotly(v) if isinstance(v, (str, dict, list)) else v)
    return frame


def _styled(figure: go.Figure, title: str, y_title: str | None = None) -> go.Figure:
    figure.update_layout(title={"text": escape.plotly(title), "font": {"size": 14}}, height=HEIGHT,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom", "title": None})
    figure.update_xaxes(title=None)
    figure.update_yaxes(title=y_title, rangemode="tozero")
    return figure


def lines(frame: pd.DataFrame, x: str, ys: list[str], title: str, y_title: str | None = None) -> go.Figure:
    """One line per column in `ys` (markers too, so a single bucket still shows)."""
    figure = px.line(frame.sort_values(x), x=x, y=ys, markers=len(frame) < 3)
    figure.update_layout(showlegend=len(ys) > 1)
    return _styled(figure, title, y_title)


def stacked(frame: pd.DataFrame, x: str, y: str, color: str, title: str, y_title: str | None = None) -> go.Figure:
    """Bars split by `color` (result code, exception type), stacked per bucket."""
    figure = px.bar(_as_text(frame, [color]).sort_values(x), x=x, y=y, color=color)
    figure.update_layout(barmode="stack")
    return _styled(figure, title, y_title)


def bars(frame: pd.DataFrame, x: str, y: str, title: str, x_title: str | None = None) -> go.Figure:
    figure = _styled(px.bar(_as_text(frame, [x]), x=x, y=y), title, y)
    # Result codes are strings that look like numbers: keep them as categories, not a 350..550 axis.
    figure.update_xaxes(title=x_title, type=None if pd.api.types.is_numeric_dtype(frame[x]) else "category")
    return figure


def for_result(frame: pd.DataFrame, render: str | None, title: str = "") -> go.Figure | None:
    """A chart for a Logs result: the `render` kind if asked for, else a time chart when the first
    column is a time bucket; None when the result is not chartable (no numeric column)."""
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    if frame.empty or not numeric:
        return None
    times = [c for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)]
    labels = [c for c in frame.columns if c not in numeric and c not in times]
    x = times[0] if times else (labels[0] if labels else frame.columns[0])
    color = next((c for c in labels if c != x), None)
    kind = (render or "timechart").lower()
    frame = _as_text(frame, labels)
    if kind == "piechart" and labels:
        return _styled(px.pie(frame, names=labels[0], values=numeric[0]), title)
    if kind in ("barchart", "columnchart") or not times:
        return _styled(px.bar(frame, x=x, y=numeric[0] if color else numeric, color=color), title)
    ordered = frame.sort_values(x)
    if color:
        return _styled(px.line(ordered, x=x, y=numeric[0], color=color), title)
    return _styled(px.line(ordered, x=x, y=numeric), title)
