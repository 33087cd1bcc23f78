"""`insights endpoint ...`: online endpoints with several deployments, in the shape of
`az ml online-endpoint` and `az ml online-deployment`. Everything goes through the SDK
(collector.client.OnlineEndpoint); the endpoint runs in a host process the collector starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from collector.client import DeploymentFailed, OnlineEndpoint, ScoringError, Workspace

endpoint_app = typer.Typer(help="Online endpoints: several deployments behind one scoring URI and key.",
                           no_args_is_help=True)
deployment_app = typer.Typer(help="Deployments of an endpoint.", no_args_is_help=True)
endpoint_app.add_typer(deployment_app, name="deployment")
console = Console(soft_wrap=True, highlight=False)


def _endpoint(name: str) -> OnlineEndpoint:
    return OnlineEndpoint(Workspace(), name)


def _print_json(data) -> None:
    console.print_json(json.dumps(data))


@endpoint_app.command("create")
def create(
    name: str = typer.Argument(..., help="Endpoint name (also its service's)."),
    port: Optional[int] = typer.Option(None, "--port", help="The router's port (default: a free one)."),
    rate_limit: int = typer.Option(100, "--rate-limit", help="Requests per second before 429."),
    request_timeout_ms: int = typer.Option(5000, "--request-timeout-ms", help="A deployment answering later gets 408."),
    disable_app_insights: bool = typer.Option(False, "--disable-app-insights", help="Create its service switched off."),
) -> None:
    """Create an endpoint: its scoring URI and keys, and a service of the same name for its telemetry."""
    endpoint = OnlineEndpoint.create(Workspace(), name, enable_app_insights=not disable_app_insights,
                                     rate_limit=rate_limit, request_timeout_ms=request_timeout_ms, port=port)
    created = endpoint.created
    for field in ("name", "scoring_uri", "primary_key", "secondary_key", "rate_limit", "request_timeout_ms"):
        console.print(f"{field}: {created[field]}")
    console.print(f"service api_key (shown once, reads the endpoint's telemetry): {created['service_api_key']}")


@deployment_app.command("create")
def deployment_create(
    name: str = typer.Argument(..., help="The endpoint."),
    deployment: str = typer.Option(..., "--deployment", "--name", help="The deployment's name, e.g. blue."),
    entry_script: Path = typer.Option(..., "--entry_script", "--entry-script", help="The score.py (init/run)."),
    model_dir: Optional[Path] = typer.Option(None, "--model_dir", "--model-dir", help="Sets AZUREML_MODEL_DIR."),
    instance_count: int = typer.Option(1, "--instance_count", "--instance-count", help="Worker processes."),
    max_concurrent: int = typer.Option(1, "--max_concurrent_requests_per_instance",
                                       "--max-concurrent-requests-per-instance", help="run() calls at once per instance."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Return at once; `endpoint show` tells the state."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds to wait for it to succeed."),
) -> None:
    """Create (or re-create) a deployment; it takes no traffic until `endpoint update --traffic`."""
    try:
        found = _endpoint(name).create_deployment(deployment, entry_script, model_dir, instance_count, max_concurrent,
                                                  wait=not no_wait, timeout=timeout)
    except DeploymentFailed as error:
        console.print(f"[red]{error}[/red]", markup=True)
        raise typer.Exit(1) from None
    console.print(f"deployment {deployment}: {found['state']}")


@endpoint_app.command("update")
def update(
    name: str,
    traffic: Optional[str] = typer.Option(None, "--traffic", help="'blue=90,green=10' or 'blue=90 green=10'."),
    mirror: Optional[str] = typer.Option(None, "--mirror", "--mirror-traffic", help="'green=20': copies, never answered."),
    rate_limit: Optional[int] = typer.Option(None, "--rate-limit", help="Requests per second before 429."),
    request_timeout_ms: Optional[int] = typer.Option(None, "--request-timeout-ms"),
) -> None:
    """Change the traffic split, the mirror or the limits; in force when the command returns."""
    data = _endpoint(name).update(traffic, mirror, rate_limit, request_timeout_ms)
    console.print(f"traffic: {data['traffic']}  mirror: {data['mirror']}  rate_limit: {data['rate_limit']}/s  "
                  f"request_timeout_ms: {data['request_timeout_ms']}")


@endpoint_app.command("invoke")
def invoke(
    name: str,
    request_file: Path = typer.Option(..., "--request-file", "--request_file", help="The JSON body to send."),
    deployment: Optional[str] = typer.Option(None, "--deployment", "--deployment-name", help="Bypass the split."),
) -> None:
    """Score through the endpoint's URI with its key."""
    try:
        answer = _endpoint(name).invoke(request_file=request_file, deployment=deployment)
    except ScoringError as error:
        console.print(f"[red]{error}[/red]", markup=True)
        raise typer.Exit(1) from None
    console.print(json.dumps(answer) if not isinstance(answer, str) else answer, markup=False)


@endpoint_app.command("show")
def show(name: str, as_json: bool = typer.Option(False, "--json", help="The whole definition as JSON.")) -> None:
    """The endpoint, its split and each deployment's state (with the last log lines of a failed one)."""
    data = _endpoint(name).show()
    if as_json:
        _print_json(data)
        return
    console.print(f"{data['name']}  {data['scoring_uri']}  traffic {data['traffic']}  mirror {data['mirror']}  "
                  f"rate limit {data['rate_limit']}/s  timeout {data['request_timeout_ms']} ms")
    table = Table("deployment", "state", "error", "restarts", "instances", "entry script")
    for found in data["deployments"]:
        table.add_row(found["name"], found["state"], found["error_code"] or "", str(found["restarts"]),
                      str(found["instance_count"]), found["entry_script"])
    console.print(table)
    for found in data["deployments"]:
        if found["state"] == "Failed":
            console.print(f"\n{found['name']}: {found['error_code']}: {found['message']}\n{found['logs']}", markup=False)


@endpoint_app.command("list")
def list_endpoints() -> None:
    for found in OnlineEndpoint.list(Workspace()):
        console.print(f"{found['name']}  {found['scoring_uri']}  traffic {found['traffic']}")


@endpoint_app.command("get-logs")
def get_logs(name: str, deployment: str = typer.Option(..., "--deployment", "--name"),
             lines: int = typer.Option(100, "--lines", "-n")) -> None:
    """A deployment's console output (its wrapper's), also after a failure."""
    console.print(_endpoint(name).get_logs(deployment, lines), markup=False)


@endpoint_app.command("get-credentials")
def get_credentials(name: str) -> None:
    _print_json(_endpoint(name).get_credentials())


@endpoint_app.command("regenerate-keys")
def regenerate_keys(name: str, key_type: str = typer.Option("primary", "--key-type", help="primary or secondary.")) -> None:
    """A new primary (or secondary) key; the old one stops working when the command returns."""
    _print_json(_endpoint(name).regenerate_keys(key_type))


@endpoint_app.command("rollout")
def rollout(name: str, timespan: str = typer.Option("PT1H", "--timespan")) -> None:
    """Each deployment side by side, and whether a candidate is significantly worse."""
    data = _endpoint(name).rollout(timespan)
    table = Table("deployment", "traffic", "requests", "req/s", "failure rate (95% CI)", "p50 ms", "p95 ms", "p99 ms")
    for found in data["deployments"]:
        low, high = found["failure_rate_ci95"]
        table.add_row(found["deployment"], f"{found['traffic_configured']}%", str(found["requests"]),
                      str(found["request_rate"]), f"{found['failure_rate']:.1%} ({low:.1%}-{high:.1%})",
                      str(found["p50_ms"]), str(found["p95_ms"]), str(found["p99_ms"]))
    console.print(table)
    console.print(data["verdict"])


@endpoint_app.command("delete")
def delete(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Stop its deployments and router, and delete it and its service."""
    if not yes:
        typer.confirm(f"Delete endpoint {name} and its deployments?", abort=True)
    _endpoint(name).delete()
    console.print(f"deleted {name}")
