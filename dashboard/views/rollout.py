"""Rollout: an online endpoint's deployments side by side (traffic, request rate, failure rate with
its 95% interval, latency percentiles, exceptions, dependency failures), what mirrored traffic
answered differently, and the verdict: is the candidate significantly worse than the baseline?"""

import pandas as pd
import streamlit as st

from dashboard import charts, collector_api, escape, health, selection
from dashboard.selection import Selection

COLUMNS = {"deployment": "deployment", "state": "state", "traffic_configured": "traffic %",
           "traffic_observed": "observed share", "requests": "requests", "request_rate": "req/s",
           "failure_rate": "failure rate", "failure_ci": "95% CI", "p50_ms": "p50 ms", "p95_ms": "p95 ms",
           "p99_ms": "p99 ms", "exceptions_text": "exceptions", "dependency_failures": "dependency failures"}


def _table(deployments: list[dict]) -> pd.DataFrame:
    rows = []
    for found in deployments:
        low, high = found["failure_rate_ci95"]
        rows.append({**found, "failure_rate": f"{found['failure_rate']:.1%}", "failure_ci": f"{low:.1%} – {high:.1%}",
                     "traffic_observed": f"{found['traffic_observed']:.1%}", "request_rate": f"{found['request_rate']:.1f}",
                     **{k: "–" if found[k] is None else f"{found[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms")},
                     "exceptions_text": ", ".join(f"{kind}: {n}" for kind, n in found["exceptions"].items()) or "none",
                     "dependency_failures": f"{found['dependencies']['failed']} of {found['dependencies']['total']}"})
    return pd.DataFrame(rows, columns=list(COLUMNS)).rename(columns=COLUMNS)


def _verdicts(answer: dict) -> None:
    if not answer["verdicts"]:
        st.info(f"Verdict: {answer['verdict']}")
    for verdict in answer["verdicts"]:
        (st.error if verdict["worse"] else st.success)(f"Verdict: {verdict['text']}")
    st.caption("Errors: one-sided two-proportion z-test; latency: one-sided Mann-Whitney U test; "
               "both at α = 0.05, candidate against the deployment with the largest traffic share.")


def _mirror(answer: dict) -> None:
    if not answer["mirror"]:
        return
    st.subheader("Mirrored traffic")
    for found in answer["mirror"]:
        st.markdown(f"**{escape.markdown(found['mirror'])}** answered differently from "
                    f"**{escape.markdown(found['primary'])}** in {found['differing']} of {found['compared']} "
                    f"mirrored requests ({found['differing_share']:.1%}).")
        if found["examples"]:
            st.table(pd.DataFrame(found["examples"]))


def _failed_deployments(endpoint: dict) -> None:
    for found in endpoint["deployments"]:
        if found["state"] == "Failed":
            st.warning(f"Deployment {found['name']} failed: {found['error_code']}: {found['message']} "
                       f"(restarts: {found['restarts']})")
            st.code(found["logs"] or "", language="text")


def _traffic_chart(chosen: Selection, service: str) -> None:
    """Requests served per deployment over the range: a shift of traffic shows as it happened."""
    kql = ('requests | where tostring(customDimensions.Component) == "router" | summarize requests = count() '
           f'by timestamp = bin(timestamp, {chosen.range.bucket}), deployment = tostring(customDimensions.Deployment)')
    frame = collector_api.query(chosen.link, kql, chosen.range.timespan, service).frame
    if not frame.empty:
        st.plotly_chart(charts.stacked(frame, "timestamp", "requests", "deployment", "Requests by deployment",
                                       "requests", health.buckets(chosen.range)), key="rollout_traffic")


def render() -> None:
    chosen = selection.current()
    st.title("Rollout")
    service = selection.require_service(chosen)
    endpoint = collector_api.endpoint(chosen.link, service)
    if endpoint is None:
        st.info(f"**{escape.markdown(service)}** is not an online endpoint.")
        st.markdown("Create one with `insights endpoint create my-endpoint`, add deployments with "
                    "`insights endpoint deployment create my-endpoint --deployment blue --entry_script score.py` "
                    "and split traffic with `insights endpoint update my-endpoint --traffic blue=90,green=10`.")
        return
    shares = ", ".join(f"{name}={share}%" for name, share in endpoint["traffic"].items()) or "none"
    mirrored = ", ".join(f"{name}={share}%" for name, share in endpoint["mirror"].items()) or "none"
    st.caption(f"**{escape.markdown(service)}** · traffic {escape.markdown(shares)} · mirror {escape.markdown(mirrored)} · "
               f"{chosen.range.label.lower()}")
    answer = collector_api.rollout(chosen.link, service, chosen.range.timespan)
    _verdicts(answer)
    st.table(_table(answer["deployments"]).set_index("deployment"))  # a table (not a canvas grid): text to copy
    _traffic_chart(chosen, service)
    _mirror(answer)
    _failed_deployments(endpoint)


if __name__ == "__main__":  # run as a page by app.py's st.navigation
    render()
