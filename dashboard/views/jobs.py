"""Jobs: the selected service's batch scoring jobs (`insights batch run --service ...`).

Each job reports its counters as customMetrics, every mini-batch attempt as a `requests` row, the
script's prints and errors as `traces` and `exceptions`, and its outgoing HTTP calls as
`dependencies`, all tagged `customDimensions.job`; this page lists the jobs by their latest counters
(a job stopped by SIGTERM shows as Canceled), then shows one job's progress, its failed attempts with
their stacks, what its script printed, and the services it called, which is where a failed or slow
job is debugged.
"""

import orjson
import pandas as pd
import streamlit as st

from dashboard import collector_api, escape, kql_text, selection
from dashboard.selection import Selection
from dashboard.views.failures import stack_text

JOBS_QUERY = ("customMetrics | where isnotempty(tostring(customDimensions.job)) "
              "| summarize arg_max(timestamp, value, customDimensions) by job=tostring(customDimensions.job), name")
COUNTERS = ["mini_batches_created", "mini_batches_processed", "mini_batches_failed", "items_succeeded", "items_failed",
            "retries"]


def job_queries(job: str) -> dict[str, str]:
    where = f"where tostring(customDimensions.job) == {kql_text.string(job)}"
    return {
        "failures": (f"requests | {where} | where success == false | project timestamp, "
                     "mini_batch=tostring(customDimensions.mini_batch), attempt=tostring(customDimensions.attempt), "
                     "outcome=tostring(customDimensions.outcome), final=tostring(customDimensions.final), "
                     "duration, inputs=tostring(customDimensions.inputs), operation_ParentId=id "
                     "| order by timestamp desc | take 100"),
        "exceptions": (f"exceptions | {where} | project timestamp, type, message, details, operation_ParentId "
                       "| order by timestamp desc | take 20"),
        "logs": (f"traces | {where} | project timestamp, message, severityLevel, "
                 "Contents=tostring(customDimensions.Contents), process=cloud_RoleInstance "
                 "| order by timestamp desc | take 200"),
        "calls": (f"dependencies | {where} | summarize calls=count(), failed=countif(success == false), "
                  "avg_ms=avg(duration), p95_ms=percentile(duration, 95) by target, name "
                  "| order by calls desc | take 50"),
    }


def jobs_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per job: its status and latest counters, newest job first."""
    if metrics.empty:
        return pd.DataFrame(columns=["job", "status", *COUNTERS, "updated"])
    counters = metrics.pivot_table(index="job", columns="name", values="value", aggfunc="last").reindex(columns=COUNTERS)
    latest = metrics.sort_values("timestamp").groupby("job").tail(1).set_index("job")
    table = counters.fillna(0).astype(int)
    table.insert(0, "status", latest["customDimensions"].map(lambda d: _decoded(d).get("status", "")))
    table["updated"] = latest["timestamp"]
    return table.sort_values("updated", ascending=False).reset_index()


def _decoded(value) -> dict:
    if isinstance(value, str):
        return orjson.loads(value)
    return value if isinstance(value, dict) else {}


def _progress(job: pd.Series) -> None:
    created, processed = int(job["mini_batches_created"]), int(job["mini_batches_processed"])
    st.progress(processed / created if created else 0.0,
                text=f"{processed} of {created} mini-batches processed · {job['mini_batches_failed']} failed · "
                     f"{job['retries']} retried")
    tiles = st.columns(4)
    tiles[0].metric("Status", escape.markdown(job["status"] or "–"))
    tiles[1].metric("Items succeeded", f"{job['items_succeeded']:,}")
    tiles[2].metric("Items failed", f"{job['items_failed']:,}")
    tiles[3].metric("Retries", f"{job['retries']:,}")


def _failures(results: dict) -> None:
    st.subheader("Failed attempts")
    failures = results["failures"].frame
    if failures.empty:
        st.success("No mini-batch attempt failed.")
    else:
        st.dataframe(failures.drop(columns=["operation_ParentId"]), hide_index=True)
    exceptions = results["exceptions"].frame
    for _, item in exceptions.iterrows():
        with st.expander(escape.markdown(f"{item['timestamp']} · {item['type']}: {str(item['message'])[:120]}")):
            st.code(stack_text(item["details"]) or f"{item['type']}: {item['message']}", language="text")


def _logs(results: dict) -> None:
    st.subheader("Script output")
    logs = results["logs"].frame
    if logs.empty:
        st.info("The script printed and logged nothing (or App Insights is off for this service).")
    else:
        st.dataframe(logs, hide_index=True)


def _calls(results: dict) -> None:
    st.subheader("Outgoing calls")
    calls = results["calls"].frame
    if calls.empty:
        st.caption("init() and run() made no HTTP calls (through requests, httpx or urllib).")
    else:
        st.dataframe(calls, hide_index=True)


def render() -> None:
    chosen: Selection = selection.current()
    st.title("Jobs")
    service = selection.require_service(chosen)
    st.caption(f"Batch jobs of **{escape.markdown(service)}** · {chosen.range.label.lower()}")
    table = jobs_table(collector_api.query(chosen.link, JOBS_QUERY, chosen.range.timespan, chosen.service).frame)
    if table.empty:
        st.info(f"No batch jobs from {escape.markdown(service)} in the {chosen.range.label.lower()}.")
        st.markdown(f"Run one with `insights batch run --entry_script score.py --input DIR --output DIR "
                    f"--service {service}`.")
        return
    st.dataframe(table, hide_index=True)
    name = st.selectbox("Job", table["job"].tolist(), key="job")
    job = table.set_index("job").loc[name]
    _progress(job)
    results = collector_api.query_all(chosen.link, job_queries(name), chosen.range.timespan, chosen.service)
    _failures(results)
    _logs(results)
    _calls(results)


if __name__ == "__main__":  # run as a page by app.py's st.navigation
    render()
