"""Compilation in a sandbox: worker processes that translate KQL under the query's deadline and a
memory cap the operating system enforces.

Translating is CPU-bound Python (ANTLR's parser, duckdb-kql's lowering, our bridges) whose cost
the query text chooses: a long `or` chain costs seconds of parsing, and nesting some functions
makes the translator's SQL grow exponentially (eight nested `tostring` calls need gigabytes). In
a thread of the collector such work can neither be stopped at the deadline nor kept from taking
the machine's memory, and it holds the interpreter lock that the event loop (ingestion) needs.
In a worker process it is killed at the deadline, and an address-space limit turns runaway
growth into a MemoryError there, reported as a limit of the query, while the collector goes on.

Workers are started with the collector (or on first use) from a fork server (see `_context`),
warm the parser up, cap their address space at what they then use plus `MEMORY_BYTES`, and
answer one query at a time. A worker that ran out of time or memory, or died, is replaced in the
background.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import multiprocessing.util  # its exit handler (which ends the workers) must run after ours
import os
import queue
import threading
import time
from datetime import datetime
from typing import Any

from .budget import Budget, out_of_time
from .errors import EXECUTION, LIMIT, KqlError

log = logging.getLogger(__name__)

WORKERS = max(1, min(2, os.cpu_count() or 1))
MEMORY_BYTES = 256 * 2**20
"""Address space a worker may take beyond what it holds when idle and warm."""
_START_TIMEOUT_S = 120.0

_WARM_UP = (
    "traces | where message contains 'x' and severityLevel > 1 or customDimensions has 'y' "
    "| summarize count(), percentile(todouble(customDimensions.ms), 95) by bin(timestamp, 5m), cloud_RoleName "
    "| order by timestamp desc | take 10",
    "requests | where success == false | join kind=leftouter (exceptions | project operation_Id, type) "
    "on operation_Id | extend d = strcat(name, '/', tostring(duration)) | project-reorder d",
    "let n = 3; range x from 1 to n step 1 | extend y = iff(x > 1, dynamic([1, 2]), dynamic({'a': 1})) "
    "| mv-expand y | search 'a' | parse tostring(y) with '[' v:long ']' | render timechart",
)


class Sandbox:
    """A few compile workers; `translate` borrows one for one query."""

    def __init__(self, workers: int = WORKERS, memory_bytes: int = MEMORY_BYTES):
        self._size = workers
        self._memory_bytes = memory_bytes
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = False
        self._closing = False

    def translate(self, text: str, now: datetime | None, budget: Budget) -> tuple:
        """The fields of translation.translate(text, now), run in a worker within *budget*."""
        self.start()
        worker = self._borrow(budget)
        try:
            worker.connection.send((text, now))
            if not worker.connection.poll(max(budget.remaining(), 0)):
                self._replace(worker, "it ran out of time")
                raise out_of_time(budget.timeout_s, "compiling it")
            status, payload = worker.connection.recv()
        except (EOFError, OSError):
            self._replace(worker, "it stopped")
            raise KqlError(LIMIT, "the query could not be compiled: the compiler ran out of memory or "
                                  "stack on it (simplify the query)") from None
        if status == "retire":
            self._replace(worker, "it ran out of memory")
        else:
            self._idle.put(worker)
        if status == "ok":
            return payload
        raise KqlError(*payload)

    def _borrow(self, budget: Budget) -> _Worker:
        """An idle worker that is alive (one that died while idle is replaced, not blamed on this
        query), waiting for one until the deadline."""
        while True:
            try:
                worker = self._idle.get(timeout=budget.check("waiting for a compiler"))
            except queue.Empty:
                raise out_of_time(budget.timeout_s, "waiting for a compiler") from None
            if worker.process.is_alive():
                return worker
            self._replace(worker, "it died while idle")

    def start(self) -> None:
        """Start the workers (in the background) unless they are started already."""
        with self._lock:
            if self._started:
                return
            self._started = True
        for _ in range(self._size):
            self._spawn()

    def _spawn(self) -> None:
        """Start a worker; it joins the idle ones once warm (in a thread: that takes a second)."""
        threading.Thread(target=self._add_when_ready, name="kql-compiler-start", daemon=True).start()

    def _add_when_ready(self, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            worker = None
            try:
                worker = _Worker(self._memory_bytes)
                if not worker.connection.poll(_START_TIMEOUT_S) or worker.connection.recv()[0] != "ready":
                    raise RuntimeError(f"not ready within {_START_TIMEOUT_S:g} s")
            except Exception as error:  # noqa: BLE001  (logged; a query waiting for it names the time)
                if self._closing:
                    return
                log.warning("a KQL compile worker did not start (attempt %d of %d): %r", attempt, attempts, error)
                if worker is not None:
                    worker.stop()
                time.sleep(1)
                continue
            self._idle.put(worker)
            return

    def close(self) -> None:
        """At exit: stop the idle workers, and starting new ones quietly (the process is ending)."""
        self._closing = True
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return

    def _replace(self, worker: _Worker, why: str) -> None:
        log.warning("replacing a KQL compile worker: %s", why)
        worker.stop()
        self._spawn()


_CONTEXT: Any = None


def _context() -> Any:
    """Forkserver: workers fork from a clean single-threaded server that has the translator
    imported (a worker is up in a few milliseconds, not a second), and neither inherit the
    collector's threads and DuckDB nor re-run its `__main__` (so no preload of `__main__`).
    Spawn where there is no forkserver."""
    global _CONTEXT
    if _CONTEXT is None:
        context: Any
        try:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["collector.kql.translation"])
        except ValueError:
            context = multiprocessing.get_context("spawn")
        _CONTEXT = context
    return _CONTEXT


class _Worker:
    def __init__(self, memory_bytes: int):
        context = _context()
        self.connection, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, memory_bytes), name="kql-compiler",
                                       daemon=True)
        self.process.start()
        child.close()

    def stop(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


def serve(connection, memory_bytes: int) -> None:
    """The worker's loop: (text, now) in, ("ok", the Translation's fields) or ("error", the
    KqlError's) out;
    "retire" after a MemoryError, whose aftermath a fresh process is the sure cure for."""
    from .translation import translate  # here, not at the top: only the worker runs it

    for text in _WARM_UP:
        try:
            translate(text, None)
        except KqlError:
            pass
    _cap_address_space(memory_bytes)
    connection.send(("ready", None))
    while True:
        try:
            text, now = connection.recv()
        except (EOFError, OSError):
            return
        try:
            done = translate(text, now)
            answer: tuple = ("ok", (done.sql, done.parameters, done.visualization, done.tables, done.lookup))
        except KqlError as error:
            answer = ("error", (error.code, error.message, error.line, error.pos))
        except MemoryError:
            answer = ("retire", (LIMIT, "compiling the query needs more memory than it is allowed "
                                        f"({memory_bytes >> 20} MiB)", None, None))
        except RecursionError:
            answer = ("error", (LIMIT, "the query is nested too deeply to compile", None, None))
        except Exception:  # noqa: BLE001  (a translator bug: named in the log, a 400 for the query)
            log.exception("the KQL translator failed on a query")
            answer = ("error", (EXECUTION, "the query could not be compiled", None, None))
        connection.send(answer)
        if answer[0] == "retire":
            return


def _cap_address_space(extra: int) -> None:
    """Limit this process's address space to what it uses now plus *extra* (Linux; elsewhere
    the deadline alone bounds a compilation)."""
    try:
        import resource

        with open("/proc/self/status") as status:
            size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (size + extra, size + extra))
    except (ImportError, OSError, StopIteration, ValueError):
        log.info("the KQL compile worker runs without a memory cap on this platform")


SANDBOX = Sandbox()
atexit.register(SANDBOX.close)
