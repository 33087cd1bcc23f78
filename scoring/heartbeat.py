"""The wrapper's heartbeat: every `interval` seconds the supervisor tells the collector how the
wrapper is (POST /api/wrapper/heartbeat: instance, scoring URI, Healthy or Unhealthy and why) and
hears back the service's enable_app_insights, which it hands to the workers through the switch file
(switch.py). That is what `Webservice.state` and `Webservice.scoring_uri` read.

The instrumentation key names the service, but it is no secret, so the collector takes a state and
scoring URI as the truth only from a heartbeat that also presents a key for the service (its API
key, or the admin key): `settings.api_key`, which `insights score --service NAME` resolves as the
CLI does (INSIGHTS_API_KEY, else the local admin.key). Without one, or if the collector refuses
it, the wrapper still beats and follows the switch; the collector lists it as unverified.

`Healthy` means what a client would see: a worker answered /ready with 200 just now; anything else
is `Unhealthy` with the reason (init() still running, workers not answering). On the way out the
supervisor says `Stopped` once, with its exit code (0 reads as a clean stop, anything else as a
crash). A collector without the heartbeat route (404) is still polled for the switch on
GET /api/wrapper/settings. Runs in the supervisor, so it costs the scoring process one /ready
request per interval.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import httpx

from scoring import switch
from scoring.config import Settings
from scoring.sender import USER_AGENT, tls_verify

SCORING_URI_VAR = "INSIGHTS_SCORING_URI"


def scoring_uri(settings: Settings, environ=os.environ) -> str:
    """INSIGHTS_SCORING_URI when set (a wrapper behind a proxy or a port mapping knows better),
    else this host's name and the port; a wrapper listening on all interfaces is reached by name."""
    if environ.get(SCORING_URI_VAR):
        return environ[SCORING_URI_VAR]
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else socket.gethostname()
    return f"http://{_bracketed(host)}:{settings.port}/score"


def ready_url(settings: Settings) -> str:
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    return f"http://{_bracketed(host)}:{settings.port}/ready"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class Heartbeat:
    def __init__(self, settings: Settings, directory: Path, follow_switch: bool, interval: float = 2.0):
        endpoint = settings.ingestion_endpoint.rstrip("/")
        self.url = endpoint + "/api/wrapper/heartbeat"
        self.settings_url = endpoint + "/api/wrapper/settings"
        self.headers = {"x-instrumentation-key": settings.instrumentation_key, "user-agent": USER_AGENT}
        self.api_key = settings.api_key
        self.switch_path = Path(directory) / switch.FILENAME
        self.follow_switch = follow_switch
        self.interval = interval
        self.ready_url = ready_url(settings)
        self.report = {"instance": f"{settings.container_id}:{settings.port}", "scoring_uri": scoring_uri(settings),
                       "workers": settings.worker_count, "pid": os.getpid()}
        self.legacy = False  # the collector has no heartbeat route: poll the switch only
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=2, trust_env=False, verify=tls_verify())
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def beat(self, state: str, detail: str = "", exit_code: int | None = None) -> None:
        """One report; its answer sets the switch. A collector that is away changes nothing."""
        asked_at = time.time()
        try:
            if self.legacy:
                response = self._client.get(self.settings_url, headers=self.headers)
            else:
                response = self._post(state, detail, exit_code)
                if response.status_code in (401, 403) and self.api_key:
                    self.api_key = None  # refused: beat on unverified rather than not at all
                    response = self._post(state, detail, exit_code)
                if response.status_code in (404, 405):
                    self.legacy = True
                    response = self._client.get(self.settings_url, headers=self.headers)
        except httpx.HTTPError:
            return
        if response.status_code == 200 and self.follow_switch:
            try:
                switch.write(self.switch_path, bool(response.json().get("enable_app_insights", True)), asked_at)
            except (ValueError, AttributeError, OSError):
                pass

    def _post(self, state: str, detail: str, exit_code: int | None = None) -> httpx.Response:
        headers = {**self.headers, "x-api-key": self.api_key} if self.api_key else self.headers
        body = {**self.report, "state": state, "detail": detail}
        if exit_code is not None:
            body["exit_code"] = exit_code
        return self._client.post(self.url, headers=headers, json=body)

    def probe(self) -> tuple[str, str]:
        """(state, detail) as a client would find the workers now."""
        try:
            response = self._client.get(self.ready_url, timeout=1)
        except httpx.HTTPError as error:
            return "Unhealthy", f"the workers do not answer on {self.ready_url}: {type(error).__name__}"
        if response.status_code == 200:
            return "Healthy", ""
        if response.status_code == 503:
            return "Unhealthy", "init() has not finished"
        return "Unhealthy", f"{self.ready_url} answered {response.status_code}"

    def stop(self, detail: str, exit_code: int | None = None) -> None:
        """Stop beating and say so, once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.beat("Stopped", detail, exit_code)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            state, detail = self.probe()
            if not self._stop.is_set():
                self.beat(state, detail)
