"""Live metrics and the application map from Python:

    from collector.client import Workspace, LiveMetrics, application_map
    ws = Workspace()
    live = LiveMetrics(ws, "my-service")
    live.snapshot(seconds=60)                       # the last minute, second by second, and samples
    for second in live.stream(condition="duration > 500"):
        print(second["seconds"][-1]["requests"], second["samples"])
    application_map(ws, timespan="PT1H")            # {"nodes": [...], "edges": [...]}

The collector computes live metrics as telemetry arrives (the `live` extension); they are kept
in memory for ten minutes, so they are about now: for the past, query the stored telemetry.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import httpx
import orjson

from collector.client.errors import ApiError, CollectorUnreachable
from collector.client.workspace import AUTHENTICATION_STATUSES, Workspace, _message_of


class LiveMetrics:
    """One service's live metrics; `role`, `instance` and `condition` (e.g. `duration > 500`,
    `resultCode == "500"`) narrow what is counted as matching and sampled."""

    def __init__(self, workspace: Workspace, service: str):
        self.workspace = workspace
        self.service = service

    def _params(self, role: str | None, instance: str | None, condition: str | None) -> dict:
        params = {"service": self.service, "role": role, "instance": instance, "condition": condition}
        return {name: value for name, value in params.items() if value is not None}

    def snapshot(self, seconds: int = 60, role: str | None = None, instance: str | None = None,
                 condition: str | None = None) -> dict:
        """The last `seconds` seconds (oldest first), the instances' health and the latest samples."""
        params = {**self._params(role, instance, condition), "seconds": seconds}
        return self.workspace.request("GET", "/api/live", params=params).json()

    def stream(self, role: str | None = None, instance: str | None = None,
               condition: str | None = None) -> Iterator[dict]:
        """One dict per second as the collector completes it (the seconds since the last, the
        instances, the new samples), until the caller stops iterating."""
        workspace = self.workspace
        try:
            with workspace._http.stream("GET", "/api/live/stream", params=self._params(role, instance, condition),
                                        timeout=httpx.Timeout(30, read=30)) as response:
                if response.status_code >= 400:
                    response.read()
                    hint = workspace.connection.key_hint() if response.status_code in AUTHENTICATION_STATUSES else None
                    raise ApiError(response.status_code, _message_of(response), hint)
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        yield orjson.loads(line[5:])
        except httpx.TransportError as error:
            raise CollectorUnreachable(f"the live stream at {workspace.url} stopped ({error})") from None


def application_map(workspace: Workspace, timespan: str = "PT1H", services: Sequence[str] = ()) -> dict:
    """Roles (nodes with request rate, failure rate, p95, instances), external targets, and the
    dependencies between them (edges with calls, failures, durations) over `timespan`, for the
    services the key reads (narrowed to `services` when given)."""
    params: dict = {"timespan": timespan}
    if services:
        params["service"] = list(services)
    return workspace.request("GET", "/api/map", params=params).json()
