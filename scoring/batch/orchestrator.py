"""The job's master role: N worker processes, one mini-batch each at a time, retries, timeouts, the
error threshold, the output file and the logs.

One thread does the scheduling, around a selector on the workers' answer pipes, so there is no
locking and the cost per mini-batch is a few writes and reads (bench/batch.py keeps it measured).
A mini-batch that raises, runs past --timeout or takes its worker down is retried on another
attempt, at the back of the queue, until --max_retries retries are spent; then its files count as
failed items. A worker that times out is killed (its stack dumped to user/error/ first, so the user
sees where run() was stuck) and replaced, and the new process runs init() again: init() runs once
per process. Problems no retry can fix (the script cannot be loaded, init() raised or ran past
--init_timeout, run() returned neither a DataFrame nor a list) stop the job at once with that message.

SIGTERM cancels the job gracefully: no new mini-batch is scheduled, the ones in flight finish or run
into --timeout (a failed one is not retried), then the overview and logs are written with the result
"canceled", the telemetry is flushed and the job exits with 143. A second SIGTERM stops at once,
killing what is in flight. The workers ignore SIGTERM, so a signal to the whole process group (a
terminal, `kill -- -PGID`) is handled the same way.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

from scoring.batch import protocol
from scoring.batch.inputs import MiniBatch
from scoring.batch.layout import Layout, stamp
from scoring.batch.monitor import ResourceMonitor
from scoring.batch.overview import CANCELED, FAILED, RUNNING, SUCCEEDED, Counts, ProgressBar, overview_text
from scoring.batch.settings import ENV_VAR, JobSettings
from scoring.batch.slots import Attempt, Slot
from scoring.batch.telemetry import JobTelemetry, new_span_id

REPORT_INTERVAL_S = 0.5
SIGTERM_EXIT_CODE = 128 + signal.SIGTERM
STACK_DUMP_GRACE_S = 0.1
STOP_GRACE_S = 10.0


@dataclass
class JobResult:
    status: str
    message: str
    exit_code: int


class Orchestrator:
    def __init__(self, settings: JobSettings, batches: list[MiniBatch], files: int, show_progress: bool = True):
        self.settings = settings
        self.batches = batches
        self.counts = Counts(created=len(batches), files=files)
        self.pending: deque[tuple[MiniBatch, int]] = deque((batch, 1) for batch in batches)
        self.layout = Layout(settings.output, settings.node)
        self.slots = [Slot(index) for index in range(max(1, min(settings.workers, len(batches))))]
        self.selector = selectors.DefaultSelector()
        self.telemetry: JobTelemetry | None = None
        self.result: JobResult | None = None
        self.show_progress = show_progress
        self._last_report = 0.0
        self._last_logged: tuple | None = None
        self._sigterms = 0
        self._sigterms_seen = 0
        self._warned_unkeyed = False

    @property
    def stopping(self) -> bool:
        """SIGTERM came: nothing new is scheduled, nothing is retried or respawned."""
        return self._sigterms > 0

    # -- the job ------------------------------------------------------------------------------------

    def run(self) -> JobResult:
        self.started = time.time()
        previous = self._catch_sigterm()
        try:
            self._open()
            try:
                with ProgressBar(self.counts, self.show_progress) as self.bar:
                    for slot in self.slots:
                        self._spawn(slot)
                    self._loop()
            except KeyboardInterrupt:
                self._finish(CANCELED, "Ctrl-C before all mini-batches were processed", 130)
            finally:
                self._close()
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return self.result

    def _catch_sigterm(self):
        """The handler only counts: the scheduling loop acts on it (within REPORT_INTERVAL_S)."""
        if threading.current_thread() is not threading.main_thread():
            return None

        def count(_signum, _frame):
            self._sigterms += 1

        return signal.signal(signal.SIGTERM, count)

    def _open(self) -> None:
        settings = self.settings
        self.layout.create()
        self.output = open(settings.output_file, "x", encoding="utf-8", newline="")
        self.log = self.layout.master_logger(settings.logging_level)
        self.log.info("job %s: %d files from %s in %d mini-batches of up to %d; %d worker process(es); timeout %g s "
                      "(init_timeout %g s), max_retries %d, error_threshold %d; output %s", settings.job, self.counts.files,
                      settings.input, len(self.batches), settings.mini_batch_size, len(self.slots), settings.timeout,
                      settings.init_timeout, settings.max_retries, settings.error_threshold, settings.output_file)
        if settings.sends_telemetry:
            self.telemetry = JobTelemetry(settings).start()
            self.log.info("telemetry and console output to %s (service %s), operation_Id %s", settings.ingestion_endpoint,
                          settings.service_name, settings.operation_id)
            self.telemetry.note(f"batch job {settings.job} started: {self.counts.files} files in {len(self.batches)} "
                                f"mini-batches, {len(self.slots)} worker(s), operation_Id {settings.operation_id}")
        self.monitor = ResourceMonitor(self.layout.perf, settings.resource_monitor_interval, self._pids,
                                       settings.output).start()
        self._report(force=True)

    def _loop(self) -> None:
        while self.result is None:
            if self.stopping and self._stop_now():
                break
            self._dispatch()
            self._wait()
            self._check_deadlines()
            if self.result is None and self.counts.processed == self.counts.created:
                self._finish(SUCCEEDED, self._success_message(), 0)
            self._report()

    def _stop_now(self) -> bool:
        """On SIGTERM: whether to finish now (nothing in flight, or a second SIGTERM)."""
        in_flight = [slot.attempt.batch.id for slot in self.slots if slot.attempt is not None]
        if self._sigterms != self._sigterms_seen:
            self._sigterms_seen = self._sigterms
            if self._sigterms == 1 and in_flight:
                self.log.warning("SIGTERM: scheduling stopped; waiting for the %d mini-batch(es) in flight (%s) to finish "
                                 "or reach --timeout %g s", len(in_flight), ", ".join(map(str, in_flight)),
                                 self.settings.timeout)
        if in_flight and self._sigterms == 1:
            return False
        counts = self.counts
        left = counts.created - counts.processed
        rest = f"{left} not finished ({len(in_flight)} stopped in flight by a second SIGTERM)" if in_flight \
            else f"{left} not run"
        self._finish(CANCELED, f"canceled by SIGTERM: {counts.processed} of {counts.created} mini-batches processed; "
                               f"{rest}", SIGTERM_EXIT_CODE)
        return True

    def _success_message(self) -> str:
        counts = self.counts
        text = f"{counts.created - counts.failed} of {counts.created} mini-batches succeeded"
        if counts.items_failed:
            text += f"; {counts.items_failed} items failed (within --error_threshold {self.settings.error_threshold})"
        return text

    def _finish(self, status: str, message: str, exit_code: int) -> None:
        if self.result is None:
            self.result = JobResult(status, message, exit_code)
            log = self.log.info if status == SUCCEEDED else self.log.error
            log("job %s %s: %s", self.settings.job, status.lower(), message)
            if self.telemetry is not None:
                self.telemetry.note(f"batch job {self.settings.job} {status.lower()}: {message}")

    def _close(self) -> None:
        self._stop_workers()
        self.monitor.stop()
        self.output.close()
        self._drop_empty_error_files()
        self._report(force=True)
        if self.telemetry is not None:
            unsent, where = self.telemetry.close()
            if unsent:
                self.log.warning("%d telemetry items could not be sent yet; they wait in %s", unsent, where)
        self.layout.close()

    def _drop_empty_error_files(self) -> None:
        """Each worker opens its user/error/ file up front (for a timeout's stack dump); a file
        nothing was written to would only suggest errors that did not happen."""
        self.layout.flush()
        for slot in self.slots:
            path = self.layout.error_path(slot.index)
            if path.exists() and path.stat().st_size == 0:
                path.unlink()

    # -- workers ------------------------------------------------------------------------------------

    def _spawn(self, slot: Slot) -> None:
        read_end, write_end = os.pipe()
        env = {**os.environ, ENV_VAR: self.settings.to_env(), protocol.RESULT_FD: str(write_end),
               protocol.SLOT_VAR: str(slot.index), "PYTHONUNBUFFERED": "1",
               **(self.telemetry.modeldata.worker_env() if self.telemetry is not None else {})}
        path = self.layout.stdout_path(slot.index)
        if self.telemetry is not None:  # through pipes, so the lines reach the console log too
            outputs = self.telemetry.console_pipes(path, f"{self.settings.job}/{slot.name}")
        else:
            outputs = (os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),) * 2
        try:
            slot.process = subprocess.Popen([sys.executable, "-m", "scoring.batch.worker"], env=env, stdin=subprocess.PIPE,
                                            stdout=outputs[0], stderr=outputs[1], pass_fds=(write_end,),
                                            cwd=os.path.dirname(self.settings.entry_script))
        finally:
            for fd in {*outputs, write_end}:
                os.close(fd)
        slot.fd, slot.reader, slot.ready, slot.attempt = read_end, protocol.LineReader(), False, None
        slot.init_deadline = time.monotonic() + self.settings.init_timeout
        self.selector.register(read_end, selectors.EVENT_READ, slot)
        self.log.info("%s started (pid %d)", slot.name, slot.pid)

    def _pids(self) -> dict[str, int]:
        return {slot.name: slot.pid for slot in self.slots if slot.process is not None and slot.process.poll() is None}

    def _release(self, slot: Slot) -> int:
        """Forget a process that has exited; its exit code."""
        if slot.fd is not None:
            self.selector.unregister(slot.fd)
            os.close(slot.fd)
            slot.fd = None
        code = slot.process.wait()
        if slot.process.stdin:
            try:
                slot.process.stdin.close()
            except OSError:
                pass
        slot.ready = False
        return code

    def _stop_workers(self) -> None:
        """Close their stdin (they finish and send their last telemetry), then kill what is left."""
        live = [slot for slot in self.slots if slot.process is not None and slot.fd is not None]
        for slot in live:
            if slot.attempt is not None or not slot.ready:
                slot.process.kill()
            try:
                slot.process.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + STOP_GRACE_S
        for slot in live:
            try:
                slot.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                slot.process.kill()
            self._release(slot)

    # -- scheduling ---------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        if self.stopping:
            return
        for slot in self.slots:
            if not self.pending:
                return
            if slot.ready and slot.attempt is None:
                batch, number = self.pending.popleft()
                now = time.monotonic()
                slot.attempt = Attempt(batch, number, new_span_id(), now, now + self.settings.timeout)
                task = {"id": batch.id, "attempt": number, "span": slot.attempt.span_id, "files": batch.files,
                        "keys": batch.keys}
                self._write(slot, protocol.encode(task))
                self.log.debug("mini-batch %d attempt %d -> %s", batch.id, number, slot.name)

    def _write(self, slot: Slot, data: bytes) -> None:
        try:
            slot.process.stdin.write(data)
            slot.process.stdin.flush()
        except OSError:  # it died; the selector will see its pipe close
            pass

    def _wait(self) -> None:
        busy = [slot.attempt.deadline if slot.attempt is not None else slot.init_deadline
                for slot in self.slots if slot.attempt is not None or (slot.fd is not None and not slot.ready)]
        timeout = max(0.0, min([REPORT_INTERVAL_S, *(d - time.monotonic() for d in busy)]))
        for key, _ in self.selector.select(timeout):
            slot = key.data
            chunk = os.read(key.fd, 1 << 20)
            if not chunk:
                self._exited(slot)
                continue
            for message in slot.reader.feed(chunk):
                self._handle(slot, message)

    def _handle(self, slot: Slot, message: dict) -> None:
        kind = message["kind"]
        if kind == protocol.READY:
            slot.ready = True
            self.log.info("%s ready: init() done", slot.name)
        elif kind == protocol.DONE:
            self._succeeded(slot, message)
            if message.get("unkeyed") and not self._warned_unkeyed:
                self._warned_unkeyed = True
                self.log.warning("mini-batch %d: run() returned %d rows for %d files and not every row names its input, "
                                 "so the output cannot be mapped back to files; put each file's name in its row (with "
                                 "one row per file the runner adds it)", message["id"], message["count"],
                                 len(self.batches[message["id"]].files))
        elif kind == protocol.FAILED:
            self._attempt_failed(slot, "failed", message["error"], message.get("trace"), message.get("run_s"))
        elif kind == protocol.FATAL:
            where = self.layout.relative(self.layout.stdout_path(slot.index))
            batch = f" (mini-batch {message['id']})" if "id" in message else ""
            slot.attempt = None  # the worker ends by itself, after sending its telemetry
            self._error_summary(slot, f"{message['error']}{batch}")
            self._finish(FAILED, f"{message['error']}{batch}; see {where}", 1)

    def _exited(self, slot: Slot) -> None:
        attempt, ready = slot.attempt, slot.ready
        code = self._release(slot)
        if self.result is not None:
            return
        reason = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        if attempt is not None:
            self._attempt_failed(slot, "crashed", f"WorkerCrashed: the worker process {reason} during run()", None, None,
                                 attempt=attempt)
        elif not ready:
            where = self.layout.relative(self.layout.stdout_path(slot.index))
            self._finish(FAILED, f"{slot.name} {reason} before init() finished; see {where}", 1)
            return
        if self._work_left() and not self.stopping:
            self._spawn(slot)

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if self.result is not None:
                return
            if slot.fd is not None and not slot.ready and now >= slot.init_deadline:
                self._init_timed_out(slot)
                continue
            attempt = slot.attempt
            if attempt is None or now < attempt.deadline:
                continue
            self._dump_stack(slot, f"mini-batch {attempt.batch.id} attempt {attempt.number}: timed out after "
                                   f"{self.settings.timeout:g} s")
            slot.process.kill()
            self._release(slot)
            message = (f"TimeoutError: run() did not finish mini-batch {attempt.batch.id} within --timeout "
                       f"{self.settings.timeout:g} s; {slot.name} was restarted (where it was: "
                       f"{self.layout.relative(self.layout.error_path(slot.index))})")
            self._attempt_failed(slot, "timed out", message, None, None, attempt=attempt)
            if self._work_left() and not self.stopping:
                self._spawn(slot)

    def _init_timed_out(self, slot: Slot) -> None:
        """A worker still loading score.py or in init() at --init_timeout: every worker would hang the
        same way, so the job fails, naming init() and where it was stuck."""
        limit = self.settings.init_timeout
        self._dump_stack(slot, f"init() did not return within --init_timeout {limit:g} s")
        slot.process.kill()
        self._release(slot)
        where = self.layout.relative(self.layout.error_path(slot.index))
        message = (f"init() did not return within --init_timeout {limit:g} s in {slot.name}, which was killed; "
                   f"where it was stuck: {where} (raise --init_timeout if loading really takes longer)")
        self._error_summary(slot, f"TimeoutError: {message}")
        if self.telemetry is not None:
            self.telemetry.exception(TimeoutError(message), None, {"stage": "init()", "process": slot.name})
        self._finish(FAILED, message, 1)

    def _dump_stack(self, slot: Slot, what: str) -> None:
        """SIGUSR1 makes the worker's faulthandler write every thread's stack to user/error/."""
        self.layout.append(self.layout.error_path(slot.index),
                           f"=== {stamp(time.time())} {what}; the stack at that moment:\n")
        self.layout.flush()
        try:
            slot.process.send_signal(signal.SIGUSR1)
            time.sleep(STACK_DUMP_GRACE_S)
        except ProcessLookupError:
            pass

    def _work_left(self) -> bool:
        return self.counts.processed < self.counts.created

    # -- outcomes -----------------------------------------------------------------------------------

    def _succeeded(self, slot: Slot, message: dict) -> None:
        attempt, slot.attempt = slot.attempt, None
        batch = attempt.batch
        self.output.write(message["rows"])
        succeeded = min(message["count"], len(batch.files))
        failed = len(batch.files) - succeeded
        self.counts.processed += 1
        self.counts.items_succeeded += succeeded
        self.counts.items_failed += failed
        self._record(slot, attempt, "succeeded", message["start"], message["run_s"], succeeded, failed, final=True)
        self._settled()

    def _attempt_failed(self, slot: Slot, outcome: str, error: str, trace: str | None, run_s: float | None,
                        attempt: Attempt | None = None) -> None:
        attempt = attempt or slot.attempt
        slot.attempt = None
        batch = attempt.batch
        final = attempt.number > self.settings.max_retries
        abandoned = not final and self.stopping
        after = "" if final else ("; not retried: the job is canceled" if abandoned else "; will retry")
        self._error_summary(slot, f"mini-batch {batch.id} attempt {attempt.number}/{self.settings.max_retries + 1}: "
                                  f"{error}{after}")
        if trace:
            self.layout.append(self.layout.error_path(slot.index),
                               f"=== {stamp(time.time())} mini-batch {batch.id} attempt {attempt.number}, files: "
                               f"{', '.join(batch.keys)}\n{trace}\n")
        if self.telemetry is not None and outcome != "failed":  # a raised error is reported by the worker itself
            self.telemetry.exception(_failure(error), attempt.span_id, {"mini_batch": str(batch.id),
                                                                        "attempt": str(attempt.number)})
        start_s = time.time() - (time.monotonic() - attempt.began)
        self._record(slot, attempt, outcome, start_s, run_s, 0, len(batch.files) if final else 0, final)
        if abandoned:
            self.log.warning("mini-batch %d attempt %d %s on %s; not retried (SIGTERM)", batch.id, attempt.number,
                             outcome, slot.name)
            return
        if not final:
            self.counts.retries += 1
            self.pending.append((batch, attempt.number + 1))
            self.log.warning("mini-batch %d attempt %d %s on %s; retrying", batch.id, attempt.number, outcome, slot.name)
            self.bar.update(self.counts)
            return
        self.counts.processed += 1
        self.counts.failed += 1
        self.counts.items_failed += len(batch.files)
        self.log.error("mini-batch %d failed after %d attempts", batch.id, attempt.number)
        self._settled()

    def _settled(self) -> None:
        self.bar.update(self.counts)
        threshold = self.settings.error_threshold
        if threshold >= 0 and self.counts.items_failed > threshold:
            self._finish(FAILED, f"error threshold exceeded: {self.counts.items_failed} failed items > --error_threshold "
                                 f"{threshold}", 1)

    def _record(self, slot: Slot, attempt: Attempt, outcome: str, start_s: float, run_s: float | None,
                succeeded: int, failed: int, final: bool) -> None:
        """The attempt's line in sys/node/<node>/processNNN.txt, and its `requests` row."""
        duration_s = time.monotonic() - attempt.began
        run_text = f"{run_s * 1000:.3f}" if run_s is not None else "-"
        self.layout.append(self.layout.node_path(slot.index),
                           f"{stamp(time.time())} mini_batch={attempt.batch.id} attempt={attempt.number} "
                           f"process={slot.name} pid={slot.pid} items_total={len(attempt.batch.files)} "
                           f"items_succeeded={succeeded} items_failed={failed} start={stamp(start_s)} "
                           f"duration_ms={duration_s * 1000:.3f} run_ms={run_text} result={outcome}\n")
        self.log.debug("mini-batch %d attempt %d on %s: %s", attempt.batch.id, attempt.number, slot.name, outcome)
        if self.telemetry is not None:
            self.telemetry.attempt(attempt.batch, span_id=attempt.span_id, attempt=attempt.number, final=final,
                                   outcome=outcome, process=slot.name, start_s=start_s, duration_s=duration_s,
                                   run_s=run_s, succeeded=succeeded, failed=failed)

    def _error_summary(self, slot: Slot, text: str) -> None:
        self.layout.append(self.layout.error_summary, f"{stamp(time.time())} {slot.name}: {text}\n")

    # -- reporting ----------------------------------------------------------------------------------

    def _report(self, force: bool = False) -> None:
        """The overview file, the customMetrics and a progress line, at most every REPORT_INTERVAL_S."""
        now = time.monotonic()
        if not force and now - self._last_report < REPORT_INTERVAL_S:
            return
        self._last_report = now
        status = self.result.status if self.result else RUNNING
        message = self.result.message if self.result else ""
        self.layout.write_overview(overview_text(self.settings, self.counts, status, message, self.started))
        self.layout.flush()
        if not self.output.closed:
            self.output.flush()
        snapshot = (status, *self.counts.metrics().values())
        if snapshot != self._last_logged:
            self._last_logged = snapshot
            self.log.info("progress: %d of %d mini-batches processed, %d failed, %d retried",
                          self.counts.processed, self.counts.created, self.counts.failed, self.counts.retries)
            if self.telemetry is not None:
                self.telemetry.progress(self.counts.metrics(), status, message)


def _failure(text: str) -> Exception:
    """A failure the orchestrator saw ("TimeoutError: ...", "WorkerCrashed: ..."), as an exception of
    that type name, which is what the `exceptions` row's type shows."""
    name, _, message = text.partition(": ")
    kind = TimeoutError if name == "TimeoutError" else type(name, (Exception,), {})
    return kind(message)
