"""What a notification says: the Azure Monitor common alert schema (what receivers written for Azure
parse), and the Slack, Teams and email renderings of it.

Field names follow Azure's log search alert payload (learn.microsoft.com azure-monitor/alerts
alerts-common-schema and alerts-payload-samples): `essentials` identifies the alert and its state,
`alertContext` (conditionType LogQueryCriteria) carries the query, the measure, the operator, the
threshold, the window and the instance's dimensions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from alerts.specs import iso_duration, parse_measure

SCHEMA_ID = "azureMonitorCommonAlertSchema"
_AGGREGATION = {"rows": "Count", "count": "Count", "avg": "Average", "min": "Minimum", "max": "Maximum",
                "total": "Total"}


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None


def common_schema(service: str, rule: str, spec: dict, *, alert_id: str, condition: str, dimensions: dict,
                  value: float | None, threshold: float | None, window_end: datetime, fired_at: datetime | None,
                  resolved_at: datetime | None, dashboard_url: str) -> dict:
    """The webhook body of one state change of one alert instance."""
    aggregation, column = parse_measure(spec["measure"])
    target = f"/services/{service}"
    link = search_link(dashboard_url, service, spec["query"])
    criterion = {
        "searchQuery": spec["query"],
        "metricMeasureColumn": column,
        "targetResourceTypes": "['endpoint-insights/services']",
        "operator": spec["operator"],
        "threshold": str(threshold) if threshold is not None else None,
        "timeAggregation": _AGGREGATION[aggregation],
        "dimensions": [{"name": name, "value": str(item)} for name, item in dimensions.items()],
        "metricValue": value,
        "failingPeriods": {"numberOfEvaluationPeriods": spec["evaluation_periods"],
                           "minFailingPeriodsToAlert": spec["failing_periods"]},
        "linkToSearchResultsUI": link,
        "linkToFilteredSearchResultsUI": link,
        "linkToSearchResultsAPI": f"/v1/apps/{quote(service)}/query?query={quote(spec['query'])}",
        "linkToFilteredSearchResultsAPI": f"/v1/apps/{quote(service)}/query?query={quote(spec['query'])}",
    }
    if spec.get("dynamic"):
        criterion["alertSensitivity"] = spec["dynamic"].capitalize()
    return {
        "schemaId": SCHEMA_ID,
        "data": {
            "essentials": {
                "alertId": f"/services/{service}/alerts/{alert_id}",
                "alertRule": rule,
                "severity": f"Sev{spec['severity']}",
                "signalType": "Log",
                "monitorCondition": condition,
                "monitoringService": "Log Alerts V2",
                "alertTargetIDs": [target],
                "configurationItems": [service],
                "originAlertId": alert_id,
                "firedDateTime": iso(fired_at),
                "resolvedDateTime": iso(resolved_at) if condition == "Resolved" else None,
                "description": spec.get("description", ""),
                "essentialsVersion": "1.0",
                "alertContextVersion": "1.0",
            },
            "alertContext": {
                "properties": None,
                "conditionType": "LogQueryCriteria",
                "condition": {
                    "windowSize": iso_duration(spec["window"]),
                    "allOf": [criterion],
                    "windowStartTime": iso(window_end - timedelta(seconds=spec["window"])),
                    "windowEndTime": iso(window_end),
                },
            },
            "customProperties": None,
        },
    }


def search_link(dashboard_url: str, service: str, query: str) -> str:
    """The dashboard's Logs page with the rule's query filled in."""
    return f"{dashboard_url.rstrip('/')}/logs?service={quote(service)}&query={quote(query)}"


def headline(body: dict) -> str:
    """One line: '[Fired] Sev2 high-failures on svc (value 12 > 5, region=eu)'."""
    essentials = body["data"]["essentials"]
    criterion = body["data"]["alertContext"]["condition"]["allOf"][0]
    dims = ", ".join(f"{d['name']}={d['value']}" for d in criterion["dimensions"])
    value = criterion["metricValue"]
    shown = f"{value:g}" if isinstance(value, int | float) else "no value"
    return (f"[{essentials['monitorCondition']}] {essentials['severity']} {essentials['alertRule']} on "
            f"{essentials['configurationItems'][0]} (value {shown} {criterion['operator']} "
            f"{criterion['threshold']}{', ' + dims if dims else ''})")


def slack_body(body: dict) -> dict:
    """A Slack incoming-webhook message."""
    link = body["data"]["alertContext"]["condition"]["allOf"][0]["linkToSearchResultsUI"]
    return {"text": f"{headline(body)} <{link}|query>"}


def teams_body(body: dict) -> dict:
    """A Teams incoming-webhook MessageCard."""
    link = body["data"]["alertContext"]["condition"]["allOf"][0]["linkToSearchResultsUI"]
    return {"@type": "MessageCard", "@context": "https://schema.org/extensions", "summary": headline(body),
            "text": headline(body), "potentialAction": [{"@type": "OpenUri", "name": "Open the query",
                                                          "targets": [{"os": "default", "uri": link}]}]}


def email_text(body: dict) -> tuple[str, str]:
    """(subject, plain text body) of the notification email."""
    essentials = body["data"]["essentials"]
    condition = body["data"]["alertContext"]["condition"]
    criterion = condition["allOf"][0]
    lines = [headline(body), "",
             f"Rule:       {essentials['alertRule']} ({essentials['severity']})",
             f"Service:    {essentials['configurationItems'][0]}",
             f"Condition:  {essentials['monitorCondition']}",
             f"Fired:      {essentials['firedDateTime']}"]
    if essentials["resolvedDateTime"]:
        lines.append(f"Resolved:   {essentials['resolvedDateTime']}")
    lines += [f"Value:      {criterion['metricValue']} ({criterion['timeAggregation']}"
              f"{' of ' + criterion['metricMeasureColumn'] if criterion['metricMeasureColumn'] else ' of rows'})",
              f"Threshold:  {criterion['operator']} {criterion['threshold']}",
              f"Window:     {condition['windowStartTime']} .. {condition['windowEndTime']} ({condition['windowSize']})"]
    lines += [f"Dimension:  {d['name']} = {d['value']}" for d in criterion["dimensions"]]
    lines += ["", "Query:", criterion["searchQuery"], "", f"Open it in the dashboard: {criterion['linkToSearchResultsUI']}"]
    return headline(body), "\n".join(lines) + "\n"
