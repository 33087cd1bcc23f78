"""The rollout comparison: each deployment of an endpoint side by side over a time range, and a
verdict on whether a candidate is worse than the baseline.

Served traffic is what the router recorded (`Component` = router: what clients saw, with the
deployment that served it); exceptions and dependency calls come from the deployments' wrappers;
mirrored traffic from the router's `Mirror comparison` events. The baseline is the deployment with
the largest configured share unless one is named. A candidate is flagged worse on errors when a one-sided two-proportion
z-test gives p < ALPHA, and on latency when a one-sided Mann-Whitney U test does; failure rates carry
a 95% Wilson interval.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime

import numpy as np
from scipy import stats

from collector.kql import run_query
from collector.kql.clickhouse.execute import query_connection
from collector.store.database import Store
from collector.store.endpoints import Endpoint

ALPHA = 0.05
Z95 = 1.959963984540054
MAX_ROWS = 200_000
EXAMPLES = 5

_SERVED = ('requests | where tostring(customDimensions.Component) == "router" '
           '| project deployment = tostring(customDimensions.Deployment), duration, success, timestamp')
_EXCEPTIONS = ('exceptions | where isnotempty(tostring(customDimensions.Deployment)) '
               '| summarize n = count() by deployment = tostring(customDimensions.Deployment), type')
_DEPENDENCIES = ('dependencies | where isnotempty(tostring(customDimensions.Deployment)) '
                 '| summarize total = count(), failed = countif(success == false) '
                 'by deployment = tostring(customDimensions.Deployment)')
_MIRROR = ('customEvents | where name == "Mirror comparison" '
           '| project timestamp, deployment = tostring(customDimensions.Deployment), '
           'primary = tostring(customDimensions.Primary), same = tostring(customDimensions.Same), '
           'input = tostring(customDimensions.Input), primary_response = tostring(customDimensions.PrimaryResponse), '
           'mirror_response = tostring(customDimensions.MirrorResponse) | order by timestamp desc')


def wilson(failures: int, total: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion."""
    if total == 0:
        return 0.0, 1.0
    p = failures / total
    denominator = 1 + Z95 ** 2 / total
    centre = (p + Z95 ** 2 / (2 * total)) / denominator
    spread = Z95 * math.sqrt(p * (1 - p) / total + Z95 ** 2 / (4 * total ** 2)) / denominator
    return max(0.0, centre - spread), min(1.0, centre + spread)


def two_proportion_p(failures_a: int, total_a: int, failures_b: int, total_b: int) -> float:
    """One-sided p-value that b fails more often than a (pooled two-proportion z-test)."""
    if not total_a or not total_b:
        return 1.0
    pooled = (failures_a + failures_b) / (total_a + total_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    if spread == 0:
        return 1.0
    z = (failures_b / total_b - failures_a / total_a) / spread
    return float(stats.norm.sf(z))


def compare(store: Store, endpoint: Endpoint, timespan: str, memory_limit: str | None = None,
            baseline: str | None = None) -> dict:
    def rows(text: str) -> list[dict]:
        with query_connection(store) as cursor:  # the ClickHouse connection on the ClickHouse store
            result = run_query(cursor, text, services=[endpoint.name], timespan=timespan, max_rows=MAX_ROWS,
                               memory_limit=memory_limit)
        names = [column["name"] if isinstance(column, dict) else column[0] for column in result.columns]
        return [dict(zip(names, row)) for row in result.rows]

    served = rows(_SERVED)
    window_s = _window_seconds(served)
    names = sorted({d.name for d in endpoint.deployments} | {r["deployment"] for r in served if r["deployment"]})
    deployments = {name: _served_stats(name, [r for r in served if r["deployment"] == name], len(served), window_s,
                                       endpoint) for name in names}
    for row in rows(_EXCEPTIONS):
        if row["deployment"] in deployments:
            deployments[row["deployment"]]["exceptions"][row["type"] or "?"] = row["n"]
    for row in rows(_DEPENDENCIES):
        if row["deployment"] in deployments:
            deployments[row["deployment"]]["dependencies"] = {"total": row["total"], "failed": row["failed"]}
    mirror = _mirror(rows(_MIRROR))
    if baseline not in deployments:  # the largest configured share; on a tie, the first by name
        baseline = max(names, key=lambda n: (endpoint.traffic.get(n, 0), [-ord(c) for c in n]), default=None)
    verdicts = [_verdict(baseline, name, served) for name in names if baseline and name != baseline
                and deployments[name]["requests"]]
    return {"endpoint": endpoint.name, "timespan": timespan, "baseline": baseline,
            "deployments": [deployments[name] for name in names], "mirror": mirror,
            "verdicts": verdicts, "verdict": " ".join(v["text"] for v in verdicts) or "not enough traffic to compare"}


def _window_seconds(served: list[dict]) -> float:
    if len(served) < 2:
        return 1.0
    times = sorted(_epoch(r["timestamp"]) for r in served)
    return max(1.0, times[-1] - times[0])


def _epoch(value) -> float:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return value.replace(tzinfo=value.tzinfo or UTC).timestamp()


def _served_stats(name: str, rows: list[dict], total: int, window_s: float, endpoint: Endpoint) -> dict:
    durations = np.array([r["duration"] for r in rows], dtype=float)
    failures = sum(1 for r in rows if not r["success"])
    low, high = wilson(failures, len(rows))
    percentiles = np.percentile(durations, [50, 95, 99]).round(3).tolist() if len(rows) else [None] * 3
    state = next((d for d in endpoint.deployments if d.name == name), None)
    return {
        "deployment": name,
        "state": state.state if state else "Deleted",
        "traffic_configured": endpoint.traffic.get(name, 0),
        "mirror_configured": endpoint.mirror.get(name, 0),
        "requests": len(rows),
        "traffic_observed": round(len(rows) / total, 4) if total else 0.0,
        "request_rate": round(len(rows) / window_s, 3),
        "failures": failures,
        "failure_rate": round(failures / len(rows), 4) if rows else 0.0,
        "failure_rate_ci95": [round(low, 4), round(high, 4)],
        "p50_ms": percentiles[0], "p95_ms": percentiles[1], "p99_ms": percentiles[2],
        "exceptions": {},
        "dependencies": {"total": 0, "failed": 0},
    }


def _verdict(baseline: str, candidate: str, served: list[dict]) -> dict:
    base = [r for r in served if r["deployment"] == baseline]
    cand = [r for r in served if r["deployment"] == candidate]
    base_failed = sum(1 for r in base if not r["success"])
    cand_failed = sum(1 for r in cand if not r["success"])
    error_p = two_proportion_p(base_failed, len(base), cand_failed, len(cand))
    latency_p = 1.0
    if len(base) and len(cand):
        latency_p = float(stats.mannwhitneyu([r["duration"] for r in cand], [r["duration"] for r in base],
                                             alternative="greater").pvalue)
    worse_errors, worse_latency = error_p < ALPHA, latency_p < ALPHA
    findings = []
    if worse_errors:
        findings.append(f"more errors ({cand_failed}/{len(cand)} vs {base_failed}/{len(base)}; "
                        f"two-proportion z-test, one-sided p={error_p:.2g})")
    if worse_latency:
        findings.append(f"slower (Mann-Whitney U, one-sided p={latency_p:.2g})")
    if findings:
        text = f"{candidate} is WORSE than {baseline}: " + " and ".join(findings) + f" at α={ALPHA}."
    else:
        text = (f"{candidate} is not significantly worse than {baseline} (errors p={error_p:.2g}, "
                f"latency p={latency_p:.2g}; α={ALPHA}).")
    return {"baseline": baseline, "candidate": candidate, "worse": worse_errors or worse_latency,
            "worse_errors": worse_errors, "worse_latency": worse_latency,
            "error_p": error_p, "latency_p": latency_p, "text": text}


def _mirror(rows: list[dict]) -> list[dict]:
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        grouped[(row["primary"], row["deployment"])].append(row)
    out = []
    for (primary, shadow), found in sorted(grouped.items()):
        differing = [r for r in found if r["same"] != "true"]
        out.append({"primary": primary, "mirror": shadow, "compared": len(found), "differing": len(differing),
                    "differing_share": round(len(differing) / len(found), 4),
                    "examples": [{"input": r["input"], "primary_response": r["primary_response"],
                                  "mirror_response": r["mirror_response"]} for r in differing[:EXAMPLES]]})
    return out
