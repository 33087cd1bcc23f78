"""Autoscale: as many workers as the measured utilization asks for, between min and max.

Azure ML's settings and meaning: every `autoscale_refresh_seconds` the utilization is measured and
the worker count set so that it would sit at `autoscale_target_utilization` percent, within
`autoscale_min_replicas` and `autoscale_max_replicas`. Utilization is the busy fraction of
`max_concurrent_requests`: the average number of requests in progress per ready worker (queued
ones included, so a saturated worker reads above 100%) over the last period, from the workers'
own reports (scoring/load.py). The count wanted is ceil(ready workers x utilization / target).

Scaling up happens at once; scaling down waits until no worker is starting, so a spike's new
workers are not retired before they could help. Nothing is scaled during a reload. Each change is
a scale event: a console line, a customEvent named "Autoscale" (customDimensions: from, to,
utilization, target; customMeasurements: instances, previous_instances, utilization_percent) sent
like the workers' telemetry, and an entry in the wrapper's status file.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from scoring import load
from scoring.config import Settings
from scoring.envelopes import Identity
from scoring.pool import WorkerPool

EVENT_NAME = "Autoscale"


def initial_count(settings: Settings) -> int:
    if not settings.autoscale_enabled:
        return settings.worker_count
    return min(max(settings.worker_count, settings.autoscale_min_replicas), settings.autoscale_max_replicas)


def wanted(ready: int, utilization: float, settings: Settings) -> int:
    """Workers that would carry the measured load at the target utilization, within min and max."""
    target = settings.autoscale_target_utilization / 100
    count = math.ceil(round(ready * utilization / target, 6)) if utilization > 0 else 0
    return min(max(count, settings.autoscale_min_replicas), settings.autoscale_max_replicas)


class Autoscaler:
    def __init__(self, settings: Settings, pool: WorkerPool, on_event: Callable[[dict], None]):
        self.settings = settings
        self.pool = pool
        self.on_event = on_event
        self.events: deque[dict] = deque(maxlen=200)
        self.utilization: float | None = None
        self._previous: dict[int, tuple[float, float]] = {}
        self._next = time.monotonic() + settings.autoscale_refresh_seconds

    def tick(self) -> bool:
        """Measure and scale, once a refresh period has passed; whether it measured."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.settings.autoscale_refresh_seconds
        if self.pool.reloading:
            return False
        serving = self.pool.serving()
        rates = self._rates(serving)
        if not rates:
            return False
        self.utilization = sum(rates) / len(rates) / self.settings.max_concurrent_requests
        count = wanted(len(rates), self.utilization, self.settings)
        starting = len(serving) - sum(1 for w in serving if self.pool.is_ready(w))
        if count > len(serving) or (count < len(serving) and starting == 0):
            self._scale(len(serving), count)
        return True

    def _rates(self, serving) -> list[float]:
        """Requests in progress on average, per ready worker, since its last report read."""
        rates = []
        for member in serving:
            status = load.read_status(self.pool.status_dir, member.pid)
            if not status or not status.get("ready"):
                continue
            sample = (float(status["time"]), float(status["busy_s"]))
            before = self._previous.get(member.pid)
            self._previous[member.pid] = sample
            if before is not None and sample[0] > before[0]:
                rates.append((sample[1] - before[1]) / (sample[0] - before[0]))
        live = {w.pid for w in serving}
        self._previous = {pid: s for pid, s in self._previous.items() if pid in live}
        return rates

    def _scale(self, before: int, after: int) -> None:
        self.pool.scale_to(after)
        event = {"time": time.time(), "from": before, "to": after,
                 "utilization_percent": round((self.utilization or 0) * 100, 1),
                 "target_percent": self.settings.autoscale_target_utilization}
        self.events.append(event)
        self.on_event(event)


def event_envelope(settings: Settings, event: dict) -> bytes:
    """The scale event as a customEvent envelope, for the telemetry spool."""
    identity = Identity(settings.instrumentation_key or "", settings.service_name, settings.workspace_name,
                        settings.container_id)
    base = {"ver": 2, "name": EVENT_NAME,
            "properties": {**identity.base_properties, "from": str(event["from"]), "to": str(event["to"]),
                           "utilization": f"{event['utilization_percent']}%", "target": f"{event['target_percent']}%"},
            "measurements": {"instances": event["to"], "previous_instances": event["from"],
                             "utilization_percent": event["utilization_percent"]}}
    return identity.envelope("Event", "EventData", base, event["time"], None)
