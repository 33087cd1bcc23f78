"""A job's telemetry, through the scoring wrapper's own stages: envelopes -> queue -> spool -> sender.

The shape is the wrapper's: worker processes capture the script's prints, logging and exceptions
(scoring.capture) into a TelemetryQueue that writes to the job's disk spool; the orchestrator, which
never runs user code, adds what only it knows (one `requests` row per mini-batch attempt, timeouts
and crashes as `exceptions`, progress as `customMetrics`) and is the only process that sends, with
the wrapper's Shipper. Every item carries the job's operation_Id and `customDimensions.job`, and the
items of one attempt have that attempt's request as their parent; outgoing HTTP calls from init() and
run() are `dependencies` (scoring.dependencies), under the attempt's request.

The workers' console output goes where the wrapper's does too: the orchestrator reads their stdout
and stderr pipes, writes each chunk to the worker's processNNN.stdout.txt and records the lines for
the collector's console log (POST /api/logs), so `insights logs SERVICE` shows a job's output, framed
by the orchestrator's own "[insights] batch job ..." lines. Console lines are kept whether or not the
service's App Insights switch is on, as the wrapper's are.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from pathlib import Path

from scoring import capture as capture_module
from scoring import envelopes
from scoring.batch.inputs import MiniBatch
from scoring.batch.settings import JobSettings
from scoring.capture import Capture
from scoring.console import ConsoleRecorder, PipeReader, wait_for
from scoring.envelopes import Identity, Operation
from scoring.modeldata_receiver import Receiver
from scoring.sender import ConsoleTransport, Shipper, TrackTransport
from scoring.spool import Spool
from scoring.switch import SwitchFile, SwitchPoller
from scoring.telemetry_queue import TelemetryQueue

REQUEST_NAME = "run(mini_batch)"
SPOOL_MAX_BYTES = 256 * 2**20
CONSOLE_SPOOL_MAX_BYTES = 64 * 2**20
READER_GRACE_S = 2.0
"""How long the end of a job waits for the workers' pipes to drain (a child process the script
started may hold them open)."""
MAX_KEYS_PER_ROW = 100
"""customDimensions.inputs lists a mini-batch's files up to this many (the rest are counted)."""

STATUS_CODES = {"succeeded": 200, "timed out": 408, "failed": 500, "crashed": 500}


def identity(settings: JobSettings) -> Identity:
    """The wrapper's Identity, with the job's name among the properties every item carries."""
    found = Identity(settings.instrumentation_key, settings.service_name or "batch", "", settings.node)
    found.base_properties["job"] = settings.job
    return found


def job_operation(settings: JobSettings) -> Operation:
    return Operation(settings.operation_id, parent_id=settings.operation_id, name=f"batch {settings.job}")


def attempt_operation(settings: JobSettings, span_id: str) -> Operation:
    """What a mini-batch attempt's prints, logs and exceptions hang under: its request row."""
    return Operation(settings.operation_id, parent_id=span_id, name=f"batch {settings.job}", request_id=span_id)


def new_span_id() -> str:
    return secrets.token_hex(8)


def telemetry_dir(settings: JobSettings) -> Path:
    return Path(settings.spool_dir) / "telemetry"


def console_dir(settings: JobSettings) -> Path:
    return Path(settings.spool_dir) / "console"


def install_worker_capture(settings: JobSettings) -> Capture | None:
    """In a worker, before score.py is imported: prints and logging become traces and outgoing HTTP
    calls `dependencies`, as in the wrapper."""
    if not settings.sends_telemetry:
        return None
    switch = SwitchFile(Path(settings.spool_dir))
    queue = TelemetryQueue(Spool(telemetry_dir(settings)), interval=0.5, switch=switch).start()
    queue.enabled = switch()
    capture = Capture(identity(settings), queue)
    capture_module.install(capture)
    from scoring import dependencies  # OpenTelemetry: only in the workers of a job that sends telemetry

    dependencies.install(capture)
    return capture


class JobTelemetry:
    """The orchestrator's side: its own items, and the one Shipper that sends the whole spool."""

    def __init__(self, settings: JobSettings):
        self.settings = settings
        self.identity = identity(settings)
        self.operation = job_operation(settings)
        root = Path(settings.spool_dir)
        spool = Spool(telemetry_dir(settings))
        self.poller = SwitchPoller(settings.ingestion_endpoint, settings.instrumentation_key, root)
        self.queue = TelemetryQueue(spool, interval=0.2, switch=SwitchFile(root))
        self.shipper = Shipper("telemetry", spool, TrackTransport(settings.ingestion_endpoint, settings.instrumentation_key),
                               SPOOL_MAX_BYTES, poll_interval=0.2)
        console = Spool(console_dir(settings))
        self.console = ConsoleRecorder(console, interval=0.2)
        self.console_shipper = Shipper("console", console, ConsoleTransport(settings.ingestion_endpoint,
                                                                            settings.instrumentation_key),
                                       CONSOLE_SPOOL_MAX_BYTES, poll_interval=0.2)
        self.readers: list[PipeReader] = []
        self.modeldata = Receiver(settings, root)  # the workers' model data collection (scoring/modeldata.py)

    def start(self) -> JobTelemetry:
        import httpx

        with httpx.Client(timeout=2, trust_env=False) as client:
            self.poller.poll_once(client)  # workers start with the service's current switch
        self.poller.start()
        self.queue.start()
        self.shipper.start()
        self.console.start()
        self.console_shipper.start()
        self.modeldata.start()
        return self

    def console_pipes(self, path: Path, instance: str) -> tuple[int, int]:
        """Write ends for a new worker's stdout and stderr (the caller closes them once the worker has
        them): what comes through is appended to `path` and recorded as `instance`'s console lines."""
        ends = []
        for stream in ("stdout", "stderr"):
            read_end, write_end = os.pipe()
            tee = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self.readers.append(_TeeToFile(read_end, tee, stream, instance, self.console).start())
            ends.append(write_end)
        return ends[0], ends[1]

    def note(self, text: str) -> None:
        """A line of the orchestrator's own in the console log (not on the terminal: the CLI says it)."""
        self.console.add("stderr", f"{self.settings.job}/master", f"[insights] {text}")

    def attempt(self, batch: MiniBatch, *, span_id: str, attempt: int, final: bool, outcome: str, process: str,
                start_s: float, duration_s: float, run_s: float | None, succeeded: int, failed: int) -> None:
        """One `requests` row per attempt at a mini-batch; `final` marks the attempt that settled it."""
        properties = self.identity.properties(None, {
            "mini_batch": str(batch.id), "attempt": str(attempt), "final": str(final), "outcome": outcome,
            "process": process, "node": self.settings.node, "items_total": str(len(batch.files)),
            "items_succeeded": str(succeeded), "items_failed": str(failed),
            "run_ms": f"{run_s * 1000:.3f}" if run_s is not None else "",
            "inputs": list(batch.keys[:MAX_KEYS_PER_ROW]),
        })
        self.queue.put(envelopes.request(
            self.identity, self.operation, span_id=span_id, name=REQUEST_NAME,
            url=f"batch://{self.settings.job}/mini_batch/{batch.id}", status=STATUS_CODES[outcome],
            start_s=start_s, duration_s=duration_s, properties=properties))

    def exception(self, error: BaseException, span_id: str | None, extra: dict) -> None:
        """A failure the orchestrator saw (a timeout, a worker that died, the job's own end)."""
        operation = attempt_operation(self.settings, span_id) if span_id else self.operation
        properties = self.identity.properties(operation, extra)
        self.queue.put(envelopes.exception(self.identity, operation, error, time.time(), properties))

    def progress(self, counts: dict[str, int], status: str, result: str) -> None:
        """The job's counters as customMetrics (the latest of each is the job's state)."""
        properties = self.identity.properties(None, {"status": status, "result": result, "output": self.settings.output})
        now = time.time()
        for name, value in counts.items():
            self.queue.put(envelopes.metric(self.identity, name, float(value), now, properties, self.operation))

    def close(self) -> tuple[int, str]:
        """Send what is left (both spools at once, for at most flush_timeout_s); (items and console
        lines still unsent, where they wait). Called once the workers are gone."""
        self.poller.stop()
        wait_for([reader.thread for reader in self.readers], READER_GRACE_S)
        self.queue.close()
        self.console.close()
        stoppers = [threading.Thread(target=shipper.stop, args=(self.settings.flush_timeout_s,))
                    for shipper in (self.shipper, self.console_shipper, self.modeldata)]
        for thread in stoppers:
            thread.start()
        wait_for(stoppers, self.settings.flush_timeout_s + 5)
        items = self.shipper.spool.totals()[0] + self.console_shipper.spool.totals()[0] + \
            self.modeldata.shipper.spool.totals()[0]
        if not items:
            shutil.rmtree(self.settings.spool_dir, ignore_errors=True)
        return items, self.settings.spool_dir


class _TeeToFile(PipeReader):
    """The wrapper's pipe reader, teeing into the worker's stdout file, which it closes at the pipe's end."""

    def _run(self) -> None:
        try:
            super()._run()
        finally:
            os.close(self.tee_fd)
