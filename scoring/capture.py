"""Capture: turning what score.py does into telemetry items linked to their request.

The request being served is known per thread (run() executes in a pool thread that sets it), so a
print, a log record, an outgoing call or an exception made while serving carries that request's
operation id and request id. `sys.stdout`/`sys.stderr` are replaced at the stream level, so
`print(file=sys.stderr)`, `sys.stdout.write` and library writes are captured too, not only
`builtins.print`; each completed line group (one print) is one trace, `Contents` parsed when it is a
JSON object or array. Text written by logging handlers is not captured twice: the log record
itself is the trace.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from contextlib import contextmanager

import orjson

from scoring import envelopes
from scoring.envelopes import Identity, Operation
from scoring.telemetry_queue import TelemetryQueue

_STANDARD_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_SEVERITY = ((logging.CRITICAL, 4), (logging.ERROR, 3), (logging.WARNING, 2), (logging.INFO, 1))
_INTERNAL_LOGGERS = ("scoring", "uvicorn", "opentelemetry")


class Capture:
    def __init__(self, identity: Identity, queue: TelemetryQueue, log_response: bool = False):
        self.identity = identity
        self.queue = queue
        self.log_response = log_response
        self._local = threading.local()

    # -- the current request --------------------------------------------------------------------

    @property
    def operation(self) -> Operation | None:
        return getattr(self._local, "operation", None)

    @contextmanager
    def scoped(self, operation: Operation):
        previous = self.operation
        self._local.operation = operation
        try:
            yield
        finally:
            self._local.operation = previous

    def in_logging(self) -> bool:
        return getattr(self._local, "in_logging", False)

    @contextmanager
    def logging_call(self):
        previous = self.in_logging()
        self._local.in_logging = True
        try:
            yield
        finally:
            self._local.in_logging = previous

    # -- items ----------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Off while the service's enable_app_insights is off and no switch may turn it on (with a
        live switch, items are built and held briefly: see telemetry_queue.py)."""
        return self.queue.capturing

    def request(self, operation: Operation, **fields) -> None:
        if not self.queue.capturing:
            return
        self.queue.put(envelopes.request(self.identity, operation, **fields))

    def printed(self, stream: str, text: str) -> None:
        """One print()/write group -> a STDOUT or STDERR trace."""
        if not self.queue.capturing:
            return
        operation = self.operation
        properties = self.identity.properties(operation, {"Contents": contents_of(text)})
        severity = 1 if stream == "STDOUT" else 2
        self.queue.put(envelopes.message(self.identity, operation, stream, severity, time.time(), properties))

    def log_record(self, record: logging.LogRecord) -> None:
        if not self.queue.capturing:
            return
        operation = self.operation
        if record.exc_info and record.exc_info[1] is not None:
            extra = {**_record_properties(record), "message": record.getMessage()}
            self.exception(record.exc_info[1], severity=_severity(record.levelno), extra=extra, time_s=record.created)
            return
        properties = self.identity.properties(operation, _record_properties(record))
        self.queue.put(envelopes.message(self.identity, operation, record.getMessage(), _severity(record.levelno),
                                         record.created, properties))

    def exception(self, error: BaseException, severity: int = 3, extra: dict | None = None,
                  frames: list | None = None, time_s: float | None = None) -> None:
        if not self.queue.capturing:
            return
        operation = self.operation
        properties = self.identity.properties(operation, extra)
        self.queue.put(envelopes.exception(self.identity, operation, error, time_s or time.time(), properties,
                                           severity=severity, frames=frames))

    def line(self, item: bytes) -> None:
        """An envelope built elsewhere (dependencies)."""
        self.queue.put(item)


def contents_of(text: str) -> object:
    """The printed text, or the object it spells when it is a JSON object or array."""
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
        try:
            return orjson.loads(stripped)
        except orjson.JSONDecodeError:
            pass
    return text


def _severity(levelno: int) -> int:
    for threshold, level in _SEVERITY:
        if levelno >= threshold:
            return level
    return 0


def _record_properties(record: logging.LogRecord) -> dict:
    properties = {
        "logger_name": record.name,
        "level": record.levelname,
        "module": record.module,
        "fileName": record.pathname,
        "lineNumber": str(record.lineno),
    }
    for key, value in record.__dict__.items():
        if key in _STANDARD_RECORD_FIELDS or key.startswith("_"):
            continue
        if key == "custom_dimensions" and isinstance(value, dict):
            properties.update({str(k): v for k, v in value.items()})
        else:
            properties[key] = value if isinstance(value, (str, int, float, bool, list, dict)) or value is None else str(value)
    return properties


class CapturedStream:
    """Stands in for sys.stdout or sys.stderr: writes go to the console as before, and each
    completed write group (up to a newline) also becomes one trace."""

    def __init__(self, underlying, name: str, capture: Capture):
        self._underlying = underlying
        self._name = name
        self._capture = capture
        self._local = threading.local()

    def write(self, text) -> int:
        written = self._underlying.write(text)
        if not text or self._capture.in_logging():
            return written
        pending = getattr(self._local, "pending", None)
        if text.endswith("\n"):
            if pending:
                pending.append(text)
                text = "".join(pending)
                pending.clear()
            self._record(text[:-1])
        elif pending is None:
            self._local.pending = [text]
        else:
            pending.append(text)
        return written

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._underlying.flush()
        pending = getattr(self._local, "pending", None)
        if pending and not self._capture.in_logging():
            text = "".join(pending)
            pending.clear()
            self._record(text)

    def _record(self, text: str) -> None:
        try:
            self._capture.printed(self._name, text)
        except Exception:  # telemetry must never break the user's print
            pass

    def __getattr__(self, name):
        return getattr(self._underlying, name)


def install(capture: Capture) -> None:
    """Replace the standard streams and hook logging; called before score.py is imported."""
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    sys.stdout = CapturedStream(sys.__stdout__, "STDOUT", capture)
    sys.stderr = CapturedStream(sys.__stderr__, "STDERR", capture)
    original = logging.Logger.callHandlers

    def call_handlers(logger, record):
        """Every record that passed the user's levels becomes a trace, once (this runs once per
        record, whatever handlers exist), and the handlers' console text is not captured again.
        Hooking here rather than adding a root handler keeps logging.basicConfig() and the
        last-resort stderr handler working as the user expects."""
        if not record.name.startswith(_INTERNAL_LOGGERS):
            try:
                capture.log_record(record)
            except Exception:  # telemetry must never break the user's logging
                pass
        with capture.logging_call():
            original(logger, record)

    logging.Logger.callHandlers = call_handlers
