"""The Python SDK, in the shape Azure ML users know:

    from collector.client import Workspace, Webservice
    ws = Workspace("http://127.0.0.1:8080", api_key="...")
    svc = Webservice(ws, "my-service")
    svc.update(enable_app_insights=True)

Every error a user sees is an InsightsError: CollectorUnreachable when nothing answers at the URL,
ApiError (with the HTTP status and the collector's message) when the collector said no.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import httpx

from collector import admin_key

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_DATA_DIR = "./insights-data"

__all__ = ["Workspace", "Webservice", "InsightsError", "CollectorUnreachable", "ApiError"]


class InsightsError(Exception):
    """Anything that went wrong talking to the collector."""


class CollectorUnreachable(InsightsError):
    pass


class ApiError(InsightsError):
    def __init__(self, status_code: int, message: str):
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message


class Workspace:
    """A collector and the key to talk to it (the admin key, or one service's api key)."""

    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float = 60.0):
        self.url = (url or os.environ.get("INSIGHTS_URL") or DEFAULT_URL).rstrip("/")
        key = api_key or admin_key.read(Path(os.environ.get("INSIGHTS_DATA_DIR", DEFAULT_DATA_DIR)))
        headers = {"x-api-key": key} if key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise CollectorUnreachable(
                f"no collector answers at {self.url} ({error}); start one with `insights up`"
            ) from None
        if response.status_code >= 400:
            raise ApiError(response.status_code, _message_of(response))
        return response

    @property
    def webservices(self) -> dict[str, "Webservice"]:
        return {s["name"]: Webservice(self, s["name"], _data=s) for s in self.request("GET", "/api/services").json()}

    def create_service(self, name: str, enable_app_insights: bool = True) -> "Webservice":
        data = self.request("POST", "/api/services", json={"name": name, "enable_app_insights": enable_app_insights}).json()
        return Webservice(self, name, _data=data)

    def import_rows(self, service: str, lines: Iterable[bytes] | bytes) -> dict:
        body = lines if isinstance(lines, bytes) else b"".join(lines)
        return self.request("POST", f"/api/services/{service}/import", content=body).json()

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


class Webservice:
    """One service: its keys, its switch, its counters."""

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
