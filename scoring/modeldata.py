"""Model data collection in a worker: what `azureml.ai.monitoring.Collector` needs to run, the
request it belongs to, and payload logging of request/response bodies.

An Azure score.py builds `Collector(name="model_inputs")` in init(); with no configuration the
library raises there. Before score.py loads, `install` points the library at the supervisor's
receiver (scoring/modeldata_receiver.py) through its own environment variables (AZUREML_MDC_*);
once score.py is imported (`after_load`, before init()), the library's correlation context is
swapped for one that carries the request being served (a script that imports the library only
inside init() keeps the library's own uuid4 correlation ids): its
x-request-id as the correlation id and its operation_Id in a `ce-operation-id` header, so that
`modelData` joins `requests` (Azure's default is a fresh uuid4, unrelated to the request). A user's
own AZUREML_MDC_CONFIG_PATH or AZUREML_MDC_ENABLED is left as it is.

Items built here (payload logging, the legacy ModelDataCollector) go to the same spool folder the
receiver writes to, through a queue like telemetry's, so nothing here waits on the network.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

import orjson

from scoring.capture import Capture
from scoring.config import Settings
from scoring.spool import Spool
from scoring.telemetry_queue import TelemetryQueue

PORT_VAR = "INSIGHTS_MODELDATA_PORT"
"""Set by the supervisor for its workers: the port its receiver listens on (127.0.0.1)."""
SETTINGS_FILE = "collection.json"
SPOOL_FOLDER = "modeldata"
AGENT = "insights-scoring/0.1.0"


def spool_dir(settings: Settings) -> Path:
    return Path(settings.spool_dir) / SPOOL_FOLDER


class CollectionFile:
    """The service's payload logging as the supervisor last heard it; re-read at most once a second."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / SETTINGS_FILE
        self.collect: frozenset[str] = frozenset()
        self.sample_rate = 1.0
        self._checked = 0.0
        self._mtime: int | None = None

    def current(self) -> tuple[frozenset[str], float]:
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            self._reload()
        return self.collect, self.sample_rate

    def _reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime == self._mtime:
                return
            state = json.loads(self.path.read_text())
            self._mtime = mtime
            self.collect = frozenset(str(c) for c in state.get("collect", []))
            self.sample_rate = float(state.get("sample_rate", 1.0))
        except (OSError, ValueError, TypeError, AttributeError):
            return


class ModelData:
    """The worker's side of collection: builds items and queues them for the spool."""

    def __init__(self, queue: TelemetryQueue, capture: Capture | None, collection: CollectionFile):
        self.queue = queue
        self.capture = capture
        self.collection = collection

    def operation(self):
        return self.capture.operation if self.capture is not None else None

    def item(self, collection: str, data: object, *, correlation_id: str | None = None,
             operation_id: str | None = None, time_s: float | None = None, data_type: str | None = None,
             model_version: str | None = None) -> None:
        """Queue one collected item (data: the rows as JSON-able values, or JSON text)."""
        operation = self.operation()
        item = {
            "collection": collection,
            "time": time.time() if time_s is None else time_s,
            "correlationId": correlation_id or (operation.request_id if operation else None) or str(uuid.uuid4()),
            "operationId": operation_id or (operation.operation_id if operation else None),
            "modelVersion": model_version,
            "dataType": data_type,
            "agent": AGENT,
            "data": data,
        }
        self.queue.put(orjson.dumps({k: v for k, v in item.items() if v is not None},
                                    option=orjson.OPT_SERIALIZE_NUMPY, default=str))

    def payloads(self, request_body: bytes, response_body: bytes, operation) -> None:
        """Payload logging: the request and response bodies of a sampled request, as the service asks."""
        collect, rate = self.collection.current()
        if not collect or (rate < 1.0 and random.random() >= rate):
            return
        ids = {"correlation_id": operation.request_id, "operation_id": operation.operation_id}
        if "request" in collect:
            self.item("request", _body(request_body), data_type="application/json", **ids)
        if "response" in collect:
            self.item("response", _body(response_body), data_type="application/json", **ids)

    def close(self) -> None:
        """At the worker's end: the library's queued posts are sent (the receiver outlives the
        workers), then what is queued here goes to the spool."""
        library = sys.modules.get("azureml.ai.monitoring.init")
        if library is not None:
            try:
                library.teardown(wait_for_flush=True)
            except Exception:  # the library's own shutdown must not stop ours
                pass
        self.queue.close()


def _body(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


current: ModelData | None = None
"""The worker's ModelData once installed: the legacy ModelDataCollector finds it here."""


def install(settings: Settings, capture: Capture | None, environ=os.environ) -> ModelData | None:
    """Before score.py loads: configure azureml-ai-monitoring for our receiver, and start the queue."""
    global current
    port = environ.get(PORT_VAR)
    if not port:
        return None
    if not (environ.get("AZUREML_MDC_CONFIG_PATH") or environ.get("AZUREML_MDC_ENABLED")):
        environ["AZUREML_MDC_ENABLED"] = "true"
        environ["AZUREML_MDC_HOST"] = "127.0.0.1"
        environ["AZUREML_MDC_PORT"] = port
    queue = TelemetryQueue(Spool(spool_dir(settings)), capacity=10_000, interval=0.5).start()
    current = ModelData(queue, capture, CollectionFile(Path(settings.spool_dir)))
    return current


def after_load() -> None:
    """Once score.py is imported (before its init()): if it uses azureml-ai-monitoring, make the
    library's correlation context carry the request being served. Not earlier: the library imports
    pandas, which a worker whose script does not use it should not pay for."""
    if current is not None and "azureml.ai.monitoring.collector_json" in sys.modules:
        _request_context(current)


def _request_context(model_data: ModelData) -> None:
    from azureml.ai.monitoring import collector_json
    from azureml.ai.monitoring.context import BasicCorrelationContext

    def request_context():
        operation = model_data.operation()
        if operation is None:
            return BasicCorrelationContext(timestamp=time.time())  # type: ignore[arg-type]
        return BasicCorrelationContext(id=operation.request_id, timestamp=time.time(),  # type: ignore[arg-type]
                                       headers={"operation-id": operation.operation_id})

    collector_json.get_context = request_context
