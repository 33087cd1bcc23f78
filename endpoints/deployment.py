"""One deployment of an endpoint: its `insights score` process, kept running, and its state as the
managed online endpoints report it.

- ERR_1300: the entry script or the model folder does not exist (nothing is started);
- ERR_2100: the wrapper could not start the code, e.g. a package missing at import;
- ERR_2200: init() raised, or the instance crashed; it is started again after a back-off (1 s,
  doubling to 30 s) and `restarts` counts the attempts, as Kubernetes' CrashLoopBackOff does.

Each state carries the last lines of the deployment's console output (its log file).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from endpoints.keeper import folder, free_port, log_path
from endpoints.upstream import Upstream

LOG_LINES_IN_STATE = 20
MAX_BACKOFF_S = 30.0
_IMPORT_FAILURES = ("ModuleNotFoundError", "ImportError", "SyntaxError")


class DeploymentRunner:
    def __init__(self, endpoint: str, spec: dict, data_dir: Path, report: Callable[[DeploymentRunner], None]):
        self.endpoint = endpoint
        self.spec = spec
        self.name: str = spec["name"]
        self.generation: int = spec["generation"]
        self.data_dir = data_dir
        self.report = report
        self.log = log_path(data_dir, endpoint, self.name)
        self.state: dict = {"state": "Provisioning", "restarts": 0}
        self.upstream: Upstream | None = None
        """Set while the wrapper answers /ready: the router may send to it."""
        self.process: subprocess.Popen | None = None
        self.stopping = asyncio.Event()
        self.task: asyncio.Task | None = None

    def begin(self) -> DeploymentRunner:
        self.task = asyncio.ensure_future(self._run())
        return self

    async def _run(self) -> None:
        missing = self._missing_artifact()
        if missing:
            self._set("Failed", "ERR_1300", missing)
            return
        backoff = 1.0
        while not self.stopping.is_set():
            ready = await self._start_and_wait()
            if self.stopping.is_set():
                return
            if ready:
                backoff = 1.0
                self._set("Succeeded", None, None)
                await self._until_exit()
                self.upstream = None
                if self.stopping.is_set():
                    return
                self._crashed("ERR_2200", f"the instance exited with code {self._exit_code()}; restarting")
            else:
                self._crashed(*self._diagnose())
            try:
                await asyncio.wait_for(self.stopping.wait(), backoff)
            except TimeoutError:
                pass
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _missing_artifact(self) -> str | None:
        script, model_dir = self.spec["entry_script"], self.spec.get("model_dir")
        if not os.path.isfile(script):
            return f"code artifact not found: entry script {script} does not exist"
        if model_dir and not os.path.isdir(model_dir):
            return f"model artifact not found: model folder {model_dir} does not exist"
        return None

    async def _start_and_wait(self) -> bool:
        """Start the wrapper; True once it answers /ready, False if it exited first."""
        port = free_port()
        with open(self.log, "ab") as output:
            output.write(f"--- starting deployment {self.name} (generation {self.generation}) on port {port}\n".encode())
            output.flush()
            process = self.process = subprocess.Popen(self._command(port), env=self._environment(), stdout=output,
                                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        async with httpx.AsyncClient(trust_env=False, timeout=2) as client:
            while process.poll() is None and not self.stopping.is_set():
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/ready")).status_code == 200:
                        capacity = 2 * self.spec["max_concurrent"] * self.spec["instance_count"]
                        self.upstream = Upstream(self.name, port, capacity)
                        return True
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        return False

    def _command(self, port: int) -> list[str]:
        spec = self.spec
        command = [sys.executable, "-m", "scoring", "score", "--entry_script", spec["entry_script"],
                   "--host", "127.0.0.1", "--port", str(port), "--service", self.endpoint,
                   "--worker_count", str(spec["instance_count"]),
                   "--max_concurrent_requests", str(spec["max_concurrent"]),
                   "--spool_dir", str(folder(self.data_dir, self.endpoint) / f"{self.name}.spool")]
        if spec.get("model_dir"):
            command += ["--model_dir", spec["model_dir"]]
        return command

    def _environment(self) -> dict:
        return {**os.environ, "INSIGHTS_DEPLOYMENT": self.name, "SERVICE_NAME": self.endpoint, "PYTHONUNBUFFERED": "1"}

    async def _until_exit(self) -> None:
        while self._exit_code() is None and not self.stopping.is_set():
            await asyncio.sleep(0.2)

    def _exit_code(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def _diagnose(self) -> tuple[str, str]:
        """ERR_2100 when the code could not even be imported, ERR_2200 when init() (or later) failed."""
        tail = self._tail()
        if any(marker in tail for marker in _IMPORT_FAILURES) and ", in init" not in _last_traceback_frames(tail):
            return "ERR_2100", f"unable to start: the code failed at import (exit code {self._exit_code()})"
        return "ERR_2200", f"the instance crashed: init() failed (exit code {self._exit_code()}); restarting"

    def _crashed(self, code: str, message: str) -> None:
        self.state["restarts"] = self.state.get("restarts", 0) + 1
        self._set("Failed", code, message)

    def _set(self, state: str, code: str | None, message: str | None) -> None:
        self.state = {"state": state, "error_code": code, "message": message,
                      "restarts": self.state.get("restarts", 0), "logs": self._tail()}
        self.report(self)

    def _tail(self) -> str:
        try:
            with open(self.log, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 16384))
                lines = handle.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-LOG_LINES_IN_STATE:])

    async def stop(self) -> None:
        """SIGTERM the wrapper: requests in flight finish, telemetry is flushed or spooled."""
        self.stopping.set()
        self.upstream = None
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 40)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


def _last_traceback_frames(tail: str) -> str:
    """The lines of the last traceback in `tail`, where the failing call is named."""
    start = tail.rfind("Traceback (most recent call last)")
    return tail[start:] if start >= 0 else ""
