"""Workspace (a collector and its key), Webservice (one service) and DeploymentConfiguration."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from collector.client.errors import ApiError, CollectorUnreachable, ConfigError
from collector.client.resolve import Connection, resolve_collector

AUTHENTICATION_STATUSES = (401, 403)


REPLAY_TIMEOUT_S = 600.0
"""A replay answers once every batch set aside is committed: ~90,000 items/s (bench/set_aside.py)."""


class Workspace:
    """A collector and the key to talk to it (the admin key, or one service's api key).

    `url` and `api_key` left out are found as everywhere else (`resolve_collector`): INSIGHTS_URL,
    else http://127.0.0.1:8080; INSIGHTS_API_KEY, else the admin.key in INSIGHTS_DATA_DIR (default
    ./insights-data). `connection`, an already resolved one, takes the place of both."""

    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                 *, connection: Connection | None = None):
        self.connection = connection or resolve_collector(url, api_key)
        self.url = self.connection.url
        self.config_path: Path | None = self.connection.config_path
        key = self.connection.api_key
        headers = {"x-api-key": key} if key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    @classmethod
    def from_config(cls, path: str | os.PathLike | None = None, timeout: float = 60.0) -> Workspace:
        """The workspace a config file describes: JSON `{"url": ..., "api_key": ...}` (either may be
        left out), as `insights` users keep it beside their code.

        Lookup order, first hit wins for each value (`resolve_collector` with a config file):
        1. The config file: `path` when given (a file, or a folder holding `.insights/config.json`
           or `config.json`; it must exist). Otherwise the current folder and then each parent
           folder, looking for `.insights/config.json`, then `config.json`; a `config.json` that has
           neither "url" nor "api_key" (an Azure ML one, say) is passed over.
        2. The environment: INSIGHTS_URL, INSIGHTS_API_KEY.
        3. The admin.key in the collector's data dir (INSIGHTS_DATA_DIR, default ./insights-data),
           and the URL http://127.0.0.1:8080.
        With no file found (and no `path`) this is `Workspace()`: steps 2 and 3 alone.
        """
        config = Path(path) if path is not None else True
        return cls(connection=resolve_collector(config=config), timeout=timeout)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise CollectorUnreachable(
                f"no collector answers at {self.url} ({error}); start one with `insights up`"
            ) from None
        if response.status_code >= 400:
            hint = self.connection.key_hint() if response.status_code in AUTHENTICATION_STATUSES else None
            raise ApiError(response.status_code, _message_of(response), hint)
        return response

    @property
    def webservices(self) -> dict[str, Webservice]:
        return {s["name"]: Webservice(self, s["name"], _data=s) for s in self.request("GET", "/api/services").json()}

    def create_service(self, name: str, enable_app_insights: bool = True) -> Webservice:
        data = self.request("POST", "/api/services", json={"name": name, "enable_app_insights": enable_app_insights}).json()
        return Webservice(self, name, _data=data)

    def import_rows(self, service: str, lines: Iterable[bytes] | bytes) -> dict:
        body = lines if isinstance(lines, bytes) else b"".join(lines)
        return self.request("POST", f"/api/services/{service}/import", content=body).json()

    def set_aside(self) -> dict:
        """Acknowledged batches the store refused, kept apart: {"batches": [...], "items": N} (admin key)."""
        return self.request("GET", "/api/store/set-aside").json()

    def replay_set_aside(self) -> dict:
        """Commit the batches set aside, once what refused them is fixed: {"replayed", "items",
        "batches", "refused"}; those refused again stay set aside (admin key)."""
        return self.request("POST", "/api/store/set-aside/replay", timeout=REPLAY_TIMEOUT_S).json()

    def query(self, kql: str, timespan: str | None = None, service: str | None = None):
        """Run KQL; a pandas DataFrame of the primary result."""
        import pandas as pd

        body = {"query": kql, "timespan": timespan}
        if service:
            body["service"] = service
        table = self.request("POST", "/v1/apps/default/query", json=body).json()["tables"][0]
        frame = pd.DataFrame(table["rows"], columns=[c["name"] for c in table["columns"]])
        for column in table["columns"]:
            if column["type"] == "datetime":
                frame[column["name"]] = pd.to_datetime(frame[column["name"]], utc=True)
        return frame


@dataclass
class DeploymentConfiguration:
    """How to run a service's wrapper (`insights score`): what `Webservice.deploy_configuration()`
    returns and `LocalWebservice.deploy()` takes. `port=None` picks a free port; None elsewhere
    keeps the wrapper's default (and azmlinfsrv's environment variables, when set)."""

    enable_app_insights: bool = True
    port: int | None = None
    host: str = "127.0.0.1"
    worker_count: int = 1
    max_concurrent_requests: int | None = None
    scoring_timeout_ms: int | None = None
    max_request_body_bytes: int | None = None
    cors_origins: list[str] = field(default_factory=list)
    log_response: bool = False
    environment_variables: dict[str, str] = field(default_factory=dict)
    autoscale_enabled: bool = False
    autoscale_min_replicas: int = 1
    autoscale_max_replicas: int = 10
    autoscale_target_utilization: int = 70
    autoscale_refresh_seconds: float = 1.0

    def arguments(self) -> list[str]:
        """`insights score` flags (besides entry script, port and service)."""
        out = ["--host", self.host, "--worker_count", str(self.worker_count)]
        if self.autoscale_enabled:
            out += ["--autoscale_enabled", "--autoscale_min_replicas", str(self.autoscale_min_replicas),
                    "--autoscale_max_replicas", str(self.autoscale_max_replicas),
                    "--autoscale_target_utilization", str(self.autoscale_target_utilization),
                    "--autoscale_refresh_seconds", str(self.autoscale_refresh_seconds)]
        if self.max_concurrent_requests:
            out += ["--max_concurrent_requests", str(self.max_concurrent_requests)]
        if self.max_request_body_bytes:
            out += ["--max_request_body_bytes", str(self.max_request_body_bytes)]
        if self.cors_origins:
            out += ["--access_control_allow_origins", ",".join(self.cors_origins)]
        return out

    def environment(self) -> dict[str, str]:
        env = dict(self.environment_variables)  # enable_app_insights is the service's switch, followed live
        if self.scoring_timeout_ms:
            env["SCORING_TIMEOUT_MS"] = str(self.scoring_timeout_ms)
        if self.log_response:
            env["APP_INSIGHTS_LOG_RESPONSE_ENABLED"] = "true"
        return env


class Webservice:
    """One service: its keys, its switch, its counters, and the state of its running wrappers."""

    @staticmethod
    def deploy_configuration(enable_app_insights: bool = True, port: int | None = None, **options) -> DeploymentConfiguration:
        """A DeploymentConfiguration; `options` are its other fields (host, worker_count,
        max_concurrent_requests, scoring_timeout_ms, max_request_body_bytes, cors_origins,
        log_response, environment_variables, and Azure's autoscale_enabled, autoscale_min_replicas,
        autoscale_max_replicas, autoscale_target_utilization, autoscale_refresh_seconds)."""
        try:
            return DeploymentConfiguration(enable_app_insights=enable_app_insights, port=port, **options)
        except TypeError as error:
            raise ConfigError(f"deploy_configuration: {error}") from None

    def __init__(self, workspace: Workspace, name: str, _data: dict | None = None):
        self.workspace = workspace
        self.name = name
        self._data = _data or workspace.request("GET", f"/api/services/{name}").json()

    def __repr__(self) -> str:
        return f"Webservice(name={self.name!r}, enable_app_insights={self.enable_app_insights})"

    @property
    def enable_app_insights(self) -> bool:
        return self._data["enable_app_insights"]

    @property
    def connection_string(self) -> str:
        return self._data["connection_string"]

    @property
    def instrumentation_key(self) -> str:
        return self._data["instrumentation_key"]

    @property
    def api_key(self) -> str:
        """The service's API key in clear on the Webservice that `Workspace.create_service` or
        `rotate_key()` returned; otherwise its prefix and a mask (the collector keeps only a digest,
        so nothing shows the key again: `rotate_key()` makes a new one)."""
        return self._data["api_key"]

    @property
    def api_key_prefix(self) -> str:
        """The first characters of the API key, to tell keys apart."""
        return self._data.get("api_key_prefix") or self._data["api_key"][:6]

    def rotate_key(self) -> str:
        """Replace the service's API key (admin key only) and return the new one, in clear this once;
        the old key stops working at once. The instrumentation key does not change."""
        self._data = self.workspace.request("POST", f"/api/services/{self.name}/keys/rotate").json()
        return self._data["api_key"]

    def update(self, enable_app_insights: bool) -> None:
        self._data = self.workspace.request(
            "PATCH", f"/api/services/{self.name}", json={"enable_app_insights": enable_app_insights}
        ).json()

    def delete(self) -> None:
        self.workspace.request("DELETE", f"/api/services/{self.name}")

    def stats(self) -> dict:
        return self.workspace.request("GET", f"/api/services/{self.name}/stats").json()

    def query(self, kql: str, timespan: str | None = None):
        return self.workspace.query(kql, timespan=timespan, service=self.name)

    @property
    def state(self) -> str:
        """Healthy, Unhealthy, Stopped or Unknown, from what the service's wrappers reported (see
        `wrapper_state()`); asked anew each time."""
        return self.wrapper_state()["state"]

    @property
    def scoring_uri(self) -> str | None:
        """Where the service scores, as its (healthy, else newest) wrapper reported it; None
        before any wrapper reported."""
        return self.wrapper_state()["scoring_uri"]

    def wrapper_state(self) -> dict:
        """{"state", "detail", "scoring_uri", "instances": [...]}: Healthy when a wrapper reported
        Healthy in the last 10 s; Unhealthy when one reported a problem (init() not finished,
        workers not answering) or said it crashed; Stopped when every one said it stopped cleanly; Unknown when none reported lately, since a silent
        wrapper may be gone or merely cut off from the collector."""
        return self.workspace.request("GET", f"/api/services/{self.name}/state").json()

    def get_logs(self, lines: int = 100) -> str:
        """The last `lines` lines of the service's console output (its wrapper's stdout and
        stderr), oldest first, as one string; they are kept after a crash too."""
        body = self.workspace.request("GET", f"/api/services/{self.name}/logs", params={"lines": lines}).json()
        return "\n".join(entry["line"] for entry in body["lines"])


def _message_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return _query_error_message(error)
        return str(body.get("detail") or error or body)
    return str(body)


def _query_error_message(error: dict) -> str:
    """The query API's error with the innermost detail and its position, as users need it."""
    inner = error.get("innererror") or {}
    message = inner.get("message") or error.get("message", str(error))
    if inner.get("line") is not None and inner.get("pos") is not None and " line " not in message:
        message += f" (line {inner['line']}, position {inner['pos']})"
    return message
