"""The live `enable_app_insights` switch: the supervisor polls the collector for its service's
setting and writes it to a small file in the spool directory; each worker's drain thread reads that
file (when it changed) and turns capture off or on. A user's `insights service update NAME
--disable-app-insights` thus stops a running wrapper's telemetry within a few seconds, without a
restart. While the collector cannot be reached the last known setting stays in force.

Turning it on must lose nothing: the switch reaches a worker up to one poll interval after the user
flipped it, and the requests served in between would be lost. So while the switch says off, the
workers still build their items and hold them in memory (telemetry_queue.py), and the file says when
the collector last confirmed "off" (`off_at`, the time that question was asked, rewritten at each
poll). Items older than that are from the disabled period and are dropped; the rest are sent once
the switch says on. The price: up to one interval of items from just before the flip is kept too,
since the wrapper cannot tell the exact moment.
"""

from __future__ import annotations

import json
import os
import threading
import time
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
        asked_at = time.time()
        try:
            response = client.get(self.url, headers=self.headers)
        except httpx.HTTPError:
            return
        if response.status_code != 200:
            return
        write(self.path, bool(response.json().get("enable_app_insights", True)), asked_at)

    def _run(self) -> None:
        with httpx.Client(timeout=5, trust_env=False, verify=tls_verify()) as client:
            while not self._stop.is_set():
                self.poll_once(client)
                self._stop.wait(self.interval)


def write(path: Path, enabled: bool, asked_at: float | None = None) -> None:
    """Record the setting for the workers: "on" only when it changed (so they re-read it rarely),
    "off" at every answer, with when it was asked (`off_at`: what was held before it is dropped)."""
    if enabled and read(path) is True:
        return
    state: dict = {"enable_app_insights": enabled}
    if not enabled:
        state["off_at"] = time.time() if asked_at is None else asked_at
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, path)


def read_state(path: Path) -> dict | None:
    try:
        state = json.loads(path.read_text())
        return {"enable_app_insights": bool(state["enable_app_insights"]), "off_at": float(state.get("off_at") or 0.0)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def read(path: Path) -> bool | None:
    state = read_state(path)
    return None if state is None else state["enable_app_insights"]


class SwitchFile:
    """Worker side: the setting, re-read only when the file changed."""

    def __init__(self, directory: Path, default: bool = True):
        self.path = Path(directory) / FILENAME
        self.value = default
        self.off_at = 0.0
        """When the collector last confirmed "off" (0: never): what was held before is dropped."""
        self._mtime: int | None = None

    def __call__(self) -> bool:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return self.value
        if mtime != self._mtime:
            self._mtime = mtime
            state = read_state(self.path)
            if state is not None:
                self.value = state["enable_app_insights"]
                self.off_at = state["off_at"]
        return self.value
