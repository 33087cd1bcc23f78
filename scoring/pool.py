"""The worker processes behind one port: started, replaced on reload, added and retired by the autoscaler.

Every worker inherits the supervisor's one listening socket and accepts from it (as gunicorn's
workers do), so the kernel hands each new connection to one of the workers waiting in accept(); the
supervisor keeps its own copy of the socket open while it runs, so the port never closes while
workers come and go. A worker that joins running ones (a reload's, a scale-up's) runs init()
before it accepts anything (scoring/load.py); a retiring worker gets SIGTERM, stops accepting and
finishes what it holds.

A reload (SIGHUP to the supervisor, as gunicorn's) starts a new generation as large as the serving
one; once all of it is ready the old generation retires. If a new worker exits first (its init()
failed), the rest of the new generation is stopped and the old one keeps serving: `reload_error`
says so.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scoring import load, worker
from scoring.config import ENV_VAR, Settings
from scoring.console import ConsoleRecorder, PipeReader


@dataclass
class Worker:
    process: subprocess.Popen
    name: str
    generation: int
    retiring: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid


class WorkerPool:
    def __init__(self, settings: Settings, listener: socket.socket, recorder: ConsoleRecorder,
                 extra_env: dict[str, str] | None = None):
        self.settings = settings
        self.extra_env = extra_env or {}
        """What the supervisor's own services tell each worker (the model data receiver's address)."""
        self.listener = listener
        self.recorder = recorder
        self.status_dir = Path(tempfile.mkdtemp(prefix="insights-workers-"))
        self.workers: list[Worker] = []
        self.readers: list[PipeReader] = []
        self.generation = 0
        self.attempt = 0
        """Reloads asked for so far; `generation` counts the ones that succeeded."""
        self.reloading = False
        self.reload_error: str | None = None
        self._numbers = itertools.count()

    # -- processes -------------------------------------------------------------------------------

    def spawn(self, generation: int, init_first: bool) -> Worker:
        settings = self.settings
        env = {**os.environ, ENV_VAR: settings.to_env(), worker.FD_VAR: str(self.listener.fileno()),
               "PYTHONUNBUFFERED": "1", load.STATUS_DIR_VAR: str(self.status_dir)}
        if init_first:
            env[load.INIT_FIRST_VAR] = "1"
        if settings.model_dir:
            env["AZUREML_MODEL_DIR"] = settings.model_dir
        env.setdefault("AZUREML_ENTRY_SCRIPT", settings.entry_script)
        env.update(self.extra_env)
        process = subprocess.Popen([sys.executable, "-m", "scoring.worker"], env=env, pass_fds=[self.listener.fileno()],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        added = Worker(process, f"worker-{next(self._numbers)}", generation)
        self.workers.append(added)
        for pipe, tee_fd, stream in ((process.stdout, 1, "stdout"), (process.stderr, 2, "stderr")):
            fd = os.dup(pipe.fileno())
            pipe.close()
            self.readers.append(PipeReader(fd, tee_fd, stream, added.name, self.recorder).start())
        return added

    def serving(self) -> list[Worker]:
        """The current generation's workers that are not retiring (ready or still in init())."""
        return [w for w in self.workers if w.generation == self.generation and not w.retiring]

    def is_ready(self, member: Worker) -> bool:
        status = load.read_status(self.status_dir, member.pid)
        return bool(status and status.get("ready"))

    def retire(self, member: Worker) -> None:
        member.retiring = True
        send_signal(member.process, signal.SIGTERM)

    def retiring(self) -> int:
        """Workers told to stop that are still finishing what they hold."""
        return sum(1 for w in self.workers if w.retiring and w.process.poll() is None)

    def stop_all(self) -> None:
        for member in self.workers:
            self.retire(member)

    def alive(self) -> bool:
        return any(member.process.poll() is None for member in self.workers)

    def reap(self) -> list[Worker]:
        """Forget the workers that exited; those that were not retiring (crashed, init() failed)."""
        exited = [w for w in self.workers if w.process.poll() is not None]
        for member in exited:
            self.workers.remove(member)
            load.status_path(self.status_dir, member.pid).unlink(missing_ok=True)
        return [w for w in exited if not w.retiring]

    def close(self) -> None:
        shutil.rmtree(self.status_dir, ignore_errors=True)

    # -- reload ----------------------------------------------------------------------------------

    def begin_reload(self) -> bool:
        """Start a new generation beside the serving one; False when one is already starting."""
        if self.reloading:
            return False
        self.attempt += 1
        self.reloading = True
        self.reload_error = None
        for _ in range(max(1, len(self.serving()))):
            self.spawn(self.generation + 1, init_first=True)
        return True

    def advance_reload(self) -> bool:
        """Once the whole new generation is ready, retire the old one; True when that happened."""
        if not self.reloading:
            return False
        fresh = [w for w in self.workers if w.generation == self.generation + 1]
        if not fresh or not all(self.is_ready(w) for w in fresh):
            return False
        for member in self.serving():
            self.retire(member)
        self.generation += 1
        self.reloading = False
        return True

    def fail_reload(self, failed: Worker) -> None:
        code = failed.process.returncode
        for member in self.workers:
            if member.generation > self.generation:
                self.retire(member)
        self.reloading = False
        self.reload_error = f"a new worker exited with code {code} before it was ready (init() failed?)"

    # -- scaling ---------------------------------------------------------------------------------

    def scale_to(self, count: int) -> None:
        """Add workers (init() first) or retire the newest ones, until `count` serve."""
        serving = self.serving()
        for _ in range(count - len(serving)):
            self.spawn(self.generation, init_first=True)
        for member in list(reversed(serving))[: max(0, len(serving) - count)]:
            self.retire(member)


def send_signal(process: subprocess.Popen, signum: int) -> None:
    if process.poll() is None:
        try:
            process.send_signal(signum)
        except ProcessLookupError:
            pass
