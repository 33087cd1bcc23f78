"""The `insights score` process: binds the port, runs the workers, and owns everything that talks
to the collector.

Sending lives here, in a process that never scores, so retries, backoff and HTTP never compete with
run() for the GIL (the cause of azmlinfsrv's p99 spikes). The workers write telemetry to the disk
spool; this process ships it, and ships the workers' console output, which it reads from their pipes
and therefore keeps even when a worker dies. On SIGTERM the workers stop accepting, finish what is in
flight and spool what they hold; then this process sends for at most `flush_timeout_s` and leaves the
rest on disk for the next start. Its heartbeat (heartbeat.py) tells the collector whether the
workers answer, and where, and brings back the service's enable_app_insights. When a worker exits
on its own (init() failed, a crash), the others are stopped and the wrapper exits with the worker's
code, as azmlinfsrv's master does. SIGHUP reloads score.py in fresh workers, and autoscale adds and
retires workers (pool.py, autoscale.py); with `status_file` set, this process writes there what it
did (generation, workers, scale events), which LocalWebservice.reload() waits on.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from scoring import worker
from scoring.autoscale import Autoscaler, event_envelope, initial_count
from scoring.config import Settings
from scoring.console import ConsoleRecorder, wait_for
from scoring.heartbeat import Heartbeat
from scoring.modeldata_receiver import Receiver
from scoring.pool import Worker, WorkerPool
from scoring.process_metrics import ProcessMetrics
from scoring.sender import ConsoleTransport, Shipper, TrackTransport
from scoring.spool import Spool
from scoring.switch import SwitchFile

CONSOLE_SPOOL_MAX_BYTES = 64 * 2**20
BACKGROUND_NICE = 5
"""How much lower than the workers the supervisor's threads run."""


class Supervisor:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = Path(settings.spool_dir)
        self.pool: WorkerPool | None = None
        self.autoscaler: Autoscaler | None = None
        self.listener: socket.socket | None = None
        self.reload_asked = threading.Event()
        self._readiness = (0, 0, 0)
        """(workers serving, of which ready, workers retiring) as last written to the status file."""
        self.shippers: list[Shipper] = []
        self.stopping = threading.Event()
        self.heartbeat: Heartbeat | None = None
        self.process_metrics: ProcessMetrics | None = None  # CPU and memory each second, for live metrics
        self.modeldata: Receiver | None = None
        self.recorder = ConsoleRecorder(Spool(self.root / "console") if settings.ships else None)

    def run(self) -> int:
        logging.basicConfig(level=logging.WARNING, format="[insights] %(message)s")
        self.recorder.start()
        self._start_shippers()
        try:
            listener = self._bind()
        except OSError as error:
            self.recorder.note(f"cannot listen on {self.settings.host}:{self.settings.port}: {error}")
            return self._finish(1)
        self.listener = listener  # kept open while workers come and go; closed when they are gone
        self._install_signals()
        self.pool = WorkerPool(self.settings, listener, self.recorder,
                               extra_env=self.modeldata.worker_env() if self.modeldata else {})
        count = initial_count(self.settings)
        for _ in range(count):
            if self.stopping.is_set():  # a SIGTERM while starting: no more workers, and those started stop
                self.pool.stop_all()
                break
            self.pool.spawn(0, init_first=False)
        if self.settings.autoscale_enabled:
            self.autoscaler = Autoscaler(self.settings, self.pool, self._scaled)
        _yield_cpu_to_workers()
        self._write_status()
        self.recorder.note(f"scoring {self.settings.entry_script} on http://{self.settings.host}:{self.settings.port} "
                           f"with {count} worker(s){self._autoscale_note()}; telemetry "
                           f"{'to ' + self.settings.ingestion_endpoint if self.settings.sends_telemetry else 'off'}")
        return self._finish(self._supervise(self.pool))

    def _bind(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.settings.host, self.settings.port))
        listener.listen(2048)
        listener.set_inheritable(True)
        return listener

    def _autoscale_note(self) -> str:
        settings = self.settings
        if not settings.autoscale_enabled:
            return ""
        return (f" (autoscale {settings.autoscale_min_replicas}-{settings.autoscale_max_replicas} at "
                f"{settings.autoscale_target_utilization}% utilization, every {settings.autoscale_refresh_seconds:g} s)")

    def _start_shippers(self) -> None:
        settings = self.settings
        if not settings.ships:
            return
        telemetry = Spool(self.root / "telemetry")
        self.shippers.append(Shipper(
            "telemetry", telemetry, TrackTransport(settings.ingestion_endpoint, settings.instrumentation_key),
            settings.spool_max_bytes, stats_path=worker.sender_stats_path(settings), poll_interval=0.5).start())
        self.shippers.append(Shipper(
            "console", Spool(self.root / "console"), ConsoleTransport(settings.ingestion_endpoint, settings.instrumentation_key,
                                                                api_key=settings.api_key),
            CONSOLE_SPOOL_MAX_BYTES, poll_interval=0.5).start())
        self.modeldata = Receiver(settings, self.root).start()
        heartbeat = Heartbeat(settings, self.root, follow_switch=settings.sends_telemetry)
        heartbeat.beat("Unhealthy", "starting")  # and the workers start with the service's current setting
        self.heartbeat = heartbeat.start()
        self.process_metrics = ProcessMetrics(settings, os.getpid()).start()

    def _install_signals(self) -> None:
        def stop(signum, _frame):
            if not self.stopping.is_set():
                self._stop_serving()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda *_: self.reload_asked.set())

    def _supervise(self, pool: WorkerPool) -> int:
        """Run the pool (reloads, autoscale) until its workers are gone; the exit code."""
        code = 0
        while pool.alive() or (pool.workers and not self.stopping.is_set()):
            for crashed in pool.reap():
                if crashed.generation > pool.generation:
                    pool.fail_reload(crashed)
                    self.recorder.note(f"reload failed: {pool.reload_error}; the previous workers keep serving")
                    self._write_status()
                elif not self.stopping.is_set():
                    code = self._worker_died(crashed)
            if not self.stopping.is_set():
                self._steer(pool)
            time.sleep(0.05)
        pool.reap()
        return code

    def _steer(self, pool: WorkerPool) -> None:
        """Reloads asked for (SIGHUP) and autoscale: what changes the workers while all is well."""
        if self.reload_asked.is_set():
            self.reload_asked.clear()
            if pool.begin_reload():
                self.recorder.note("reloading: starting new workers for the entry script")
                self._write_status()
        if pool.advance_reload():
            self.recorder.note(f"reloaded: {len(pool.serving())} new worker(s) serve; the previous ones finish and stop")
            self._write_status()
        if self.autoscaler is not None and self.autoscaler.tick():
            self._write_status()
        readiness = (len(pool.serving()), sum(1 for w in pool.serving() if pool.is_ready(w)), pool.retiring())
        if readiness != self._readiness:
            self._readiness = readiness
            self._write_status()

    def _scaled(self, event: dict) -> None:
        self.recorder.note(f"autoscale: {event['from']} -> {event['to']} worker(s) (utilization "
                           f"{event['utilization_percent']}%, target {event['target_percent']}%)")
        if self.settings.sends_telemetry and SwitchFile(self.root)():
            Spool(self.root / "telemetry").write([event_envelope(self.settings, event)])

    def _write_status(self) -> None:
        """The wrapper's state for whoever started it (LocalWebservice, a benchmark), written whole."""
        if not self.settings.status_file or self.pool is None:
            return
        pool = self.pool
        serving = pool.serving()
        status = {"pid": os.getpid(), "generation": pool.generation, "attempt": pool.attempt,
                  "reloading": pool.reloading, "reload_error": pool.reload_error, "workers": len(serving),
                  "ready_workers": sum(1 for w in serving if pool.is_ready(w)), "retiring_workers": pool.retiring(),
                  "utilization": self.autoscaler.utilization if self.autoscaler else None,
                  "scale_events": list(self.autoscaler.events) if self.autoscaler else []}
        path = Path(self.settings.status_file)
        temporary = path.with_name(path.name + ".tmp")
        try:
            temporary.write_text(json.dumps(status))
            os.replace(temporary, path)
        except OSError as error:
            self.recorder.note(f"cannot write the status file {path}: {error}")

    def _worker_died(self, crashed: Worker) -> int:
        code = crashed.process.returncode
        reason = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        self.recorder.note(f"worker {crashed.pid} {reason}; stopping the server")
        self._stop_serving()
        return 3 if code == 3 else (code if code > 0 else 1)

    def _stop_serving(self) -> None:
        """No new connection from now on (a port nobody will serve must refuse them); the workers
        finish what they hold."""
        self.stopping.set()
        if self.listener is not None:
            self.listener.close()
        if self.pool is not None:
            self.pool.stop_all()

    def _finish(self, code: int) -> int:
        if self.listener is not None:
            self.listener.close()
        deadline = self.settings.graceful_timeout_s + 5
        pool = self.pool
        for member in pool.workers if pool else []:
            try:
                member.process.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                member.process.kill()
        if pool is not None:
            wait_for([reader.thread for reader in pool.readers], 2.0)
            self._write_status()
            pool.close()
        if self.heartbeat is not None:
            self.heartbeat.stop(f"exit code {code}", exit_code=code)
        if self.process_metrics is not None:
            self.process_metrics.stop()
        self.recorder.close()
        stoppers = [threading.Thread(target=s.stop, args=(self.settings.flush_timeout_s,)) for s in self.shippers]
        stoppers += [threading.Thread(target=self.modeldata.stop, args=(self.settings.flush_timeout_s,))] if self.modeldata else []
        for thread in stoppers:
            thread.start()
        wait_for(stoppers, self.settings.flush_timeout_s + 12)
        return code


def _yield_cpu_to_workers() -> None:
    """Lower the priority of this process's threads (sending, the console tee, the heartbeat); the
    workers, already started, keep theirs: on a busy machine sending telemetry waits a little, and
    scoring does not. Every thread, not only this one: on Linux a nice value belongs to a thread, so
    `os.nice` here would leave the threads started before it, the senders among them, where they were.
    Except the main thread, which only watches the workers, and whose priority the workers it starts
    later (a reload's, autoscale's) inherit."""
    for thread_id in _own_threads():
        if thread_id == os.getpid():
            continue  # the main thread starts workers later (reload, autoscale): they inherit its priority
        try:
            os.setpriority(os.PRIO_PROCESS, thread_id, os.getpriority(os.PRIO_PROCESS, thread_id) + BACKGROUND_NICE)
        except OSError:
            pass


def _own_threads() -> list[int]:
    """The ids of this process's threads (Linux); elsewhere [0], this process, whose threads share one nice value."""
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


