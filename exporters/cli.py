"""`insights export configure|run|status`: continuous export from the command line, over the
collector's HTTP API (the collector is the only process that opens the DuckDB file)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from collector.client import Workspace

export_app = typer.Typer(help="Continuous export of telemetry to a folder or Azure Blob Storage.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

POLL_SECONDS = 0.25


def _workspace() -> Workspace:
    return Workspace()


@export_app.command("configure")
def configure(
    name: str = typer.Argument(..., help="Service to export."),
    destination: Optional[str] = typer.Option(
        None, help="Folder (a relative path is made absolute here), file:// URL, container SAS URL, or connection string."),
    container: Optional[str] = typer.Option(None, help="Blob container (with a connection string)."),
    types: Optional[str] = typer.Option(None, help="Comma-separated: Requests,Messages,Exceptions,Rdd,Event,Metrics."),
    interval: Optional[int] = typer.Option(None, "--interval", help="Seconds between exports (>= 1)."),
    enable: Optional[bool] = typer.Option(None, "--enable/--disable", help="Scheduled export on or off."),
    retention_days: Optional[int] = typer.Option(None, help="Delete rows older than this many days (0: keep forever)."),
    default_destination: bool = typer.Option(False, "--default-destination", help="Back to <data-dir>/blob/."),
) -> None:
    """Change a service's export settings; options not given keep their current value."""
    ws = _workspace()
    current = ws.request("GET", f"/api/services/{name}/export").json()
    if not current.pop("configured", True):
        current.pop("enabled", None)  # nothing set up yet (GET says off): a first configure turns export on
    changes = {
        "destination": None if default_destination else _absolute(destination),
        "container": container,
        "types": [t.strip() for t in types.split(",") if t.strip()] if types is not None else None,
        "interval_seconds": interval,
        "enabled": enable,
        "retention_days": retention_days,
    }
    settings = {**current, **{k: v for k, v in changes.items() if v is not None}}
    if default_destination:
        settings["destination"] = settings["container"] = None
    if retention_days == 0:
        settings["retention_days"] = None
    result = ws.request("PUT", f"/api/services/{name}/export", json=settings).json()
    _print_settings(name, result)


@export_app.command("run")
def run(names: list[str] = typer.Argument(None, help="Services to export (default: every configured one).")) -> None:
    """Export now, once, with a progress bar; exits 1 if any export failed."""
    ws = _workspace()
    targets = names or [s["service"] for s in ws.request("GET", "/api/export/status").json() if s["configured"]]
    if not targets:
        err.print("no service has export configured: [bold]insights export configure NAME[/bold]")
        raise typer.Exit(1)
    failed = False
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as progress:
        for name in targets:
            failed |= not _run_one(ws, name, progress)
    if failed:
        raise typer.Exit(1)


def _run_one(ws: Workspace, name: str, progress: Progress) -> bool:
    """Start a run and follow its progress until it ends; True when it succeeded."""
    run_id = ws.request("POST", f"/api/services/{name}/export/run").json()["id"]
    task = progress.add_task(name, total=None)
    while True:
        status = ws.request("GET", f"/api/services/{name}/export/status").json()
        current = status["run"] or {}
        if current.get("id") == run_id:
            progress.update(task, total=max(current["total"], current["done"]) or None, completed=current["done"])
            if current["state"] in ("done", "failed"):
                break
        time.sleep(POLL_SECONDS)
    if current["state"] == "failed":
        progress.update(task, description=f"{name} [red]failed[/red]")
        err.print(f"[red]{name}:[/red] {current['error']}")
        return False
    progress.update(task, total=current["done"] or 1, completed=current["done"] or 1,
                    description=f"{name}: {current['done']:,} items to {status['destination']}")
    return True


@export_app.command("status")
def status(name: Optional[str] = typer.Argument(None, help="One service (default: all).")) -> None:
    """Per service: last run, items exported, lag (items not yet exported), last error."""
    ws = _workspace()
    rows = [ws.request("GET", f"/api/services/{name}/export/status").json()] if name else \
        ws.request("GET", "/api/export/status").json()
    table = Table("service", "export", "destination", "last run", "exported", "lag", "last error")
    for s in rows:
        state = ("on" if s["enabled"] else "off") if s["configured"] else "-"
        error = s["last_error"] if s["consecutive_failures"] else ""
        last_run = s["last_run"][:19].replace("T", " ") + " UTC" if s["last_run"] else "never"
        table.add_row(s["service"], state, s["destination"], last_run,
                      f"{s['items_exported']:,}", f"{s['lag']:,}", f"[red]{error}[/red]" if error else "")
    console.print(table)


def _absolute(destination: Optional[str]) -> Optional[str]:
    """A plain relative folder is resolved here, where the user typed it; URLs and connection strings pass."""
    if not destination or "://" in destination or "=" in destination or Path(destination).is_absolute():
        return destination
    return str(Path(destination).resolve())


def _print_settings(name: str, settings: dict) -> None:
    table = Table(show_header=False, box=None, title=f"export settings of {name}")
    for key, value in settings.items():
        if key != "configured":
            table.add_row(f"[bold]{key}[/bold]", _redacted(key, value))
    console.print(table)


def _redacted(key: str, value) -> str:
    """Hide a SAS signature or an account key when echoing settings."""
    text = str(value)
    if key == "destination" and value:
        if "?" in text and "sig=" in text:
            return text.split("?", 1)[0] + "?<sas>"
        if "AccountKey=" in text or "SharedAccessSignature=" in text:
            return ";".join(p for p in text.split(";") if not p.startswith(("AccountKey=", "SharedAccessSignature=")))
    return ", ".join(value) if isinstance(value, list) else text
