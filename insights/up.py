"""The wiring of `insights up`: the collector with continuous export plugged in, and the dashboard
beside it, on the embedded store."""

from __future__ import annotations

from rich.console import Console

from collector import admin_key
from collector.server import serve
from collector.settings import CollectorSettings
from exporters import ExportExtension

console = Console()


def start_all(settings: CollectorSettings, host: str, port: int, dashboard_port: int | None) -> None:
    """Run until stopped: the collector in this process, the dashboard (unless `dashboard_port` is
    None) in a child process that stops with it."""
    key, created = admin_key.load_or_create(settings.data_dir, settings.admin_key)
    url = f"http://{host}:{port}"
    console.print(f"[bold]Endpoint Insights[/bold] collector on [cyan]{url}[/cyan] (API docs at {url}/docs)")
    console.print(f"data dir: {settings.data_dir.resolve()}")
    source = admin_key.ENV_VAR if settings.admin_key else str(settings.data_dir / admin_key.KEY_FILENAME)
    console.print(f"admin key ({'new, ' if created else ''}from {source}): [yellow]{key}[/yellow]")
    console.print("create a service: [bold]insights service create my-service[/bold]")
    dashboard = None
    if dashboard_port is not None:
        from dashboard.launcher import announce_login_link, run_dashboard, stop_dashboard
        from dashboard.launcher import url as dashboard_url

        # The dashboard talks to the collector over loopback even when the collector listens on 0.0.0.0.
        # It gets no key: people sign in; this prints a one-click login link once both answer.
        dashboard = run_dashboard(f"http://127.0.0.1:{port}", dashboard_port)
        console.print(f"dashboard on [cyan]{dashboard_url(dashboard_port)}[/cyan] (sign in with the admin key)")
        announce_login_link(f"http://127.0.0.1:{port}", key, dashboard_port, process=dashboard, echo=lambda link: console.print(
            f"dashboard login link (works once, for 10 minutes): [cyan]{link}[/cyan]", soft_wrap=True))
    try:
        serve(settings, [ExportExtension()], host=host, port=port)
    finally:
        if dashboard is not None:
            stop_dashboard(dashboard)
