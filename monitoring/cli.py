"""`insights monitor create|list|show|run|delete` and `insights monitor reference upload|list`:
model monitors from the command line, over the collector's HTTP API (collector.client)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from collector.client import ModelMonitor, Workspace, set_payload_logging, upload_reference

monitor_app = typer.Typer(help="Model monitors: data drift, prediction drift, data quality.", no_args_is_help=True)
reference_app = typer.Typer(help="Reference data for monitors (a training file, frozen as sketches).", no_args_is_help=True)
monitor_app.add_typer(reference_app, name="reference")
console = Console()
err = Console(stderr=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def window_seconds(text: str) -> int:
    """'3600', '15m', '1h', '7d' -> seconds."""
    text = text.strip().lower()
    try:
        if text[-1:] in _UNITS:
            return int(float(text[:-1]) * _UNITS[text[-1]])
        return int(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: seconds, or a number with s, m, h or d") from None


def _listed(text: Optional[str]) -> Optional[list[str]]:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _thresholds(pairs: list[str]) -> dict[str, float]:
    out = {}
    for pair in pairs:
        metric, sep, value = pair.partition("=")
        try:
            out[metric.strip()] = float(value)
        except ValueError:
            raise typer.BadParameter(f"--threshold {pair!r}: expected METRIC=NUMBER") from None
        if not sep:
            raise typer.BadParameter(f"--threshold {pair!r}: expected METRIC=NUMBER")
    return out


@monitor_app.command("create")
def create(
    name: str = typer.Argument(..., help="Monitor name."),
    service: str = typer.Option(..., "--service", help="The service whose collected data is watched."),
    collection: str = typer.Option("model_inputs", help="Collection watched (model_outputs: prediction drift)."),
    features: Optional[str] = typer.Option(None, help="Comma-separated features (default: all the reference has)."),
    categorical: Optional[str] = typer.Option(None, help="Comma-separated features to treat as categorical."),
    reference: Optional[str] = typer.Option(None, help="An uploaded reference (default: the 2 windows before)."),
    window: str = typer.Option("1d", help="Production window and schedule: 3600, 15m, 1h, 1d."),
    signals: Optional[str] = typer.Option(None, help="data_drift,prediction_drift,data_quality (default by collection)."),
    threshold: list[str] = typer.Option([], "--threshold", help="METRIC=VALUE, repeatable (e.g. psi=0.25)."),
) -> None:
    """Create (or replace) a monitor; it runs once per window, and on demand with `run`."""
    spec = {"collection": collection, "features": _listed(features), "categorical": _listed(categorical) or [],
            "reference": reference, "window_seconds": window_seconds(window), "signals": _listed(signals),
            "thresholds": _thresholds(threshold)}
    monitor = ModelMonitor.create(Workspace(), service, name, **spec)
    console.print(f"monitor {name} on {service}/{monitor.definition['collection']}, every {spec['window_seconds']} s",
                  soft_wrap=True)


@monitor_app.command("list")
def list_(service: str = typer.Option(..., "--service")) -> None:
    """A service's monitors."""
    table = Table("name", "collection", "reference", "window (s)", "last window end")
    for monitor in ModelMonitor.list(Workspace(), service):
        data = monitor.definition
        table.add_row(monitor.name, data["collection"], data["reference"] or "(2 windows before)",
                      str(data["window_seconds"]), data["last_window_end"] or "-")
    console.print(table)


@monitor_app.command("show")
def show(name: str = typer.Argument(...), service: str = typer.Option(..., "--service")) -> None:
    """A monitor's definition and its latest results (drifted features first)."""
    monitor = ModelMonitor(Workspace(), service, name)
    console.print_json(json.dumps(monitor.definition))
    results = monitor.results()
    if results:
        _print_results(results, latest_only=True)


@monitor_app.command("run")
def run(
    name: str = typer.Argument(...),
    service: str = typer.Option(..., "--service"),
    output: str = typer.Option("table", "--output", "-o", help="table or json."),
) -> None:
    """Run a monitor now over the window that ends now."""
    result = ModelMonitor(Workspace(), service, name).run()
    if output == "json":
        console.print_json(json.dumps(result))
        return
    console.print(f"{result['rows']} rows from {result['window_start']} to {result['window_end']}; "
                  f"drifted: {', '.join(result['drifted_features']) or 'none'}"
                  f"{' (dataset drift)' if result['dataset_drift'] else ''}", soft_wrap=True)
    _print_results(result["results"], latest_only=False)


def _print_results(results: list[dict], latest_only: bool) -> None:
    if latest_only:
        newest = results[0]["windowEnd"]
        results = [r for r in results if r["windowEnd"] == newest]
    table = Table("signal", "feature", "metric", "value", "threshold", "drifted")
    for row in sorted(results, key=lambda r: (not r["drifted"], r["signal"], r["feature"], r["metric"])):
        table.add_row(row["signal"], row["feature"], row["metric"], f"{row['value']:.4g}", f"{row['threshold']:g}",
                      "[red]yes[/red]" if row["drifted"] else "no")
    console.print(table)


@monitor_app.command("delete")
def delete(name: str = typer.Argument(...), service: str = typer.Option(..., "--service")) -> None:
    """Delete a monitor (its results stay in modelMonitorResults until retention removes them)."""
    ModelMonitor(Workspace(), service, name).delete()
    console.print(f"deleted monitor {name}")


@reference_app.command("upload")
def reference_upload(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV, Parquet or JSON lines."),
    service: str = typer.Option(..., "--service"),
    name: str = typer.Option(..., "--name", help="The reference's name, for `monitor create --reference`."),
    format: Optional[str] = typer.Option(None, "--format", help="csv, parquet or jsonl (default: the extension)."),  # noqa: A002
    columns: Optional[str] = typer.Option(None, help="Comma-separated columns to keep (default: all)."),
    categorical: Optional[str] = typer.Option(None, help="Comma-separated columns to treat as categorical."),
) -> None:
    """Upload a training file as a reference; it is frozen as sketches, never rescanned."""
    summary = upload_reference(Workspace(), service, name, file, format, _listed(columns), _listed(categorical))
    console.print(f"reference {name}: {summary['rows']} rows", soft_wrap=True)
    table = Table("column", "type", "null rate", "min", "max")
    for column, info in summary["features"].items():
        table.add_row(column, info["type"], f"{info['null_rate']:.3g}", _num(info["min"]), _num(info["max"]))
    console.print(table)


@reference_app.command("list")
def reference_list(service: str = typer.Option(..., "--service")) -> None:
    """A service's references."""
    for ref in Workspace().request("GET", f"/api/services/{service}/monitor-references").json():
        console.print(f"{ref['name']}\t{ref['rows']} rows\t{ref['created_at']}")


def _num(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def update_collection(workspace: Workspace, service: str, collect: Optional[str], sample_rate: Optional[float]) -> None:
    """`insights service update NAME --collect request,response --sample-rate 0.1` (payload logging)."""
    current = workspace.request("GET", f"/api/services/{service}/collection").json()
    wanted = current["collect"] if collect is None else [c for c in _listed(collect) or [] if c.lower() != "none"]
    saved = set_payload_logging(workspace, service, wanted, current["sample_rate"] if sample_rate is None else sample_rate)
    share = f" of {saved['sample_rate']:g} of requests" if saved["collect"] else ""
    console.print(f"{service}: payload logging {', '.join(saved['collect']) or 'off'}{share}", soft_wrap=True)
