"""The supervisor's side of model data collection: the local `/modeldata/log` receiver that
azureml-ai-monitoring posts to, the poll of the service's payload logging settings, and the shipper
that sends collected items to the collector's POST /api/modeldata.

The receiver speaks the library's wire protocol (CloudEvents binary mode, reference
model-data-and-drift.md): `ce-type: azureml.inference.<collection>`, `ce-time`, `ce-x-request-id`,
`ce-model-version`, `ce-collect-data-type`, `ce-agent`, our `ce-operation-id`, and the DataFrame as
`to_json(orient="records")` in the body. It answers at once and queues the item for the spool
folder the workers' payload logging writes to too; the shipper sends from there like it sends
telemetry, so a collector outage loses nothing, and scoring never waits on it. It runs here, in the
process that never scores, so the library's posts cost the workers only their own side.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson

from scoring.config import Settings
from scoring.modeldata import PORT_VAR, SETTINGS_FILE, spool_dir
from scoring.sender import USER_AGENT, Shipper, TrackTransport, tls_verify
from scoring.spool import Spool
from scoring.telemetry_queue import TelemetryQueue

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 8 * 2**20
SPOOL_MAX_BYTES = 256 * 2**20
EVENT_PREFIX = "azureml.inference."


class ModelDataTransport(TrackTransport):
    """POST /api/modeldata, by instrumentation key; answered in the track protocol's shape."""

    path = "/api/modeldata"

    def headers(self) -> dict:
        return {"content-type": "application/x-ndjson", "x-instrumentation-key": self.ikey}


def item_from_event(headers, body: bytes) -> bytes | None:
    """One collected item from the library's POST; None when it is not a model data event."""
    event_type = headers.get("ce-type") or ""
    if not event_type.startswith(EVENT_PREFIX):
        return None
    try:
        moment: float | None = float(headers.get("ce-time") or "")
    except ValueError:
        moment = None
    item = {
        "collection": event_type[len(EVENT_PREFIX):],
        "time": moment,
        "correlationId": headers.get("ce-x-request-id"),
        "operationId": headers.get("ce-operation-id"),
        "modelVersion": headers.get("ce-model-version"),
        "dataType": headers.get("ce-collect-data-type"),
        "agent": headers.get("ce-agent"),
        "contentType": headers.get("content-type"),
        "data": body.decode("utf-8", "replace"),
    }
    return orjson.dumps({k: v for k, v in item.items() if v is not None})


class _Handler(BaseHTTPRequestHandler):
    queue: TelemetryQueue

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("content-length") or 0)
        if self.path.split("?")[0] != "/modeldata/log":
            self._answer(404, "not found")
            return
        if length > MAX_PAYLOAD_BYTES:
            self._answer(413, f"payload over {MAX_PAYLOAD_BYTES} bytes")
            return
        item = item_from_event(self.headers, self.rfile.read(length))
        if item is None:
            self._answer(400, "expected ce-type: azureml.inference.<collection>")
            return
        self.queue.put(item)
        self._answer(200, "accepted")

    def _answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's signature)
        return


class Receiver:
    """The local receiver, the settings poll and the shipper, started and stopped together."""

    def __init__(self, settings: Settings, root: Path):
        self.settings = settings
        self.root = root
        self.queue = TelemetryQueue(Spool(spool_dir(settings)), capacity=10_000, interval=0.5)
        handler = type("Handler", (_Handler,), {"queue": self.queue})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self._stop = threading.Event()
        self.shipper = Shipper("modeldata", Spool(spool_dir(settings)),
                               ModelDataTransport(settings.ingestion_endpoint, settings.instrumentation_key),
                               SPOOL_MAX_BYTES, poll_interval=0.5)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def worker_env(self) -> dict[str, str]:
        return {PORT_VAR: str(self.port)}

    def start(self) -> Receiver:
        self.queue.start()
        threading.Thread(target=self.server.serve_forever, name="modeldata-receiver", daemon=True).start()
        threading.Thread(target=self._poll_settings, name="modeldata-settings", daemon=True).start()
        self.shipper.start()
        return self

    def stop(self, flush_timeout_s: float) -> None:
        """After the workers are gone: what was received goes to disk, then is sent for a while."""
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.queue.close()
        self.shipper.stop(flush_timeout_s)

    def _poll_settings(self) -> None:
        url = self.settings.ingestion_endpoint.rstrip("/") + "/api/modeldata/settings"
        headers = {"x-instrumentation-key": self.settings.instrumentation_key, "user-agent": USER_AGENT}
        with httpx.Client(timeout=5, trust_env=False, verify=tls_verify()) as client:
            while True:
                self._fetch_settings(client, url, headers)
                if self._stop.wait(2.0):
                    return

    def _fetch_settings(self, client: httpx.Client, url: str, headers: dict) -> None:
        try:
            response = client.get(url, headers=headers)
        except httpx.HTTPError:
            return
        if response.status_code != 200:
            return
        state = response.json()
        path = self.root / SETTINGS_FILE
        text = json.dumps({"collect": state.get("collect", []), "sample_rate": state.get("sample_rate", 1.0)})
        try:
            if path.exists() and path.read_text() == text:
                return
            temporary = path.with_suffix(".tmp")
            temporary.write_text(text)
            os.replace(temporary, path)
        except OSError:
            log.warning("could not record the payload logging settings in %s", path)
