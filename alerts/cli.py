"""`insights alert ...`, `insights action-group ...`, `insights availability ...`: alerting from the
command line, over the collector's HTTP API (through the SDK's Alerts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from collector.client import Alerts, Workspace

alert_app = typer.Typer(help="Alert rules (KQL on a schedule) and the alerts they fired.", no_args_is_help=True)
rule_app = typer.Typer(help="Log alert rules of a service.", no_args_is_help=True)
alert_app.add_typer(rule_app, name="rule")
action_group_app = typer.Typer(help="Action groups: the webhooks and emails rules notify.", no_args_is_help=True)
availability_app = typer.Typer(help="Availability tests: the collector probes a URL on a schedule.", no_args_is_help=True)
console = Console(soft_wrap=True)

SERVICE = typer.Option(..., "--service", "-s", help="The service the rule, group or test belongs to.")


def _alerts(service: str) -> Alerts:
    return Alerts(Workspace(), service)


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def _table(rows: list[dict], columns: list[str], title: str) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[("" if row.get(c) is None else str(row.get(c))) for c in columns])
    console.print(table)


def _rule_fields(frequency, window, measure, split_by, operator, threshold, dynamic, failing_periods,
                 evaluation_periods, severity, action_group, resolve_after, mute_actions_for, enabled, description) -> dict:
    fields = {"frequency": frequency, "window": window, "measure": measure, "operator": operator, "threshold": threshold,
              "dynamic": dynamic, "failing_periods": failing_periods, "evaluation_periods": evaluation_periods,
              "severity": severity, "resolve_after": resolve_after, "mute_actions_for": mute_actions_for,
              "enabled": enabled, "description": description,
              "split_by": [d.strip() for d in split_by.split(",") if d.strip()] if split_by is not None else None,
              "action_groups": action_group or None}
    return {key: value for key, value in fields.items() if value is not None}


@rule_app.command("create")
def rule_create(
    name: str,
    service: str = SERVICE,
    query: str = typer.Option(..., "--query", "-q", help="KQL, run in the service's scope over each window."),
    frequency: Optional[str] = typer.Option(None, help="How often: PT1M .. PT24H, 300, 5m (default PT5M)."),
    window: Optional[str] = typer.Option(None, help="Lookback of each evaluation (default: the frequency)."),
    measure: Optional[str] = typer.Option(None, help="rows (default), or avg|min|max|total|count(column)."),
    split_by: Optional[str] = typer.Option(None, help="Comma-separated dimension columns (at most 5)."),
    operator: Optional[str] = typer.Option(None, help="GreaterThan (default), LessThan, ..., or > >= < <= == !=."),
    threshold: Optional[float] = typer.Option(None, help="The fixed threshold."),
    dynamic: Optional[str] = typer.Option(None, help="Learn the threshold instead: low, medium or high sensitivity."),
    failing_periods: Optional[int] = typer.Option(None, help="Failing evaluations needed to fire (default 1)..."),
    evaluation_periods: Optional[int] = typer.Option(None, help="...out of the last this many (default 1)."),
    severity: Optional[str] = typer.Option(None, help="Sev0 (critical) .. Sev4 (verbose); default Sev3."),
    action_group: Optional[list[str]] = typer.Option(None, "--action-group", "-g", help="Notify this action group (repeatable)."),
    resolve_after: Optional[str] = typer.Option(None, help="Clear this long before an alert resolves (default 0)."),
    mute_actions_for: Optional[str] = typer.Option(None, help="No notifications this long after the rule fires."),
    enabled: Optional[bool] = typer.Option(None, "--enabled/--disabled", help="Evaluate it (default) or not."),
    description: Optional[str] = typer.Option(None, help="What the rule watches, for whoever gets the alert."),
) -> None:
    """Create a log alert rule; an invalid query is refused with its line and column."""
    fields = _rule_fields(frequency, window, measure, split_by, operator, threshold, dynamic, failing_periods,
                          evaluation_periods, severity, action_group, resolve_after, mute_actions_for, enabled, description)
    rule = _alerts(service).create_rule(name, query, **fields)
    console.print(f"rule [bold]{rule['name']}[/bold] created on {service}: every {rule['frequency']} s over "
                  f"{rule['window']} s, {rule['measure']} {rule['operator']} {rule['threshold'] if rule['dynamic'] is None else 'a learned band (' + rule['dynamic'] + ')'}",
                  highlight=False)


@rule_app.command("update")
def rule_update(
    name: str,
    service: str = SERVICE,
    query: Optional[str] = typer.Option(None, "--query", "-q", help="New KQL."),
    frequency: Optional[str] = typer.Option(None, help="How often."),
    window: Optional[str] = typer.Option(None, help="Lookback of each evaluation."),
    measure: Optional[str] = typer.Option(None, help="rows, or avg|min|max|total|count(column)."),
    split_by: Optional[str] = typer.Option(None, help="Comma-separated dimension columns ('' for none)."),
    operator: Optional[str] = typer.Option(None, help="GreaterThan, LessThan, ..."),
    threshold: Optional[float] = typer.Option(None, help="The fixed threshold."),
    dynamic: Optional[str] = typer.Option(None, help="low, medium or high."),
    failing_periods: Optional[int] = typer.Option(None, help="Failing evaluations needed to fire..."),
    evaluation_periods: Optional[int] = typer.Option(None, help="...out of the last this many."),
    severity: Optional[str] = typer.Option(None, help="Sev0 .. Sev4."),
    action_group: Optional[list[str]] = typer.Option(None, "--action-group", "-g", help="Notify these action groups (replaces the list)."),
    resolve_after: Optional[str] = typer.Option(None, help="Clear this long before an alert resolves."),
    mute_actions_for: Optional[str] = typer.Option(None, help="No notifications this long after the rule fires."),
    enabled: Optional[bool] = typer.Option(None, "--enabled/--disabled", help="Evaluate it or not."),
    description: Optional[str] = typer.Option(None, help="What the rule watches."),
) -> None:
    """Change a rule; options not given keep their value (a new query or condition starts it afresh)."""
    fields = _rule_fields(frequency, window, measure, split_by, operator, threshold, dynamic, failing_periods,
                          evaluation_periods, severity, action_group, resolve_after, mute_actions_for, enabled, description)
    if query is not None:
        fields["query"] = query
    _print_json(_alerts(service).update_rule(name, **fields))


@rule_app.command("list")
def rule_list(service: str = SERVICE) -> None:
    """The service's rules, with their last evaluation and error."""
    rules = _alerts(service).rules()
    for rule in rules:
        rule["condition"] = f"{rule['measure']} {rule['operator']} {rule['threshold'] if rule['dynamic'] is None else rule['dynamic']}"
        rule["severity"] = f"Sev{rule['severity']}"
    _table(rules, ["name", "severity", "enabled", "frequency", "condition", "watermark", "last_error"], f"alert rules of {service}")


@rule_app.command("show")
def rule_show(name: str, service: str = SERVICE) -> None:
    """A rule as stored (durations in seconds), with its watermark and last error."""
    _print_json(_alerts(service).rule(name))


@rule_app.command("delete")
def rule_delete(name: str, service: str = SERVICE) -> None:
    _alerts(service).delete_rule(name)
    console.print(f"rule {name} deleted", highlight=False)


@rule_app.command("test")
def rule_test(name: str, service: str = SERVICE) -> None:
    """The dry run: what the rule would fire right now, and on which series (nothing is sent)."""
    result = _alerts(service).test_rule(name)
    rows = [{"series": json.dumps(s["dimensions"]) if s["dimensions"] else "(all)", "value": s["value"],
             "threshold": s["threshold"], "fails": "FIRE" if s["failing"] else "ok"} for s in result["series"]]
    _table(rows, ["series", "value", "threshold", "fails"], f"{name} at {result['window_end']}")
    console.print(f"{len(result['would_fire'])} series would fire", highlight=False)


@rule_app.command("mute")
def rule_mute(
    name: str,
    service: str = SERVICE,
    duration: Optional[str] = typer.Option(None, "--for", help="How long: PT1H, 3600, 1h."),
    unmute: bool = typer.Option(False, "--unmute", help="Notify again now."),
) -> None:
    """Hold a rule's notifications for a while (they are logged as muted)."""
    if not unmute and duration is None:
        raise typer.BadParameter("give --for DURATION, or --unmute")
    rule = _alerts(service).mute_rule(name, None if unmute else duration)
    console.print(f"rule {name} muted until {rule['muted_until']}" if rule["muted_until"] else f"rule {name} unmuted",
                  highlight=False)


@rule_app.command("recommended")
def rule_recommended(
    service: str = SERVICE,
    action_group: Optional[list[str]] = typer.Option(None, "--action-group", "-g", help="Attach this action group (repeatable)."),
) -> None:
    """Add the built-in rules for model endpoints (failure rate, p95 duration, exceptions, traffic,
    init() crash, availability) that the service lacks."""
    added = _alerts(service).add_recommended(action_group or [])
    console.print(f"added: {', '.join(added) or 'nothing (the service has them all)'}", highlight=False)


@alert_app.command("list")
def alert_list(
    service: Optional[str] = typer.Option(None, "--service", "-s", help="One service (default: every one the key sees)."),
    state: Optional[str] = typer.Option(None, help="Fired or Resolved."),
) -> None:
    """Alert instances: which rule, which series, fired and resolved when."""
    if service:
        rows = _alerts(service).alerts(state)
    else:
        rows = Workspace().request("GET", "/api/alerts", params={"state": state} if state else None).json()
    for row in rows:
        row["series"] = json.dumps(row["dimensions"]) if row["dimensions"] else ""
    _table([r for r in rows if r["fired_at"]], ["service", "rule", "series", "state", "fired_at", "resolved_at", "value"], "alerts")


@alert_app.command("deliveries")
def alert_deliveries(service: str = SERVICE, rule: Optional[str] = typer.Option(None, help="One rule.")) -> None:
    """The delivery log: each notification, its status, attempts and last error."""
    rows = _alerts(service).deliveries(rule)
    _table(rows, ["rule", "condition", "receiver", "status", "attempts", "last_error", "created_at"], f"deliveries of {service}")


@action_group_app.command("create")
def group_create(
    name: str,
    service: str = SERVICE,
    webhook: Optional[list[str]] = typer.Option(None, "--webhook", help="A webhook URL (repeatable)."),
    email: Optional[list[str]] = typer.Option(None, "--email", help="An email address (repeatable; SMTP from INSIGHTS_SMTP_*)."),
    secret: Optional[str] = typer.Option(None, help="Sign webhook bodies: X-Insights-Signature: sha256=<HMAC>."),
    header: Optional[list[str]] = typer.Option(None, "--header", help="NAME=VALUE added to webhook requests (repeatable)."),
    body_format: str = typer.Option("azure", "--format", help="azure (common alert schema), slack or teams."),
) -> None:
    """Create an action group of webhooks and emails."""
    headers = dict(h.split("=", 1) for h in header or [] if "=" in h)
    hooks = [{"url": url, "headers": headers, "secret": secret, "format": body_format} for url in webhook or []]
    group = _alerts(service).create_action_group(name, webhooks=hooks, emails=email or [])
    console.print(f"action group {group['name']}: {len(group['webhooks'])} webhook(s), {len(group['emails'])} email(s)",
                  highlight=False)


@action_group_app.command("list")
def group_list(service: str = SERVICE) -> None:
    groups = _alerts(service).action_groups()
    rows = [{"name": g["name"], "webhooks": " ".join(h["url"] for h in g["webhooks"]), "emails": " ".join(g["emails"])}
            for g in groups]
    _table(rows, ["name", "webhooks", "emails"], f"action groups of {service}")


@action_group_app.command("delete")
def group_delete(name: str, service: str = SERVICE) -> None:
    _alerts(service).delete_action_group(name)
    console.print(f"action group {name} deleted", highlight=False)


@availability_app.command("create")
def availability_create(
    name: str,
    service: str = SERVICE,
    url: Optional[str] = typer.Option(None, help="The URL to probe."),
    from_score: Optional[str] = typer.Option(None, "--from-score", help="A running wrapper's scoring URI: POST a sample to it."),
    sample: Optional[Path] = typer.Option(None, help="JSON input to POST (default with --from-score: the wrapper's /swagger.json example)."),
    method: Optional[str] = typer.Option(None, help="GET (default with --url), POST, PUT or HEAD."),
    expected_status: int = typer.Option(200, help="The status a passing run answers."),
    content_match: Optional[str] = typer.Option(None, help="Text the answer must contain."),
    timeout: str = typer.Option("PT30S", help="A run fails after this long."),
    frequency: str = typer.Option("PT5M", help="How often it runs."),
) -> None:
    """Create an availability test; every run lands in availabilityResults."""
    if (url is None) == (from_score is None):
        raise typer.BadParameter("give --url URL or --from-score SCORING_URI")
    body = json.loads(sample.read_text()) if sample else None
    fields = {"expected_status": expected_status, "content_match": content_match, "timeout": timeout, "frequency": frequency}
    alerts = _alerts(service)
    if from_score:
        test = alerts.create_availability_from_score(name, from_score, body, **fields)
    else:
        test = alerts.create_availability_test(name, str(url), method=method or ("POST" if body is not None else "GET"),
                                               body=body, **fields)
    console.print(f"availability test {test['name']}: {test['method']} {test['url']} every {test['frequency']} s, "
                  f"expects {test['expected_status']}", highlight=False)


@availability_app.command("list")
def availability_list(service: str = SERVICE) -> None:
    _table(_alerts(service).availability_tests(), ["name", "method", "url", "frequency", "expected_status", "last_run"],
           f"availability tests of {service}")


@availability_app.command("run")
def availability_run(name: str, service: str = SERVICE) -> None:
    """Run a test once now (recorded like a scheduled run)."""
    run = _alerts(service).run_availability_test(name)
    console.print(f"{'passed' if run['success'] else 'FAILED'}: {run['message']} in {run['duration']:.0f} ms", highlight=False)
    if not run["success"]:
        raise typer.Exit(1)


@availability_app.command("delete")
def availability_delete(name: str, service: str = SERVICE) -> None:
    _alerts(service).delete_availability_test(name)
    console.print(f"availability test {name} deleted", highlight=False)
