"""Services: every service and its state (a service's own key: that service only); for the
selected one, the enable_app_insights switch, its keys, where its telemetry went, and continuous
export. With the admin key, batches the store refused after acknowledging them (set aside, see
collector/store/set_aside.py) are shown first, when there are any, with a button to replay them.

The API key is shown as the collector gives it outside create and rotate-key: a prefix and a mask
(the collector keeps only a digest). Where the page used to offer to copy it, it offers rotate-key,
which shows the new key once. Export settings are shown as the collector gives them, with any
storage secret masked here too, in case a collector answers with one in clear.
"""

import re

import pandas as pd
import streamlit as st

from collector.client import InsightsError
from dashboard import collector_api, escape, scale_events, selection
from dashboard.collector_api import Link
from dashboard.selection import Selection

COUNTERS = ("received", "accepted", "set_aside", "dropped_disabled", "rejected", "capped", "spilled", "imported")
KEY_PREFIX_LENGTH = 6
_STORAGE_SECRETS = re.compile(r"((?:AccountKey|SharedAccessSignature)=)[^;\s\"']*|([?&]sig=)[^&;\s\"']*", re.IGNORECASE)


def mask(secret: str | None) -> str:
    """Enough of a secret to tell two apart, not enough to use it."""
    if not secret:
        return ""
    return "•" * 12 + secret[-4:]


def shown_api_key(service: dict) -> str:
    """The API key as the collector shows it: its prefix and a mask. A collector that still answers
    with the key in clear gets the same treatment here."""
    key = service.get("api_key") or ""
    if service.get("api_key_masked") or not key:
        return key
    return key[:KEY_PREFIX_LENGTH] + "…"


def without_secrets(value):
    """`value` (export settings or status, as JSON) with storage account keys and SAS signatures masked."""
    if isinstance(value, str):
        return _STORAGE_SECRETS.sub(_masked, value)
    if isinstance(value, dict):
        return {k: without_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_secrets(v) for v in value]
    return value


def _masked(match: re.Match) -> str:
    """A secret's name and a mask; what the collector already masked (`****`) stays as it gave it."""
    name = match.group(1) or match.group(2)
    secret = match.group(0)[len(name):]
    return match.group(0) if secret and set(secret) <= {"*", "•"} else name + "•" * 8


def _switch(link: Link, name: str) -> None:
    """on_change of the toggle: call the API, keep its answer to show after the rerun."""
    wanted = st.session_state[f"enable_{name}"]
    shown = escape.markdown(name)
    try:
        answer = collector_api.update_service(link, name, wanted)
        state = "on" if answer["enable_app_insights"] else "off"
        st.session_state["switch_result"] = ("success", f"App Insights is now **{state}** for {shown} "
                                             f"(the collector answered enable_app_insights={str(answer['enable_app_insights']).lower()}).")
    except InsightsError as error:
        st.session_state["switch_result"] = ("error", f"Could not change {shown}: {escape.markdown(error)}")


def _rotate(link: Link, name: str) -> None:
    """on_click of "Rotate now": the new key is kept for the next run to show, once."""
    try:
        st.session_state["rotated_key"] = (name, collector_api.rotate_key(link, name)["api_key"])
    except InsightsError as error:
        st.session_state["switch_result"] = ("error", f"Could not rotate the key of {escape.markdown(name)}: {escape.markdown(error)}")


def _service_list(services: list[dict]) -> None:
    frame = pd.DataFrame([{"service": s["name"], "App Insights": "on" if s["enable_app_insights"] else "off",
                           "instrumentation key": mask(s["instrumentation_key"]), "API key": shown_api_key(s),
                           "created": s["created_at"]}
                          for s in services])
    st.dataframe(frame, hide_index=True)


def _keys(link: Link, service: dict) -> None:
    name = service["name"]
    reveal = st.toggle("Reveal connection string", key=f"reveal_{name}",
                       help="The instrumentation key is in every connection string and in browser code: not a secret.")
    for label, field in (("Connection string", "connection_string"), ("Instrumentation key", "instrumentation_key")):
        value = service.get(field) or ""
        st.markdown(f"**{label}**")
        st.code(value if reveal else mask(value) if field != "connection_string" else _masked_connection(value), language="text")
    st.markdown("**API key**")
    rotated = st.session_state.pop("rotated_key", None)
    if rotated and rotated[0] == name:
        st.code(rotated[1], language="text")
        st.warning("The new API key, shown this once: copy it now. The old key no longer works.")
    else:
        st.code(shown_api_key(service), language="text")
    if link.is_admin:
        with st.popover("Rotate API key", icon=":material/autorenew:"):
            st.markdown("The collector keeps only a digest of the key, so it cannot be shown again. Rotating makes a new "
                        "one, shown once; the old key stops working at once (scripts and configs using it need the new one).")
            st.button("Rotate now", key=f"rotate_{name}", type="primary", on_click=_rotate, args=(link, name))


def _masked_connection(connection: str) -> str:
    return ";".join(f"{k}={mask(v)}" if k == "InstrumentationKey" else f"{k}={v}"
                    for k, v in (part.split("=", 1) for part in connection.split(";") if "=" in part))


def _counters(link: Link, name: str) -> None:
    counters = collector_api.stats(link, name)
    for column, key in zip(st.columns(len(COUNTERS)), COUNTERS):
        column.metric(key.replace("_", " "), f"{counters.get(key, 0):,}")


def _export(link: Link, name: str) -> None:
    st.subheader("Continuous export")
    if not link.is_admin:
        st.caption("Continuous export is set up and shown with the admin key.")
        return
    info = without_secrets(collector_api.export_info(link, name))
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
    st.header(escape.markdown(name))
    st.toggle("enable_app_insights", value=service["enable_app_insights"], key=f"enable_{name}",
              on_change=_switch, args=(chosen.link, name), disabled=not chosen.link.is_admin,
              help="Off: the collector acknowledges this service's telemetry but does not store it."
                   + ("" if chosen.link.is_admin else " Changing it needs the admin key."))
    kind, message = st.session_state.pop("switch_result", (None, None))
    if kind:
        getattr(st, kind)(message)
    _keys(chosen.link, service)
    st.subheader("Telemetry counters")
    _counters(chosen.link, name)
    scale_events.render(chosen, name)
    _export(chosen.link, name)


def _set_aside(link: Link) -> None:
    kind, message = st.session_state.pop("replay_result", (None, None))
    if kind:
        getattr(st, kind)(message)
    answer = collector_api.set_aside(link)
    if not answer["batches"]:
        return
    st.warning(f"The store refused acknowledged items and set them aside: **{answer['items']:,} items** "
               f"in {len(answer['batches'])} batches. Fix what it says below, then replay them.")
    st.dataframe(pd.DataFrame([{"record": batch["record"], "set aside at": batch["set_aside_at"],
                                "items": ", ".join(f"{name} {count:,}" for name, count in batch["items"].items()),
                                "reason": batch["reason"]} for batch in answer["batches"]]), hide_index=True)
    st.button("Replay set-aside batches", key="replay_set_aside", on_click=_replay, args=(link,))


def _replay(link: Link) -> None:
    """on_click of the replay button: call the API, keep its answer to show after the rerun."""
    try:
        answer = collector_api.replay_set_aside(link)
    except InsightsError as error:
        st.session_state["replay_result"] = ("error", f"Could not replay: {escape.markdown(error)}")
        return
    message = f"Replayed: {answer['replayed']} batches, {answer['items']:,} items."
    refused = "; ".join(f"record {r['record']}: {r['reason']}" for r in answer["refused"])
    if refused:
        message += f" Refused again: {refused}"
    st.session_state["replay_result"] = ("warning" if refused else "success", escape.markdown(message))


def render() -> None:
    chosen = selection.current()
    st.title("Services")
    if chosen.link.is_admin:
        _set_aside(chosen.link)
    services = collector_api.services(chosen.link)
    if not services:
        selection.require_service(chosen)
    _service_list(services)
    _selected(chosen, services)


if __name__ == "__main__":  # run as a page by app.py's st.navigation
    render()
