"""Alerts: what fired and when (timeline), the service's rules with their last error, the learned
band of dynamic rules, availability tests, and the delivery log of notifications."""

import pandas as pd
import streamlit as st

from dashboard import alerting, escape, selection
from dashboard.selection import Selection


def body(chosen: Selection, service: str) -> None:
    link = chosen.link
    alerts = alerting.fetch(link, service, "alerts")
    rules = alerting.fetch(link, service, "alert-rules")
    fired = [a for a in alerts if a["state"] == "Fired" and a["fired_at"]]
    left, middle, right = st.columns(3)
    left.metric("Fired now", len(fired), border=True)
    middle.metric("Rules", len(rules), border=True)
    right.metric("Rules with errors", sum(1 for r in rules if r["last_error"]), border=True)
    _alerts(alerts)
    _rules(rules)
    _bands(chosen, service, [r for r in rules if r["dynamic"]])
    _availability(chosen, service)
    deliveries = alerting.fetch(link, service, "alert-deliveries")
    st.subheader("Deliveries")
    if deliveries:
        st.dataframe(pd.DataFrame(deliveries)[["created_at", "rule", "condition", "receiver", "status", "attempts", "last_error"]],
                     hide_index=True)
    else:
        st.caption("No notifications yet.")


def _alerts(alerts: list[dict]) -> None:
    st.subheader("Alerts")
    figure = alerting.timeline(alerts)
    if figure is None:
        st.success("Nothing has fired.")
        return
    st.plotly_chart(figure, key="alert_timeline")
    rows = [{"rule": a["rule"], "series": alerting.series(a), "state": a["state"], "fired": a["fired_at"],
             "resolved": a["resolved_at"], "value": a["value"], "threshold": a["threshold"]} for a in alerts if a["fired_at"]]
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def _rules(rules: list[dict]) -> None:
    st.subheader("Rules")
    if not rules:
        st.info("No alert rules yet: `insights alert rule create NAME --service SERVICE --query KQL --threshold N`, "
                "or `insights alert rule recommended --service SERVICE` for the built-in ones.")
        return
    rows = [{"rule": r["name"], "severity": f"Sev{r['severity']}", "enabled": r["enabled"],
             "condition": f"{r['measure']} {r['operator']} {r['threshold'] if r['dynamic'] is None else 'learned (' + r['dynamic'] + ')'}",
             "every": f"{r['frequency']} s", "window": f"{r['window']} s", "last window": r["watermark"],
             "last error": r["last_error"]} for r in rules]
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def _bands(chosen: Selection, service: str, dynamic: list[dict]) -> None:
    if not dynamic:
        return
    st.subheader("Learned bands")
    name = st.selectbox("Dynamic rule", [r["name"] for r in dynamic], key="alerts_band_rule")
    hours = max(chosen.range.step.total_seconds() / 3600 * 60, 1.0)
    frame = alerting.values(chosen.link, service, name, hours)
    judged = frame[frame["upper"].notna()]
    if judged.empty:
        st.info(f"{escape.markdown(name)} has not judged a window yet: it learns from at least 12 windows of history.")
        return
    st.plotly_chart(alerting.band_chart(judged, f"{name}: value and learned band"), key="alerts_band")


def _availability(chosen: Selection, service: str) -> None:
    tests = alerting.fetch(chosen.link, service, "availability-tests")
    st.subheader("Availability tests")
    if not tests:
        st.caption("No availability tests: `insights availability create NAME --service SERVICE --from-score URL`.")
        return
    passed = alerting.availability_by_test(chosen)
    rows = [{"test": t["name"], "passed %": passed.get(t["name"], (None, 0))[0], "runs": passed.get(t["name"], (None, 0))[1],
             "method": t["method"], "url": t["url"], "every": f"{t['frequency']} s", "expects": t["expected_status"],
             "last run": t["last_run"]} for t in tests]
    st.caption(f"Runs in the {chosen.range.label.lower()}, from availabilityResults.")
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def render() -> None:
    chosen = selection.current()
    st.title("Alerts")
    service = selection.require_service(chosen)
    st.caption(f"**{escape.markdown(service)}**: alert rules, what they fired, and availability tests")
    st.fragment(body, run_every=chosen.refresh_s)(chosen, service)


if __name__ == "__main__":  # run as a page by app.py's st.navigation
    render()
