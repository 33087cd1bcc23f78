"""Model data collection and model monitors from Python:

    from collector.client import Workspace, ModelMonitor, upload_reference, set_payload_logging
    ws = Workspace()
    set_payload_logging(ws, "iris", ["request", "response"], sample_rate=0.1)
    upload_reference(ws, "iris", "training", "train.csv")
    monitor = ModelMonitor.create(ws, "iris", "inputs", reference="training", window_seconds=3600)
    result = monitor.run()                 # now, over the last window
    result["drifted_features"], monitor.results()

Every call goes through the collector's API (monitoring/api.py) with the workspace's key: the
admin key, or the service's own API key.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from collector.client.workspace import Workspace


class ModelMonitor:
    def __init__(self, workspace: Workspace, service: str, name: str, _data: dict | None = None):
        self.workspace = workspace
        self.service = service
        self.name = name
        self._data = _data

    def __repr__(self) -> str:
        return f"ModelMonitor({self.service!r}, {self.name!r})"

    @property
    def _path(self) -> str:
        return f"/api/services/{self.service}/monitors/{self.name}"

    @classmethod
    def create(cls, workspace: Workspace, service: str, name: str, **spec) -> ModelMonitor:
        """Create or replace a monitor; `spec` as the API takes it (collection, features,
        categorical, reference, window_seconds, signals, thresholds, small_window_rows, enabled)."""
        data = workspace.request("PUT", f"/api/services/{service}/monitors/{name}", json=spec).json()
        return cls(workspace, service, name, _data=data)

    @classmethod
    def list(cls, workspace: Workspace, service: str) -> list[ModelMonitor]:
        return [cls(workspace, service, m["name"], _data=m)
                for m in workspace.request("GET", f"/api/services/{service}/monitors").json()]

    @property
    def definition(self) -> dict:
        if self._data is None:
            self._data = self.workspace.request("GET", self._path).json()
        return self._data

    def run(self, start: datetime | None = None, end: datetime | None = None) -> dict:
        """Run now over [start, end) (default: the window ending now); the run's results."""
        params = {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v is not None}
        return self.workspace.request("POST", f"{self._path}/run", params=params).json()

    def results(self, since: datetime | None = None) -> list[dict]:
        params = {"since": since.isoformat()} if since else {}
        return self.workspace.request("GET", f"{self._path}/results", params=params).json()["results"]

    def delete(self) -> None:
        self.workspace.request("DELETE", self._path)


def upload_reference(workspace: Workspace, service: str, name: str, path: str | os.PathLike, format: str | None = None,  # noqa: A002
                     columns: list[str] | None = None, categorical: list[str] | None = None) -> dict:
    """Upload a CSV, Parquet or JSON lines file as a monitor reference (streamed, not read into
    memory); its summary (rows, and per column the inferred type)."""
    file = Path(path)
    params = {"filename": file.name}
    if format:
        params["format"] = format
    if columns:
        params["columns"] = ",".join(columns)
    if categorical:
        params["categorical"] = ",".join(categorical)
    with open(file, "rb") as handle:
        return workspace.request("PUT", f"/api/services/{service}/monitor-references/{name}", params=params,
                                 content=_chunks(handle)).json()


def _chunks(handle, size: int = 2**20):
    while chunk := handle.read(size):
        yield chunk


def set_payload_logging(workspace: Workspace, service: str, collect: list[str], sample_rate: float = 1.0) -> dict:
    """Log request and/or response bodies of a share of the service's requests ([] turns it off)."""
    return workspace.request("PUT", f"/api/services/{service}/collection",
                             json={"collect": collect, "sample_rate": sample_rate}).json()


def payload_logging(workspace: Workspace, service: str) -> dict:
    return workspace.request("GET", f"/api/services/{service}/collection").json()
