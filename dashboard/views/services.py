"""Services: every service and its state; for the selected one, the enable_app_insights switch,
its keys (masked until revealed), where its telemetry went, and continuous export."""

import pandas as pd
import streamlit as st

from collector.client import InsightsError
from dashboard import collector_api, selection
from dashboard.collector_api import Link
from dashboard.selection import Selection

COUNTERS = ("received", "accepted", "dropped_disabled", "rejected", "capped", "spilled", "imported")


def mask(secret: str | None) -> str:
    """Enough of a secret to tell two apart, not enough to use it."""
    if not secret:
        return ""
    return "•" * 12 + secret[-4:]


def _switch(link: Link, name: str) -> None:
    """on_change of the toggle: call the API, keep its answer to show after the rerun."""
    wanted = st.session_state[f"enable_{name}"]
    try:
        answer = collector_api.update_service(link, name, wanted)
        state = "on" if answer["enable_app_insights"] else "off"
        st.session_state["switch_result"] = ("success", f"App Insights is now **{state}** for {name} "
                                             f"(the collector answered enable_app_insights={str(answer['enable_app_insights']).lower()}).")
    except InsightsError as error:
        st.session_state["switch_result"] = ("error", f"Could not change {name}: {error}")


def _service_list(services: list[dict]) -> None:
    frame = pd.DataFrame([{"service": s["name"], "App Insights": "on" if s["enable_app_insights"] else "off",
                           "instrumentation key": mask(s["instrumentation_key"]), "created": s["created_at"]}
                          for s in services])
    st.dataframe(frame, hide_index=True)


def _keys(service: dict) -> None:
    reveal = st.toggle("Reveal keys", key=f"reveal_{service['name']}")
    for label, field in (("Connection string", "connection_string"), ("Instrumentation key", "instrumentation_key"),
                         ("API key", "api_key")):
        value = service.get(field) or ""
        st.markdown(f"**{label}**")
        st.code(value if reveal else mask(value) if field != "connection_string" else _masked_connection(value), language="text")


def _masked_connection(connection: str) -> str:
    return ";".join(f"{k}={mask(v)}" if k == "InstrumentationKey" else f"{k}={v}"
                    for k, v in (part.split("=", 1) for part in connection.split(";") if "=" in part))


def _counters(link: Link, name: str) -> None:
    counters = collector_api.stats(link, name)
    for column, key in zip(st.columns(len(COUNTERS)), COUNTERS):
        column.metric(key.replace("_", " "), f"{counters.get(key, 0):,}")


def _export(link: Link, name: str) -> None:
    st.subheader("Continuous export")
    info = collector_api.export_info(link, name)
    settings, status = info["settings"], info["status"]
    if not settings.get("configured"):
        st.caption("Not configured: `insights export` or PUT /api/services/{name}/export sets it up.")
    left, right = st.columns(2)
    left.markdown("**Settings**")
    left.json(settings, expanded=1)
    right.markdown("**Status**")
    right.json(status, expanded=1)


def _selected(chosen: Selection, services: list[dict]) -> None:
    service = next(s for s in services if s["name"] == chosen.service)
    name = service["name"]
    st.header(name)
    st.toggle("enable_app_insights", value=service["enable_app_insights"], key=f"enable_{name}",
              on_change=_switch, args=(chosen.link, name),
              help="Off: the collector acknowledges this service's telemetry but does not store it.")
    kind, message = st.session_state.pop("switch_result", (None, None))
    if kind:
        getattr(st, kind)(message)
    _keys(service)
    st.subheader("Telemetry counters")
    _counters(chosen.link, name)
    _export(chosen.link, name)


def render() -> None:
    chosen = selection.current()
    st.title("Services")
    services = collector_api.services(chosen.link)
    if not services:
        selection.require_service(chosen)
    _service_list(services)
    _selected(chosen, services)


if __name__ == "__main__":  # run as a page by app.py's st.navigation
    render()
