"""The `insights` command line: one entry point for the collector, services, import and queries."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Optional

import orjson
import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from alerts.cli import action_group_app, alert_app, availability_app
from collector.client import DEFAULT_DATA_DIR, Alerts, InsightsError, Workspace
from dashboard.launcher import dashboard_command
from endpoints.cli import endpoint_app
from exporters.cli import export_app
from insights.demo import demo_command
from insights.doctor import doctor_command
from insights.model_cli import model_app
from insights.store_cli import store_app
from live.cli import live_command, map_command
from monitoring.cli import monitor_app, update_collection
from scoring.batch.cli import batch_app
from scoring.cli import logs_command, score_command

app = typer.Typer(help="Endpoint Insights: observability for deployed ML scoring endpoints.", no_args_is_help=True,
                  rich_markup_mode=None)  # click's help: option names whole at 80 columns, no <bool> on flags
service_app = typer.Typer(help="Create and manage services (keys, enable_app_insights).", no_args_is_help=True)
app.add_typer(service_app, name="service")
app.add_typer(batch_app, name="batch")
app.add_typer(export_app, name="export")
app.add_typer(model_app, name="model")
app.add_typer(endpoint_app, name="endpoint")
app.add_typer(monitor_app, name="monitor")
app.add_typer(alert_app, name="alert")
app.add_typer(action_group_app, name="action-group")
app.add_typer(availability_app, name="availability")
app.add_typer(store_app, name="store")
app.command("score")(score_command)
app.command("logs")(logs_command)
app.command("dashboard")(dashboard_command)
app.command("demo")(demo_command)
app.command("doctor")(doctor_command)
app.command("live")(live_command)
app.command("map")(map_command)
console = Console()
err = Console(stderr=True)


def main() -> None:
    try:
        app()
    except InsightsError as error:
        err.print(f"[red]error:[/red] {error}")
        raise SystemExit(1) from None


@app.command()
def up(
    data_dir: Path = typer.Option(Path(DEFAULT_DATA_DIR), help="Holds telemetry.duckdb, blob/ and admin.key."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Collector port."),
    dashboard_port: int = typer.Option(8501, help="Dashboard port."),
    no_dashboard: bool = typer.Option(False, "--no-dashboard", help="Run the collector without the dashboard."),
    public_url: Optional[str] = typer.Option(None, help="Ingestion endpoint put in connection strings (default: the URL clients use)."),
    tls_cert: Optional[Path] = typer.Option(None, "--tls-cert", help="Serve HTTPS only, with this certificate (PEM; or INSIGHTS_TLS_CERT)."),
    tls_key: Optional[Path] = typer.Option(None, "--tls-key", help="The certificate's private key (PEM; or INSIGHTS_TLS_KEY)."),
    store: Optional[str] = typer.Option(None, "--store", help="Telemetry in ClickHouse: clickhouse://user@host:8123/db (or INSIGHTS_STORE; password in INSIGHTS_STORE_PASSWORD). Default: the embedded DuckDB."),
) -> None:
    """Start the collector on the embedded DuckDB store, with scheduled export and the dashboard."""
    from dataclasses import replace

    from collector.settings import CollectorSettings  # the server's imports cost every other command time
    from insights.up import check_data_dir_free, check_tls, start_all

    try:
        settings = CollectorSettings.from_env(data_dir, public_url)
        if tls_cert or tls_key:
            settings = replace(settings, tls_cert=tls_cert or settings.tls_cert, tls_key=tls_key or settings.tls_key)
        check_tls(settings)
        if store:
            from collector.store.clickhouse.location import parse as parse_store

            settings = replace(settings, store=parse_store(store))
    except ValueError as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    try:
        check_data_dir_free(settings.data_dir)
        if settings.store is not None:
            from insights.store_cli import check_store

            check_store(settings.store)
    except ValueError as error:
        err.print(f"[red]error:[/red] {error}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    start_all(settings, host, port, None if no_dashboard else dashboard_port)


def _workspace() -> Workspace:
    return Workspace()


SERVICE_FIELDS = ("name", "enable_app_insights", "instrumentation_key", "connection_string", "api_key", "created_at")


def _print_service(data: dict, fields: tuple[str, ...] = SERVICE_FIELDS) -> None:
    """One `field: value` line each, never wrapped or cut (keys and connection strings are copied whole)."""
    width = max(len(key) for key in fields)
    for key in fields:
        console.print(f"[bold]{key.ljust(width)}[/bold]  {data.get(key)}", soft_wrap=True, highlight=False)


def _print_new_key(data: dict) -> None:
    """The service and its API key in clear, which the collector keeps only as a digest: the one
    time the key is shown (on a line of its own, never wrapped, to copy it whole)."""
    _print_service(data, tuple(field for field in SERVICE_FIELDS if field != "api_key"))
    console.print(f"\napi_key: {data['api_key']}", soft_wrap=True, highlight=False)
    console.print(f"This API key will not be shown again: keep it now "
                  f"(`insights service rotate-key {data['name']}` makes a new one).", highlight=False, soft_wrap=True)


@service_app.command("create")
def service_create(
    name: str,
    disable_app_insights: bool = typer.Option(False, "--disable-app-insights", help="Create it switched off."),
    recommended_alerts: bool = typer.Option(False, "--recommended-alerts", help="Add the built-in alert rules for model endpoints."),
) -> None:
    """Create a service; print its connection string and its API key (shown this once)."""
    ws = _workspace()
    service = ws.create_service(name, enable_app_insights=not disable_app_insights)
    _print_new_key(service._data)
    if recommended_alerts:
        console.print(f"alert rules: {', '.join(Alerts(ws, name).add_recommended())}", highlight=False)
    # soft_wrap: one line at any terminal width, so it can be copied or eval-ed whole
    console.print(f"\nexport APPLICATIONINSIGHTS_CONNECTION_STRING='{service.connection_string}'",
                  soft_wrap=True, highlight=False, markup=False)


@service_app.command("rotate-key")
def service_rotate_key(name: str) -> None:
    """Give a service a new API key (shown this once); the old key stops working at once. The
    instrumentation key, in connection strings, does not change."""
    data = _workspace().request("POST", f"/api/services/{name}/keys/rotate").json()
    _print_new_key(data)


@service_app.command("list")
def service_list() -> None:
    """List services and their state."""
    services = _workspace().request("GET", "/api/services").json()
    if not services:
        console.print("no services yet: [bold]insights service create NAME[/bold]")
        return
    table = Table("name", "app insights", "instrumentation key", "api key", "created")
    for column in table.columns:
        column.overflow = "fold"  # a key too wide for the terminal goes on over lines, never cut with "…"
    for s in services:
        table.add_row(s["name"], "on" if s["enable_app_insights"] else "off", s["instrumentation_key"], s["api_key"],
                      s["created_at"])
    console.print(table)


@service_app.command("show")
def service_show(name: str) -> None:
    """A service's keys (the API key masked), connection string and counters (where every item went)."""
    ws = _workspace()
    _print_service(ws.request("GET", f"/api/services/{name}").json())
    stats = ws.request("GET", f"/api/services/{name}/stats").json()
    table = Table("counter", "items", title="telemetry counters")
    for key in ("received", "accepted", "set_aside", "dropped_disabled", "rejected", "capped", "spilled", "imported"):
        table.add_row(key, f"{stats.get(key, 0):,}")
    for reason, count in stats["rejected_by_reason"].items():
        table.add_row(f"  rejected: {reason}", f"{count:,}")
    console.print(table)


@service_app.command("update")
def service_update(
    name: str,
    enable_app_insights: Optional[bool] = typer.Option(None, "--enable-app-insights/--disable-app-insights"),
    collect: Optional[str] = typer.Option(None, "--collect", help="Payload logging: request,response (or none)."),
    sample_rate: Optional[float] = typer.Option(None, "--sample-rate", help="Share of requests whose payloads are logged (0-1]."),
) -> None:
    """Switch a service's telemetry on or off (items sent while off are acknowledged, not stored),
    and its payload logging (`--collect request,response --sample-rate 0.1`)."""
    if enable_app_insights is None and collect is None and sample_rate is None:
        err.print("[red]error:[/red] nothing to update: give --enable-app-insights/--disable-app-insights, "
                  "--collect or --sample-rate", soft_wrap=True, highlight=False)
        raise typer.Exit(2)
    if collect is not None or sample_rate is not None:
        update_collection(_workspace(), name, collect, sample_rate)
    if enable_app_insights is not None:
        data = _workspace().request("PATCH", f"/api/services/{name}", json={"enable_app_insights": enable_app_insights}).json()
        _print_service(data)


@service_app.command("delete")
def service_delete(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Delete a service and its keys."""
    if not yes:
        typer.confirm(f"delete service {name!r} and its keys?", abort=True)
    _workspace().request("DELETE", f"/api/services/{name}")
    console.print(f"deleted {name}")


@app.command("import")
def import_(
    files: list[Path] = typer.Argument(..., help="Newline-delimited JSON rows (the export format)."),
    service: str = typer.Option(..., "--service", help="Service the rows belong to."),
) -> None:
    """Load exported telemetry (or test data) into a service; bad lines are reported by number."""
    from rich.progress import Progress

    for path in files:
        if not path.is_file():
            err.print(f"[red]error:[/red] cannot import {path}: {'a folder' if path.is_dir() else 'no such file'}",
                      soft_wrap=True, highlight=False)
            raise typer.Exit(1)
    ws = _workspace()
    total_errors = 0
    with Progress(console=err) as progress:
        task = progress.add_task("importing", total=sum(f.stat().st_size for f in files))
        for path in files:
            for chunk in _chunks(path):
                result = ws.request("POST", f"/api/services/{service}/import", content=chunk.data).json()
                for error in result["errors"]:
                    err.print(f"{path}:{chunk.first_line + error['line'] - 1}: {error['message']}")
                total_errors += len(result["errors"])
                progress.advance(task, len(chunk.data))
    if total_errors:
        raise typer.Exit(1)


class _Chunk:
    def __init__(self, data: bytes, first_line: int):
        self.data, self.first_line = data, first_line


def _chunks(path: Path, max_bytes: int = 8 * 2**20):
    """Whole lines, a few MB at a time, remembering where each chunk starts."""
    lines: list[bytes] = []
    size, first = 0, 1
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not lines:
                first = number
            lines.append(line)
            size += len(line)
            if size >= max_bytes:
                yield _Chunk(b"".join(lines), first)
                lines, size = [], 0
    if lines:
        yield _Chunk(b"".join(lines), first)


@app.command()
def query(
    kql: str = typer.Argument(..., help="The KQL query, e.g. 'traces | where customDimensions contains \"input\" | limit 10'."),
    service: Optional[str] = typer.Option(None, "--service", help="Only this service's rows (the admin key sees all)."),
    timespan: Optional[str] = typer.Option(None, "--timespan", help="ISO 8601 duration or interval, e.g. PT1H."),
    output: str = typer.Option("table", "--format", help="table, json or csv."),
    explain: bool = typer.Option(False, "--explain", help="Print the DuckDB SQL instead of running the query."),
) -> None:
    """Run a KQL query against the collector."""
    ws = _workspace()
    body = {"query": kql, "timespan": timespan, **({"service": service} if service else {})}
    if explain:
        console.print(Syntax(ws.request("POST", "/api/query/explain", json=body).json()["sql"], "sql", word_wrap=True))
        return
    table = ws.request("POST", "/v1/apps/default/query", json=body).json()["tables"][0]
    names = [c["name"] for c in table["columns"]]
    if output == "json":
        typer.echo(orjson.dumps([dict(zip(names, row)) for row in table["rows"]], option=orjson.OPT_INDENT_2).decode())
    elif output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(table["rows"])
    elif output == "table":
        _print_result(table)
    else:
        raise typer.BadParameter("use table, json or csv", param_hint="--format")


WIDE_RESULT_COLUMNS = 8
"""Beyond this many columns a table cannot fit a terminal: rows are shown one field per line."""


def _print_result(table: dict) -> None:
    columns, rows = table["columns"], table["rows"]
    if len(columns) > WIDE_RESULT_COLUMNS:
        for number, row in enumerate(rows, start=1):
            record = Table(show_header=False, box=None, title=f"row {number}", title_justify="left")
            for column, cell in zip(columns, row):
                if cell is not None:
                    record.add_row(f"[bold]{column['name']}[/bold]", str(cell))
            console.print(record)
    else:
        result = Table(*[f"{c['name']}\n[dim]{c['type']}[/dim]" for c in columns])
        for row in rows:
            result.add_row(*["" if cell is None else str(cell) for cell in row])
        console.print(result)
    console.print(f"[dim]{len(rows)} rows[/dim]")
