"""The live `enable_app_insights` switch: the supervisor polls the collector for its service's
setting and writes it to a small file in the spool directory; each worker's drain thread reads that
file (when it changed) and turns capture off or on. A user's `insights service update NAME
--disable-app-insights` thus stops a running wrapper's telemetry within a few seconds, without a
restart. While the collector cannot be reached the last known setting stays in force.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import httpx

from scoring.sender import USER_AGENT, tls_verify

FILENAME = "switch.json"


class SwitchPoller:
    """Supervisor side: GET /api/wrapper/settings every `interval` seconds."""

    def __init__(self, endpoint: str, ikey: str, directory: Path, interval: float = 2.0):
        self.url = endpoint.rstrip("/") + "/api/wrapper/settings"
        self.headers = {"x-instrumentation-key": ikey, "user-agent": USER_AGENT}
        self.path = Path(directory) / FILENAME
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="switch-poll", daemon=True)

    def start(self) -> SwitchPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def poll_once(self, client: httpx.Client) -> None:
        try:
            response = client.get(self.url, headers=self.headers)
        except httpx.HTTPError:
            return
        if response.status_code != 200:
            return
        write(self.path, bool(response.json().get("enable_app_insights", True)))

    def _run(self) -> None:
        with httpx.Client(timeout=5, trust_env=False, verify=tls_verify()) as client:
            while not self._stop.is_set():
                self.poll_once(client)
                self._stop.wait(self.interval)


def write(path: Path, enabled: bool) -> None:
    """Record the setting for the workers (only when it changed, so they re-read it rarely)."""
    if read(path) != enabled:
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"enable_app_insights": enabled}))
        os.replace(temporary, path)


def read(path: Path) -> bool | None:
    try:
        return bool(json.loads(path.read_text())["enable_app_insights"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class SwitchFile:
    """Worker side: the setting, re-read only when the file changed."""

    def __init__(self, directory: Path, default: bool = True):
        self.path = Path(directory) / FILENAME
        self.value = default
        self._mtime: int | None = None

    def __call__(self) -> bool:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return self.value
        if mtime != self._mtime:
            self._mtime = mtime
            value = read(self.path)
            if value is not None:
                self.value = value
        return self.value
