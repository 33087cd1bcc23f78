"""What the dashboard's tests share: a signed-in AppTest session, a recording proxy in front of a
collector (every call the dashboard makes, and with which key), and the real-browser stack
(a collector, the dashboard started as `insights up` starts it, Debian's chromium via Playwright)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from collector_process import CollectorProcess, free_port
from streamlit.testing.v1 import AppTest

from dashboard import collector_api, login
from dashboard.launcher import run_dashboard, stop_dashboard, url, wait_ready

CHROMIUM = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium")
# Offline: no Google services, no DNS for anything but 127.0.0.1.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1400, "height": 1900}


def signed_in(at: AppTest, url: str, api_key: str, scope: str | None = None) -> AppTest:
    """`at` in a session signed in with `api_key`, as the sign-in form or a login link leaves it;
    `scope` is the one service a service's key reads."""
    at.session_state[login.SESSION_KEY] = collector_api.Link(url, api_key, scope)
    return at


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    key: str | None


@dataclass
class RecordingProxy:
    """An HTTP proxy in front of a collector that records every request (method, path, the key
    presented): the collector's access log, for asserting who called what."""

    target: str
    hits: list[Hit] = field(default_factory=list)

    def start(self) -> RecordingProxy:
        proxy = self
        client = httpx.Client(base_url=self.target, timeout=60)

        class Handler(BaseHTTPRequestHandler):
            def _forward(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                proxy.hits.append(Hit(self.command, self.path, self.headers.get("x-api-key")))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
                answer = client.request(self.command, self.path, content=body, headers=headers)
                self.send_response(answer.status_code)
                for name in ("content-type", "retry-after"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward  # noqa: N815 - the stdlib's names

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._client = client
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


@dataclass
class Stack:
    collector: CollectorProcess
    proxy: RecordingProxy
    address: str
    """The dashboard's URL."""
    log: Path


@contextmanager
def dashboard_stack(root: Path, seed=None) -> Iterator[Stack]:
    """A collector (seeded by `seed(collector)` if given), a recording proxy in front of it, and the
    dashboard on the proxy, started by run_dashboard exactly as `insights up` starts it."""
    collector = CollectorProcess(root / "data").start()
    proxy = RecordingProxy(collector.url).start()
    port = free_port()
    log_path = root / "dashboard.log"
    log = open(log_path, "wb")
    dashboard = run_dashboard(proxy.url, port, log_file=log)
    try:
        if seed is not None:
            seed(collector)
        assert wait_ready(port, dashboard), log_path.read_text()
        yield Stack(collector, proxy, url(port), log_path)
    finally:
        stop_dashboard(dashboard)
        log.close()
        proxy.stop()
        collector.stop()


def playwright_api():
    """playwright.sync_api; the test fails (in CI) or is skipped without Debian's chromium."""
    if not CHROMIUM:
        if os.environ.get("CI"):
            raise RuntimeError("chromium is missing: .ci/run must `apt-get install -y chromium`")
        pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


@contextmanager
def chromium():
    """Debian's Chromium; each `browser.new_context(viewport=VIEWPORT)` is a fresh profile (no
    cookies or storage from another)."""
    sync_api = playwright_api()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page, address: str, key: str) -> None:
    """Open the dashboard and sign in through its form, as a person would."""
    page.goto(address)
    field = page.get_by_label("API key", exact=True)
    field.wait_for(timeout=TIMEOUT_MS)
    field.fill(key)
    page.get_by_role("button", name="Sign in").click()
