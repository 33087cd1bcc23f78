"""Starting and stopping the dashboard: `streamlit run dashboard/app.py` as a child process.

A child process rather than Streamlit in-process, because Streamlit owns its event loop and signal
handlers, and `insights up` already runs uvicorn in the foreground. The child gets the collector's
URL and key through the environment (the same INSIGHTS_URL / INSIGHTS_API_KEY the CLI reads), and
every setting that would make Streamlit reach beyond 127.0.0.1 is turned off on its command line.
On Linux the child is also told to exit when its parent dies, so a killed collector never leaves
an orphaned dashboard holding the port.
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


def run_dashboard(collector_url: str, port: int, api_key: str | None, headless: bool = True,
                  address: str = "127.0.0.1", log_file=None) -> subprocess.Popen:
    """Start the dashboard for the collector at `collector_url`; returns at once (see wait_ready).

    headless=False also opens the user's browser once the dashboard answers.
    """
    env = {**os.environ, "INSIGHTS_URL": collector_url.rstrip("/")}
    if api_key:
        env["INSIGHTS_API_KEY"] = api_key
    process = subprocess.Popen(command(port, address), env=env, stdout=log_file, stderr=subprocess.STDOUT if log_file else None,
                               preexec_fn=exit_with_parent if sys.platform == "linux" else None)
    if not headless:
        threading.Thread(target=_open_browser, args=(url(port), process), daemon=True).start()
    return process


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


def _open_browser(address: str, process: subprocess.Popen) -> None:
    port = int(address.rsplit(":", 1)[1])
    if wait_ready(port, process):
        webbrowser.open(address)


def dashboard_command(
    collector: str = typer.Option(None, "--collector", help="Collector URL (default: INSIGHTS_URL or http://127.0.0.1:8080)."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Dashboard port."),
    address: str = typer.Option("127.0.0.1", "--address", help="Address to listen on (0.0.0.0 in a container)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the dashboard in your browser."),
) -> None:
    """Run the dashboard alone, against a running collector (the admin key comes from the same
    place as the CLI's: INSIGHTS_API_KEY or the data dir's admin.key)."""
    from collector.client import resolve_collector

    connection = resolve_collector(url=collector)
    collector_url = connection.url
    process = run_dashboard(collector_url, port, connection.api_key, headless=not open_browser, address=address)
    typer.echo(f"dashboard on {url(port)} (collector {collector_url}); Ctrl-C stops it")
    try:
        raise typer.Exit(process.wait())
    except KeyboardInterrupt:
        stop_dashboard(process)

