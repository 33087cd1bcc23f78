"""A job as the collector saw it, read back through the KQL query API (never the job's files), so
`insights batch status JOB` works from any machine that can reach the collector, during or after the job.

The latest value of each progress metric is the job's state; the `requests` rows give attempts and
failures per mini-batch; the `exceptions` rows the errors, most frequent first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from collector.client import Workspace


def _string(value: str) -> str:
    """A KQL string literal holding exactly `value`."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def queries(job: str) -> dict[str, str]:
    where = f"where tostring(customDimensions.job) == {_string(job)}"
    return {
        "metrics": f"customMetrics | {where} | summarize arg_max(timestamp, value, customDimensions) by name",
        "attempts": (f"requests | {where} | summarize attempts=count(), failed_attempts=countif(success == false), "
                     "started=min(timestamp), ended=max(timestamp), avg_ms=avg(duration), p95_ms=percentile(duration, 95)"),
        "errors": (f"exceptions | {where} | summarize errors=count(), latest=max(timestamp) by type, message "
                   "| top 5 by errors"),
    }


@dataclass
class JobStatus:
    job: str
    found: bool
    status: str = "Unknown"
    result: str = ""
    output: str = ""
    updated: str | None = None
    counters: dict[str, int] = field(default_factory=dict)
    attempts: dict = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)


def read(workspace: Workspace, job: str, service: str | None = None) -> JobStatus:
    frames = {name: workspace.query(kql, service=service) for name, kql in queries(job).items()}
    metrics = frames["metrics"]
    if metrics.empty:
        return JobStatus(job, found=False)
    latest = metrics.sort_values("timestamp").iloc[-1]
    dimensions = _decoded(latest["customDimensions"])
    attempts = frames["attempts"].iloc[0].to_dict() if not frames["attempts"].empty else {}
    return JobStatus(
        job, True, status=dimensions.get("status", "Unknown"), result=dimensions.get("result", ""),
        output=dimensions.get("output", ""), updated=str(latest["timestamp"]),
        counters={row["name"]: int(row["value"]) for _, row in metrics.iterrows()},
        attempts=attempts, errors=frames["errors"].to_dict("records"),
    )


def _decoded(value) -> dict:
    if isinstance(value, str):
        return orjson.loads(value)
    return value if isinstance(value, dict) else {}
