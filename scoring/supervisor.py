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
code, as azmlinfsrv's master does.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from scoring import worker
from scoring.config import ENV_VAR, Settings
from scoring.console import ConsoleRecorder, PipeReader, wait_for
from scoring.heartbeat import Heartbeat
from scoring.modeldata_receiver import Receiver
from scoring.sender import ConsoleTransport, Shipper, TrackTransport
from scoring.spool import Spool

CONSOLE_SPOOL_MAX_BYTES = 64 * 2**20
BACKGROUND_NICE = 5
"""How much lower than the workers the supervisor's threads run."""


class Supervisor:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = Path(settings.spool_dir)
        self.workers: list[subprocess.Popen] = []
        self.readers: list[PipeReader] = []
        self.shippers: list[Shipper] = []
        self.stopping = threading.Event()
        self.heartbeat: Heartbeat | None = None
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
        for index in range(self.settings.worker_count):
            self._spawn(listener, index)
        listener.close()  # the workers hold it now; a port nobody serves must not accept connections
        _yield_cpu_to_workers()
        self._install_signals()
        self.recorder.note(f"scoring {self.settings.entry_script} on http://{self.settings.host}:{self.settings.port} "
                           f"with {self.settings.worker_count} worker(s); telemetry "
                           f"{'to ' + self.settings.ingestion_endpoint if self.settings.sends_telemetry else 'off'}")
        return self._finish(self._supervise())

    def _bind(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.settings.host, self.settings.port))
        listener.listen(2048)
        listener.set_inheritable(True)
        return listener

    def _spawn(self, listener: socket.socket, index: int) -> None:
        env = {**os.environ, ENV_VAR: self.settings.to_env(), worker.FD_VAR: str(listener.fileno()),
               "PYTHONUNBUFFERED": "1"}
        if self.settings.model_dir:
            env["AZUREML_MODEL_DIR"] = self.settings.model_dir
        env.setdefault("AZUREML_ENTRY_SCRIPT", self.settings.entry_script)
        env.update(self.modeldata.worker_env() if self.modeldata else {})
        process = subprocess.Popen([sys.executable, "-m", "scoring.worker"], env=env, pass_fds=[listener.fileno()],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.workers.append(process)
        instance = f"worker-{index}"
        for pipe, tee_fd, stream in ((process.stdout, 1, "stdout"), (process.stderr, 2, "stderr")):
            fd = os.dup(pipe.fileno())
            pipe.close()
            self.readers.append(PipeReader(fd, tee_fd, stream, instance, self.recorder).start())

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

    def _install_signals(self) -> None:
        def stop(signum, _frame):
            if not self.stopping.is_set():
                self.stopping.set()
                for process in self.workers:
                    _signal(process, signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _supervise(self) -> int:
        """Wait until the workers are gone; the exit code."""
        code = 0
        while any(process.poll() is None for process in self.workers):
            exited = [p for p in self.workers if p.poll() is not None]
            if exited and not self.stopping.is_set():
                code = self._worker_died(exited[0])
            time.sleep(0.05)
        if not self.stopping.is_set() and self.workers:
            code = self._worker_died(self.workers[0])
        return code

    def _worker_died(self, process: subprocess.Popen) -> int:
        code = process.returncode
        reason = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        self.recorder.note(f"worker {process.pid} {reason}; stopping the server")
        self.stopping.set()
        for other in self.workers:
            _signal(other, signal.SIGTERM)
        return 3 if code == 3 else (code if code > 0 else 1)

    def _finish(self, code: int) -> int:
        deadline = self.settings.graceful_timeout_s + 5
        for process in self.workers:
            try:
                process.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                process.kill()
        wait_for([reader.thread for reader in self.readers], 2.0)
        if self.heartbeat is not None:
            self.heartbeat.stop(f"exit code {code}", exit_code=code)
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
    `os.nice` here would leave the threads started before it, the senders among them, where they were."""
    for thread_id in _own_threads():
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


def _signal(process: subprocess.Popen, signum: int) -> None:
    if process.poll() is None:
        try:
            process.send_signal(signum)
        except ProcessLookupError:
            pass
