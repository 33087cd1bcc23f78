"""Plotly figures in one look: compact, time on x, legend under the plot (the toolbar sits top
right, over anything placed there), the same height everywhere.

Time charts are zero-filled (filled()): the collector returns only the buckets that hold rows, so
without this an hour with no requests would be drawn as a line gently falling from the bucket
before to the bucket after. Counts are 0 in an empty bucket; averages and percentiles are a gap
(NaN), because 0 ms would be a lie. The x axis always spans the picked range (Buckets), so a
single bucket is one bar in an hour, not a sub-millisecond axis.

Plotly renders a subset of HTML (links among it) in titles, legends and axis labels, and those show
telemetry (result codes, exception types, operation names, a Logs result's values): every text
column a figure labels with, and every title, is escaped first (escape.plotly)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboard import escape

HEIGHT = 260
LEGEND = {"orientation": "h", "y": -0.2, "x": 0, "xanchor": "left", "yanchor": "top", "title": None}
"""Below the plot, left: clear of the title (top left) and of the toolbar (top right)."""


@dataclass(frozen=True)
class Buckets:
    """A time chart's x axis: every bucket of the picked range (TimeRange.buckets) and its width."""

    starts: pd.DatetimeIndex
    step: pd.Timedelta

    @property
    def x_range(self) -> list[str]:
        """From the first bucket's start to the last one's end."""
        return [self.starts[0].isoformat(), (self.starts[-1] + self.step).isoformat()]

    @property
    def minutes(self) -> float:
        """The minutes the buckets cover together."""
        return len(self.starts) * self.step.total_seconds() / 60


def filled(frame: pd.DataFrame, x: str, buckets: Buckets, counts: list[str]) -> pd.DataFrame:
    """`frame` (one row per time bucket in `x`) with a row for every bucket: `counts` columns 0 in
    the buckets that had no rows, every other column NaN there (a gap, not a zero). The grid takes
    the rows' phase (a bin of 7m need not start where pandas' floor does); a row off it is kept."""
    times = pd.DatetimeIndex(frame[x]) if not frame.empty else buckets.starts[:0]
    starts = buckets.starts + ((times[0] - buckets.starts[0]) % buckets.step if len(times) else pd.Timedelta(0))
    index = starts.union(times)
    out = frame.set_index(x).reindex(index)
    for column in counts:
        out[column] = out[column].fillna(0)
    return out.rename_axis(x).reset_index()


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
                         legend=LEGEND)
    figure.update_xaxes(title=None)
    figure.update_yaxes(title=y_title, rangemode="tozero")
    return figure


def lines(frame: pd.DataFrame, x: str, ys: list[str], title: str, y_title: str | None = None,
          buckets: Buckets | None = None) -> go.Figure:
    """One line per column in `ys` (markers too where a point has no neighbour, so a single bucket
    still shows); over `buckets` when given (`frame` filled() by the caller)."""
    frame = frame.sort_values(x)
    figure = px.line(frame, x=x, y=ys, markers=any(_isolated(frame[y]) for y in ys))
    figure.update_layout(showlegend=len(ys) > 1)
    return _timed(_styled(figure, title, y_title), buckets)


def _isolated(values: pd.Series) -> bool:
    """Whether a value has no value beside it (a line would not draw it)."""
    present = values.notna()
    return bool((present & ~present.shift(1, fill_value=False) & ~present.shift(-1, fill_value=False)).any())


def stacked(frame: pd.DataFrame, x: str, y: str, color: str, title: str, y_title: str | None = None,
            buckets: Buckets | None = None) -> go.Figure:
    """Bars split by `color` (result code, exception type), stacked per bucket, each bar as wide
    as its bucket (from its start) when `buckets` is given (an empty bucket is no bar: zero)."""
    figure = px.bar(_as_text(frame, [color]).sort_values(x), x=x, y=y, color=color)
    figure.update_layout(barmode="stack")
    if buckets is not None:
        figure.update_traces(width=buckets.step.total_seconds() * 1000 * 0.9, offset=0)
    return _timed(_styled(figure, title, y_title), buckets)


def _timed(figure: go.Figure, buckets: Buckets | None) -> go.Figure:
    if buckets is not None:
        # One line of tick labels (no date line under the first), so the legend below stays clear.
        day = buckets.starts[-1] - buckets.starts[0] <= pd.Timedelta(days=1)
        figure.update_xaxes(type="date", range=buckets.x_range, tickformat="%H:%M" if day else "%b %d %H:%M")
    return figure


def bars(frame: pd.DataFrame, x: str, y: str, title: str, x_title: str | None = None,
         width: float | None = None) -> go.Figure:
    """Bars per `x`; with `width` (numeric `x` holding bucket starts) each bar spans its bucket and
    the axis starts at 0, so one bucket is one bar, not a bar across the plot."""
    figure = _styled(px.bar(_as_text(frame, [x]), x=x, y=y), title, y)
    if width is not None and not frame.empty:
        figure.update_traces(width=width, offset=0)
        figure.update_xaxes(range=[0, float(frame[x].max()) + width])
    # Result codes are strings that look like numbers: keep them as categories, not a 350..550 axis.
    figure.update_xaxes(title=x_title, type=None if pd.api.types.is_numeric_dtype(frame[x]) else "category")
    return figure


def for_result(frame: pd.DataFrame, render: str | None, title: str = "", buckets: Buckets | None = None,
               counts: tuple[str, ...] = ()) -> go.Figure | None:
    """A chart for a Logs result: the `render` kind if asked for, else a time chart when the first
    column is a time bucket; None when the result is not chartable (no numeric column). A time
    chart spans `buckets` when given, and a single series is filled() over them (`counts` 0, the
    rest a gap)."""
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
    if color:
        return _timed(_styled(px.line(frame.sort_values(x), x=x, y=numeric[0], color=color), title), buckets)
    if buckets is not None and frame[x].is_unique:
        frame = filled(frame, x, buckets, [c for c in counts if c in numeric])
    ordered = frame.sort_values(x)
    figure = px.line(ordered, x=x, y=numeric, markers=any(_isolated(ordered[c]) for c in numeric))
    return _timed(_styled(figure, title), buckets)
