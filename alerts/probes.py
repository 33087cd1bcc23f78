"""Availability tests run by the collector: each enabled test, every `frequency`, calls its URL and
records the run as an `availabilityResults` row (name, location, success, duration, message, size),
which KQL, the dashboard and alert rules read like any other telemetry.

A run succeeds when the answer has the expected status and, if the test has one, contains the
content match, all within the timeout. The target is checked against the destination policy on
the addresses it resolves to at each run.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial
from urllib.parse import urlparse

import httpx
import orjson

from alerts.config import AlertsConfig
from alerts.ticking import Ticking, Work
from collector.destinations import forbidden_resolved
from collector.store.alerts import now
from collector.store.availability import Run, Test
from collector.store.database import Store

log = logging.getLogger(__name__)

TICK_S = 0.5


def probe(test: Test, started: datetime | None = None) -> Run:
    """Call the test's URL once and judge the answer."""
    spec = test.spec
    started = started or now()
    details: dict = {"url": spec["url"], "method": spec["method"]}
    size = None
    clock = time.perf_counter()
    try:
        parsed = urlparse(spec["url"])
        reason = forbidden_resolved(parsed.hostname or "", parsed.port)
        if reason:
            raise ValueError(f"refused by the destination policy: {reason}")
        body = spec["body"]
        content = body.encode() if isinstance(body, str) else (orjson.dumps(body) if body is not None else None)
        headers = {**({"Content-Type": "application/json"} if body is not None and not isinstance(body, str) else {}),
                   **spec["headers"]}
        with httpx.Client(timeout=spec["timeout"], follow_redirects=True) as client:
            response = client.request(spec["method"], spec["url"], content=content, headers=headers)
        size = len(response.content)
        details["statusCode"] = response.status_code
        success, message = _judge(spec, response)
    except (httpx.HTTPError, ValueError, OSError) as error:
        success, message = False, f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    duration = (time.perf_counter() - clock) * 1000
    return Run(started, str(uuid.uuid4()), test.name, spec["location"], success, duration, message, size, details)


def _judge(spec: dict, response: httpx.Response) -> tuple[bool, str]:
    if response.status_code != spec["expected_status"]:
        return False, f"status {response.status_code}, expected {spec['expected_status']}"
    if spec.get("content_match") and spec["content_match"] not in response.text:
        return False, f"the response does not contain {spec['content_match']!r}"
    return True, "Passed"


class ProbeRunner(Ticking):
    def __init__(self, store: Store, config: AlertsConfig, services: Callable[[], set[str]]):
        super().__init__("availability-tests", config.workers, TICK_S)
        self.store = store
        self.config = config
        self._services = services

    def due(self) -> Iterable[Work]:
        at, services = now(), self._services()
        for test in self.store.availability.tests():
            due = test.last_run is None or at - test.last_run >= timedelta(seconds=test.spec["frequency"])
            if test.spec.get("enabled", True) and due and test.service in services:
                yield (test.service, test.name), partial(self._run_test, test)

    def _run_test(self, test: Test) -> None:
        if not self.active():  # the alerts lease moved since this was handed out
            return
        try:
            self.store.availability.record(test.service, probe(test))
        except Exception:
            log.exception("availability test %s/%s could not be recorded", test.service, test.name)
