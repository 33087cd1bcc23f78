"""Starting and stopping the dashboard: `streamlit run dashboard/app.py` as a child process.

A child process rather than Streamlit in-process, because Streamlit owns its event loop and signal
handlers, and `insights up` already runs uvicorn in the foreground. The child gets the collector's
URL through the environment (INSIGHTS_URL) and no key at all: whoever opens it signs in (see
login.py). Whoever holds the admin key (`insights up`, `insights demo`, `insights dashboard`) can
mint a one-click login link instead (`login_link`). Every setting that would make Streamlit reach
beyond 127.0.0.1 is turned off on its command line. On Linux the child is also told to exit when
its parent dies, so a killed collector never leaves an orphaned dashboard holding the port.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import webbrowser
from pathlib import Path

import httpx
import typer

APP = Path(__file__).with_name("app.py")
DEFAULT_PORT = 8501
# Never handed to the dashboard's process: it acts with the signed-in session's key only.
KEY_ENV_VARS = ("INSIGHTS_API_KEY", "INSIGHTS_DATA_DIR")

OFFLINE_FLAGS = (
    "--browser.gatherUsageStats", "false",  # no usage metrics from the page
    "--server.headless", "true",            # no email prompt (it posts to data.streamlit.io), no browser
    "--server.fileWatcherType", "none",
    "--client.toolbarMode", "viewer",       # no "Deploy" button
    "--global.developmentMode", "false",
)


def command(port: int, address: str = "127.0.0.1") -> list[str]:
    """The streamlit command line; `server.address` must be set or headless Streamlit looks up its
    external IP on the internet to print an 'External URL'."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
            "--server.address", address, *OFFLINE_FLAGS]


def run_dashboard(collector_url: str, port: int, api_key: str | None = None, headless: bool = True,
                  address: str = "127.0.0.1", log_file=None) -> subprocess.Popen:
    """Start the dashboard for the collector at `collector_url`; returns at once (see wait_ready).

    The dashboard's process gets no key (it is removed from the environment it inherits).
    headless=False also opens the user's browser once the dashboard answers: on a one-click login
    link when `api_key` (the admin key) is given, else on the sign-in page.
    """
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV_VARS}
    env["INSIGHTS_URL"] = collector_url.rstrip("/")
    process = subprocess.Popen(command(port, address), env=env, stdout=log_file, stderr=subprocess.STDOUT if log_file else None,
                               preexec_fn=exit_with_parent if sys.platform == "linux" else None)
    if not headless:
        threading.Thread(target=_open_browser, args=(collector_url, api_key, port, process), daemon=True).start()
    return process


def login_link(collector_url: str, admin_key: str, port: int) -> str:
    """A one-click login link for the dashboard on `port`: a single-use token the collector minted
    (POST /api/dashboard/tokens), valid a few minutes. httpx.HTTPError if the collector said no."""
    response = httpx.post(f"{collector_url.rstrip('/')}/api/dashboard/tokens", headers={"x-api-key": admin_key}, timeout=10)
    response.raise_for_status()
    return f"{url(port)}/?token={response.json()['token']}"


def announce_login_link(collector_url: str, admin_key: str, port: int, echo, process: subprocess.Popen | None = None,
                        timeout: float = 60.0) -> threading.Thread:
    """In the background: once the collector and the dashboard answer, `echo` a login link (what
    `insights up` prints, since its collector runs in the foreground of the same process)."""
    def announce() -> None:
        if not answers(f"{collector_url.rstrip('/')}/healthz", None, timeout) or not wait_ready(port, process, timeout):
            return
        try:
            echo(login_link(collector_url, admin_key, port))
        except httpx.HTTPError as error:
            echo(f"{url(port)} (no login link: {error}; sign in with the admin key)")

    thread = threading.Thread(target=announce, daemon=True, name="dashboard-login-link")
    thread.start()
    return thread


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def wait_ready(port: int, process: subprocess.Popen | None = None, timeout: float = 30.0) -> bool:
    """True once Streamlit's health endpoint answers; False on timeout or if the process exited."""
    return answers(f"{url(port)}/_stcore/health", process, timeout)


def answers(address: str, process: subprocess.Popen | None = None, timeout: float = 30.0) -> bool:
    """True once `address` answers 200; False on timeout or if `process` exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            if httpx.get(address, timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def stop_dashboard(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if Streamlit has not exited within `timeout`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def exit_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _open_browser(collector_url: str, admin_key: str | None, port: int, process: subprocess.Popen) -> None:
    if not wait_ready(port, process):
        return
    address = url(port)
    if admin_key:
        try:
            address = login_link(collector_url, admin_key, port)
        except httpx.HTTPError:
            pass
    webbrowser.open(address)


def dashboard_command(
    collector: str = typer.Option(None, "--collector", help="Collector URL (default: INSIGHTS_URL or http://127.0.0.1:8080)."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Dashboard port."),
    address: str = typer.Option("127.0.0.1", "--address", help="Address to listen on (0.0.0.0 in a container)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the dashboard in your browser."),
    link_only: bool = typer.Option(False, "--login-link", help="Only print a new one-click login link for the dashboard on --port, and exit."),
) -> None:
    """Run the dashboard alone, against a running collector. It has no key of its own: people sign
    in with the admin key or a service's API key. When this command finds the admin key (where the
    CLI looks: INSIGHTS_API_KEY or the data dir's admin.key), it prints a one-click login link."""
    from collector.client import resolve_collector

    connection = resolve_collector(url=collector)
    collector_url = connection.url
    if link_only:
        _print_login_link(collector_url, connection.api_key, port, connection.key_hint())
        return
    process = run_dashboard(collector_url, port, connection.api_key, headless=not open_browser, address=address)
    typer.echo(f"dashboard on {url(port)} (collector {collector_url}); Ctrl-C stops it")
    if connection.api_key:
        announce_login_link(collector_url, connection.api_key, port, lambda link: typer.echo(f"log in: {link}"), process)
    try:
        raise typer.Exit(process.wait())
    except KeyboardInterrupt:
        stop_dashboard(process)



def _print_login_link(collector_url: str, admin_key: str | None, port: int, key_hint: str) -> None:
    if not admin_key:
        typer.echo(f"error: a login link needs the admin key ({key_hint})", err=True)
        raise typer.Exit(1)
    try:
        typer.echo(login_link(collector_url, admin_key, port))
    except httpx.HTTPStatusError as error:
        typer.echo(f"error: the collector at {collector_url} refused ({error.response.status_code}): {error.response.text} "
                   f"({key_hint})", err=True)
        raise typer.Exit(1) from None
    except httpx.TransportError as error:
        typer.echo(f"error: no collector answers at {collector_url} ({error}); start one with `insights up`", err=True)
        raise typer.Exit(1) from None
