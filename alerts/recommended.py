"""The built-in rules for model endpoints (`insights service create --recommended-alerts`, or
`insights alert rule recommended NAME` later): ready-made, as users of peer tools ask for.

An init() crash is read from the exception the scoring wrapper records when init() fails (App
Insights on; `customDimensions.phase == "init"`): the console log stays outside KQL, which reads
App Insights tables only.
"""

from __future__ import annotations


def recommended_rules(action_groups: list[str]) -> list[dict]:
    """The rule bodies, each attached to `action_groups`."""
    common = {"action_groups": list(action_groups)}
    return [
        {"name": "failure-rate", "severity": 1, "frequency": "PT1M", "window": "PT5M",
         "description": "More than 5% of requests failed over 5 minutes.",
         "query": "requests | summarize total = count(), failed = countif(success == false) "
                  "| where total > 0 | extend failure_rate = 100.0 * failed / total",
         "measure": "max(failure_rate)", "operator": "GreaterThan", "threshold": 5, **common},
        {"name": "p95-duration", "severity": 2, "frequency": "PT5M", "window": "PT5M",
         "description": "The 95th percentile of request duration is above its learned band.",
         "query": "requests | summarize p95 = percentile(duration, 95)",
         "measure": "max(p95)", "operator": "GreaterThan", "dynamic": "medium", **common},
        {"name": "exceptions-spike", "severity": 2, "frequency": "PT5M", "window": "PT5M",
         "description": "More exceptions than the service usually has.",
         "query": "exceptions", "measure": "rows", "operator": "GreaterThan", "dynamic": "medium", **common},
        {"name": "traffic-stopped", "severity": 1, "frequency": "PT5M", "window": "PT15M",
         "description": "Requests far below what the service usually gets over 15 minutes (none, on a busy "
                        "service); a service that is usually idle never fires.",
         "query": "requests", "measure": "rows", "operator": "LessThan", "dynamic": "low", **common},
        {"name": "init-crash", "severity": 0, "frequency": "PT1M", "window": "PT5M",
         "description": "The scoring script's init() failed (the wrapper exits, as in a CrashLoopBackOff).",
         "query": "exceptions | where tostring(customDimensions.phase) == 'init'",
         "measure": "rows", "operator": "GreaterThan", "threshold": 0, **common},
        {"name": "availability", "severity": 1, "frequency": "PT5M", "window": "PT15M",
         "description": "An availability test passed less than 90% of its runs over 15 minutes.",
         "query": "availabilityResults | summarize availability = 100.0 * countif(success == true) / count() by name",
         "measure": "min(availability)", "split_by": ["name"], "operator": "LessThan", "threshold": 90, **common},
    ]
