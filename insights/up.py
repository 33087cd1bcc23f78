"""The wiring of `insights up`: the collector with continuous export plugged in, and the dashboard
beside it, on the embedded store."""

from __future__ import annotations

import re
import socket
import ssl
from pathlib import Path

import duckdb
from rich.console import Console

from alerts import AlertsExtension
from alerts.config import AlertsConfig
from collector import admin_key
from collector.client.resolve import write_user_config
from collector.server import serve
from collector.settings import CollectorSettings
from collector.store.database import DB_FILENAME
from endpoints import EndpointExtension
from exporters import ExportExtension
from live import LiveExtension
from monitoring.extension import MonitoringExtension

console = Console(soft_wrap=True)  # never wrapped: the key and URLs are copied whole


def check_tls(settings: CollectorSettings) -> None:
    """ValueError saying what is wrong when the certificate and key cannot serve HTTPS, before the
    server starts (uvicorn would print a traceback)."""
    if not settings.tls:
        return
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    except OSError as error:  # ssl.SSLError included
        raise ValueError(f"cannot serve HTTPS with certificate {settings.tls_cert} and key {settings.tls_key}: "
                         f"{error.strerror or error}") from None


def check_data_dir_free(data_dir: Path) -> None:
    """ValueError naming the process that holds the data dir's database (another `insights up`),
    before the server starts (DuckDB's lock error surfaces as a long traceback from inside it)."""
    path = Path(data_dir) / DB_FILENAME
    if not path.exists():
        return
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.IOException as error:
        if "lock" not in str(error).lower():
            return  # not a lock: the server reports it in its own words
        pid = re.search(r"PID (\d+)", str(error))
        holder = f"process {pid.group(1)}" if pid else "another process"
        raise ValueError(f"the data dir {Path(data_dir).resolve()} is in use by {holder} (another `insights up`?): "
                         "stop it, or give this one another --data-dir") from None


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on host:port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def start_all(settings: CollectorSettings, host: str, port: int, dashboard_port: int | None) -> None:
    """Run until stopped: the collector in this process, the dashboard (unless `dashboard_port` is
    None) in a child process that stops with it."""
    key, created = admin_key.load_or_create(settings.data_dir, settings.admin_key)
    scheme = "https" if settings.tls else "http"
    url = f"{scheme}://{host}:{port}"
    # The dashboard talks to the collector over loopback even when the collector listens on 0.0.0.0;
    # over HTTPS, at --public-url when given (a name the certificate carries), which it must trust.
    local_url = (settings.public_url if settings.tls and settings.public_url else f"{scheme}://127.0.0.1:{port}").rstrip("/")
    console.print(f"[bold]Endpoint Insights[/bold] collector on [cyan]{url}[/cyan] (API docs at {url}/docs)")
    if settings.tls:
        console.print(f"HTTPS only, certificate {settings.tls_cert}; clients that do not trust it already need "
                      "SSL_CERT_FILE=<that certificate> (the dashboard and `insights score` read it too)")
    console.print(f"data dir: {settings.data_dir.resolve()}")
    if settings.store is not None:
        console.print(f"telemetry store: {settings.store.url} (ClickHouse; state stays in the data dir)", soft_wrap=True)
    source = admin_key.ENV_VAR if settings.admin_key else str(settings.data_dir / admin_key.KEY_FILENAME)
    console.print(f"admin key ({'new, ' if created else ''}from {source}): [yellow]{key}[/yellow]")
    if not settings.admin_key:  # the key lives in a file: every later command finds it through the user config
        written = write_user_config(local_url, settings.data_dir / admin_key.KEY_FILENAME)
        if written is not None:
            console.print(f"config for the other commands (URL and the key file's path): {written}", soft_wrap=True)
    console.print("create a service: [bold]insights service create my-service[/bold]")
    dashboard = None
    if dashboard_port is not None and port_taken(dashboard_port):
        console.print(f"[red]dashboard not started:[/red] port {dashboard_port} is taken (another dashboard?); "
                      "use --dashboard-port PORT, or --no-dashboard", soft_wrap=True)
        dashboard_port = None
    if dashboard_port is not None:
        from dashboard.launcher import announce_login_link, run_dashboard, stop_dashboard
        from dashboard.launcher import url as dashboard_url

        # It gets no key: people sign in; this prints a one-click login link once both answer.
        dashboard = run_dashboard(local_url, dashboard_port)
        console.print(f"dashboard on [cyan]{dashboard_url(dashboard_port)}[/cyan] (sign in with the admin key)")
        announce_login_link(local_url, key, dashboard_port, process=dashboard, echo=lambda link: console.print(
            f"dashboard login link (works once, for 10 minutes): [cyan]{link}[/cyan]", soft_wrap=True))
    try:
        serve(settings, [ExportExtension(), EndpointExtension(local_url, key), LiveExtension(), MonitoringExtension(),
                         AlertsExtension(AlertsConfig.from_env())], host=host, port=port)
    finally:
        if dashboard is not None:
            stop_dashboard(dashboard)
