"""What every page looks at: the collector, the service and the time range picked in the sidebar,
and the empty states shown instead of a page when there is nothing to look at yet.

The empty states say what to run, because the people who meet them are the ones who have not yet
run it.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from collector.client import ApiError, CollectorUnreachable
from dashboard import collector_api, escape, login, time_range
from dashboard.collector_api import Link
from dashboard.time_range import TimeRange

REFRESH_CHOICES = {"Off": None, "10 s": 10, "30 s": 30, "1 min": 60, "5 min": 300}


@dataclass(frozen=True)
class Selection:
    link: Link
    service: str | None
    range: TimeRange
    refresh_s: int | None


def sidebar(link: Link) -> Selection:
    """Draw the sidebar pickers; stop the run with an explanation when the collector cannot be used."""
    names = [s["name"] for s in _services_or_stop(link)]
    with st.sidebar:
        service = st.selectbox("Service", names, key="service", placeholder="no services yet") if names else None
        label = st.selectbox("Time range", [r.label for r in time_range.RANGES],
                             index=time_range.RANGES.index(time_range.DEFAULT), key="time_range")
        refresh = st.selectbox("Auto-refresh", list(REFRESH_CHOICES), key="refresh")
        st.caption(f"Collector: {link.url}")
    return Selection(link, service, time_range.by_label(label), REFRESH_CHOICES[refresh])


def _services_or_stop(link: Link) -> list[dict]:
    try:
        return collector_api.services(link)
    except CollectorUnreachable:
        st.error(f"No collector answers at {link.url}.")
        st.markdown("Start one with `insights up` (or `insights demo` for a sample service with traffic), "
                    "or point the dashboard at yours: `insights dashboard --collector URL`.")
        st.stop()
    except ApiError as error:
        if error.status_code not in (401, 403):
            raise
        # The key was rotated or the service deleted since this session signed in.
        login.sign_out(f"The collector no longer accepts this session's key ({error.message}); sign in again.")
        st.rerun()


def require_service(selection: Selection) -> str:
    """The selected service, or an explanation and a stopped run when there is none."""
    if selection.service is None:
        st.info("No services yet.")
        st.markdown("Create one with `insights service create my-service` and point a scoring "
                    "endpoint at it (`insights score --entry_script score.py --service my-service`), "
                    "or run `insights demo` for a sample model with traffic.")
        st.stop()
    return selection.service


def no_data(what: str, selection: Selection) -> None:
    """Say that the service has sent nothing in the range, and what would change that."""
    service = escape.markdown(selection.service)
    st.info(f"No {what} from **{service}** in the {selection.range.label.lower()}.")
    st.markdown("Send it traffic (`insights score --entry_script score.py --service "
                f"{selection.service}`, then call the endpoint), check that App Insights is on for it "
                "(Services page), or pick a longer time range.")


def current() -> Selection:
    """The selection the app put in session state before running the page."""
    return st.session_state["_selection"]
