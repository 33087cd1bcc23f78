"""Application map: how the roles call each other and what they call outside, over the picked
range, across every service the signed-in key reads; a click on a node or an arrow (or the
Inspect picker) opens its failures and slowest calls."""

import pandas as pd
import streamlit as st

from dashboard import collector_api, escape, map_figure, selection

INSPECT = "map_inspect"


def _options(found: dict) -> dict[str, dict]:
    """Inspect picker label -> the node or edge (only what has calls of its own to show)."""
    options = {f"{node['id']}": node for node in found["nodes"] if node["kind"] == "role"}
    options.update({f"{edge['source']} → {edge['target']}": edge for edge in found["edges"]})
    return options


def _clicked(event, options: dict[str, dict]) -> str | None:
    """The picker label of the node or edge clicked in the chart, if any."""
    points = (event or {}).get("selection", {}).get("points", []) if hasattr(event, "get") else []
    for point in points:
        kind, first, second = (point.get("customdata") or [None, None, None])[:3]
        label = first if kind == "node" else f"{first} → {second}"
        if label in options:
            return label
    return None


def _tables(found: dict) -> None:
    nodes = pd.DataFrame(found["nodes"])[["id", "kind", "service", "requestsPerMinute", "failureRate", "p95Ms",
                                          "instances", "health"]]
    st.dataframe(nodes.rename(columns={"id": "node", "requestsPerMinute": "requests/min",
                                       "failureRate": "failure rate", "p95Ms": "p95 ms"}), hide_index=True)
    if found["edges"]:
        edges = pd.DataFrame(found["edges"])[["source", "target", "calls", "failed", "avgMs", "p95Ms", "health"]]
        st.dataframe(edges.rename(columns={"source": "from", "target": "to", "avgMs": "avg ms", "p95Ms": "p95 ms"}),
                     hide_index=True)


def _drill(chosen: selection.Selection, label: str, item: dict) -> None:
    st.subheader(f"Failures of {escape.markdown(label)}")
    failures = collector_api.query(chosen.link, item["drilldown"]["failures"], chosen.range.timespan, None).frame
    if failures.empty:
        st.success("No failed calls in this range.")
    else:
        st.dataframe(failures, hide_index=True)
    st.subheader(f"Slowest calls of {escape.markdown(label)}")
    st.dataframe(collector_api.query(chosen.link, item["drilldown"]["slowest"], chosen.range.timespan, None).frame,
                 hide_index=True)


def render() -> None:
    chosen = selection.current()
    st.title("Application map")
    st.caption(f"{chosen.range.label.lower()} · every service this key reads · green healthy, amber slow or "
               "some failures, red failing (10 % or more), grey not instrumented · click a node or an arrow")
    found = collector_api.application_map(chosen.link, chosen.range.timespan)
    if not found["nodes"]:
        st.info(f"No requests or dependency calls in the {chosen.range.label.lower()}.")
        st.markdown("Send traffic to a scoring endpoint (`insights score --entry_script score.py --service NAME`), "
                    "or run `insights demo`: its model calls a feature service, two nodes and an edge.")
        return
    options = _options(found)
    event = st.plotly_chart(map_figure.figure(found), key="appmap_chart", on_select="rerun",
                            selection_mode="points", config={"displayModeBar": False})
    clicked = _clicked(event, options)
    if clicked is not None:
        st.session_state[INSPECT] = clicked
    if st.session_state.get(INSPECT) not in options:
        st.session_state.pop(INSPECT, None)
    label = st.selectbox("Inspect", list(options), key=INSPECT, index=None, placeholder="a node or an edge")
    if label is not None:
        _drill(chosen, label, options[label])
    _tables(found)


if __name__ == "__main__":  # run as a page by app.py's st.navigation
    render()
