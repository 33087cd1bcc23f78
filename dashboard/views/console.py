"""Console logs: what the service's scoring processes printed (Webservice.get_logs), tail with refresh.

Kept by the collector whether App Insights is on or off, and after a crash, so this is where to
look when init() fails and no telemetry arrives.
"""

import streamlit as st

from dashboard import collector_api, escape, selection
from dashboard.selection import Selection

TAIL_REFRESH_S = 5


def tail(chosen: Selection, lines: int) -> None:
    text = collector_api.console_logs(chosen.link, chosen.service, lines)
    if not text:
        st.info(f"No console output from {escape.markdown(chosen.service)} yet. `insights score --service {chosen.service}` "
                "sends its processes' stdout and stderr here.")
    else:
        st.code(text, language="text", line_numbers=False)


def render() -> None:
    chosen = selection.current()
    st.title("Console logs")
    service = selection.require_service(chosen)
    left, middle, right = st.columns([2, 2, 1])
    lines = left.number_input("Lines", min_value=10, max_value=10_000, value=100, step=50, key="console_lines")
    follow = middle.toggle(f"Follow (every {TAIL_REFRESH_S} s)", key="console_follow")
    right.button("Refresh", key="console_refresh")
    st.caption(f"The last {lines} lines of **{escape.markdown(service)}**'s console output, oldest first.")
    st.fragment(tail, run_every=TAIL_REFRESH_S if follow else None)(chosen, int(lines))


if __name__ == "__main__":  # run as a page by app.py's st.navigation
    render()
