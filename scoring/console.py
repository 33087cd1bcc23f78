"""Console output: everything the worker processes write, kept and shipped as console log lines.

The supervisor reads its workers' stdout and stderr pipes, so it sees all of it (server lines, user
prints, library output, the traceback of an init() that brings a worker down, a segfault message),
whatever happens to the worker. Each chunk is written through to the supervisor's own stdout or
stderr (what a user sees in the terminal does not change) and split into lines, which are recorded
to a disk spool and shipped to the collector's console-log route by a Shipper.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

import orjson

from scoring.spool import Spool

MAX_LINE_CHARS = 16_384


class ConsoleRecorder:
    """Collects lines in memory and writes them to the console spool every `interval` seconds."""

    def __init__(self, spool: Spool | None, interval: float = 0.25):
        self.spool = spool
        self.interval = interval
        self._lines: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-spool", daemon=True)

    def start(self) -> ConsoleRecorder:
        self._thread.start()
        return self

    def add(self, stream: str, instance: str, text: str) -> None:
        if self.spool is None:
            return
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for start in range(0, max(len(text), 1), MAX_LINE_CHARS):
            record = {"time": now, "stream": stream, "instance": instance, "line": text[start:start + MAX_LINE_CHARS]}
            with self._lock:
                self._lines.append(orjson.dumps(record))

    def note(self, text: str) -> None:
        """A line of the supervisor's own, to its stderr and to the console log."""
        os.write(2, f"[insights] {text}\n".encode())
        self.add("stderr", "supervisor", f"[insights] {text}")

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines and self.spool is not None:
            self.spool.write(lines)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()


class PipeReader:
    """Reads one pipe of one worker to its end: tee to our own fd, lines to the recorder."""

    def __init__(self, fd: int, tee_fd: int, stream: str, instance: str, recorder: ConsoleRecorder):
        self.fd = fd
        self.tee_fd = tee_fd
        self.stream = stream
        self.instance = instance
        self.recorder = recorder
        self._partial = ""
        self.thread = threading.Thread(target=self._run, name=f"pipe-{instance}-{stream}", daemon=True)

    def start(self) -> PipeReader:
        self.thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            _write_all(self.tee_fd, chunk)
            self._lines(chunk.decode("utf-8", "replace"))
        if self._partial:
            self.recorder.add(self.stream, self.instance, self._partial)
        os.close(self.fd)

    def _lines(self, text: str) -> None:
        text = self._partial + text
        *complete, self._partial = text.split("\n")
        for line in complete:
            self.recorder.add(self.stream, self.instance, line.rstrip("\r"))
        if len(self._partial) > MAX_LINE_CHARS:  # a very long line without newline: record it in pieces
            self.recorder.add(self.stream, self.instance, self._partial)
            self._partial = ""


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            written = os.write(fd, data)
            data = data[written:]
    except OSError:
        pass  # our own terminal went away; the console log still gets the lines


def wait_for(threads: list[threading.Thread], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
