"""The application map drawn: roles and external targets as nodes, dependencies as arrows, each
coloured by its health (green healthy, amber slow or failing now and then, red failing, grey
unknown), a node sized by its request rate.

Layout in columns, left to right, by call depth: the roles nothing calls first, then what they
call (roles and external targets alike), and so on. Each node and each edge's midpoint is a point that
carries what it is (customdata), so a click on it selects it (st.plotly_chart on_select).
Every label comes from telemetry, so it is escaped for Plotly first.
"""

from __future__ import annotations

import math
from collections import defaultdict

import plotly.graph_objects as go

from dashboard import escape

COLOURS = {"healthy": "#2e9e44", "warning": "#e0a100", "failing": "#d62728", "unknown": "#8c8c8c"}
SYMBOLS = {"role": "circle", "http": "square", "database": "diamond", "queue": "triangle-up", "external": "square"}
HEIGHT = 560


def positions(found: dict) -> dict[str, tuple[float, float]]:
    """Where each node goes: x its call depth, y spread evenly within its column."""
    kinds = {node["id"]: node["kind"] for node in found["nodes"]}
    callers = defaultdict(set)
    for edge in found["edges"]:
        callers[edge["target"]].add(edge["source"])
    depth: dict[str, int] = {}

    def depth_of(node: str, seen: frozenset = frozenset()) -> int:
        if node not in depth:
            upstream = [c for c in callers[node] if c not in seen and c != node]
            depth[node] = 1 + max((depth_of(c, seen | {node}) for c in upstream), default=-1)
        return depth[node]

    columns: dict[int, list[str]] = defaultdict(list)
    for node in kinds:
        columns[depth_of(node)].append(node)
    placed = {}
    for column, members in columns.items():
        for index, node in enumerate(sorted(members)):
            placed[node] = (float(column), (len(members) - 1) / 2 - index)
    return placed


def figure(found: dict) -> go.Figure:
    placed = positions(found)
    fig = go.Figure()
    for edge in found["edges"]:
        _edge(fig, edge, placed)
    nodes = found["nodes"]
    fig.add_trace(go.Scatter(
        x=[placed[n["id"]][0] for n in nodes], y=[placed[n["id"]][1] for n in nodes], mode="markers+text",
        marker={"size": [_size(n) for n in nodes], "color": [COLOURS[n["health"]] for n in nodes],
                "symbol": [SYMBOLS.get(n["kind"], "square") for n in nodes], "line": {"width": 2, "color": "#ffffff"}},
        text=[escape.plotly(n["id"]) for n in nodes], textposition="bottom center", textfont={"color": "#31333f"},
        hovertext=[_node_hover(n) for n in nodes], hoverinfo="text",
        customdata=[["node", n["id"], ""] for n in nodes], name="nodes", showlegend=False,
        unselected={"marker": {"opacity": 1}, "textfont": {"color": "#31333f"}}))
    fig.update_layout(height=HEIGHT, margin={"l": 10, "r": 10, "t": 10, "b": 10}, clickmode="event+select",
                      dragmode=False, plot_bgcolor="rgba(0,0,0,0)",
                      xaxis={"visible": False, "range": _padded([p[0] for p in placed.values()])},
                      yaxis={"visible": False, "range": _padded([p[1] for p in placed.values()])})
    return fig


def _edge(fig: go.Figure, edge: dict, placed: dict) -> None:
    (x0, y0), (x1, y1) = placed[edge["source"]], placed[edge["target"]]
    colour = COLOURS[edge["health"]]
    width = 1.5 + math.log10(1 + edge["calls"])
    fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", showarrow=True,
                       arrowhead=3, arrowsize=1, arrowwidth=width, arrowcolor=colour, standoff=22, startstandoff=22)
    label = f"{edge['calls']} calls · {edge['failureRate'] * 100:.0f}% failed · {_ms(edge['avgMs'])}"
    fig.add_trace(go.Scatter(
        x=[(x0 + x1) / 2], y=[(y0 + y1) / 2], mode="markers+text", text=[escape.plotly(label)],
        textposition="top center", textfont={"size": 11, "color": colour},
        marker={"size": 14, "color": colour, "symbol": "circle-open", "line": {"width": 2}},
        hovertext=[escape.plotly(f"{edge['source']} → {edge['target']}: {label}, p95 {_ms(edge['p95Ms'])}")],
        hoverinfo="text", customdata=[["edge", edge["source"], edge["target"]]], showlegend=False,
        unselected={"marker": {"opacity": 1}, "textfont": {"color": colour}}))


def _node_hover(node: dict) -> str:
    if node["kind"] != "role":
        return escape.plotly(f"{node['id']}: {node.get('type') or node['kind']} (called, not instrumented)")
    return escape.plotly(f"{node['id']}: {node['requestsPerMinute']} requests/min, "
                         f"{node['failureRate'] * 100:.1f}% failed, p95 {_ms(node['p95Ms'])}, "
                         f"{node['instances']} instance(s)")


def _size(node: dict) -> float:
    return 26 + 8 * math.log10(1 + (node["requestsPerMinute"] or 0)) if node["kind"] == "role" else 22


def _padded(values: list[float]) -> list[float]:
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    return [low - 0.6, high + 0.6]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"
