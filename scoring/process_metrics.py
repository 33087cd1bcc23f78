"""The wrapper's processes for live metrics: each second the supervisor measures itself and its
scoring workers (CPU as psutil counts it, 100 per busy core, and resident memory) and posts them to
the collector's `POST /api/live/processes`, under the role and instance its telemetry carries, so
that the live view shows each instance's CPU and memory beside its requests.

The report names the service by its instrumentation key, as telemetry does. It is best effort: a
collector that is away misses a second, one without the route (404) is not asked again. Runs in the
supervisor; sampling a few processes costs well under a millisecond.
"""

from __future__ import annotations

import threading

import httpx
import psutil

from scoring.config import Settings
from scoring.sender import USER_AGENT, tls_verify

INTERVAL_S = 1.0


class ProcessMetrics:
    def __init__(self, settings: Settings, pid: int, interval: float = INTERVAL_S):
        self.url = str(settings.ingestion_endpoint).rstrip("/") + "/api/live/processes"
        self.headers = {"x-instrumentation-key": str(settings.instrumentation_key), "user-agent": USER_AGENT}
        self.identity = {"role": settings.service_name, "instance": settings.container_id}
        self.interval = interval
        self._root = psutil.Process(pid)
        self._known: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=2, trust_env=False, verify=tls_verify())
        self._thread = threading.Thread(target=self._run, name="process-metrics", daemon=True)

    def start(self) -> ProcessMetrics:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._client.close()

    def sample(self) -> list[dict]:
        """Each process now. psutil measures CPU between two calls on the same Process object, so
        the objects are kept from one second to the next (a new worker reads 0 in its first)."""
        found = []
        try:
            processes = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return found
        for process in processes:
            known = self._known.setdefault(process.pid, process)
            try:
                with known.oneshot():
                    found.append({"pid": known.pid, "name": known.name(), "cpuPercent": known.cpu_percent(),
                                  "memoryBytes": known.memory_info().rss})
            except psutil.Error:
                self._known.pop(process.pid, None)
        alive = {entry["pid"] for entry in found}
        self._known = {pid: p for pid, p in self._known.items() if pid in alive}
        return found

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            body = {**self.identity, "processes": self.sample()}
            try:
                response = self._client.post(self.url, headers=self.headers, json=body)
            except httpx.HTTPError:
                continue
            if response.status_code in (404, 405):
                return  # a collector without live metrics
