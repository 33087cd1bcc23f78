"""LocalWebservice: a service's wrapper (`insights score`) run on this machine for one entry script,
the way Azure ML's LocalWebservice runs a scoring container. Re-exported by `collector.client`.

    service = LocalWebservice.deploy(ws, "my-service", "score.py", model_dir="model")
    service.run({"data": [[1, 2]]})
    print(service.get_logs())
    service.delete()

`deploy` creates the service in the collector when it does not exist (and sets its
enable_app_insights to the configuration's), starts `python -m scoring score` as a subprocess with
the service's connection string, and returns once the wrapper answers /ready, or raises
DeploymentFailed with the wrapper's console output (an init() traceback, say). The subprocess's
console output also goes to a local file, so `get_logs` still has it when the collector is away.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import httpx

from collector.client.errors import ApiError, CollectorUnreachable, ConfigError, DeploymentFailed, ScoringError
from collector.client.layout import InferenceConfig, Layout, lay_out
from collector.client.workspace import DeploymentConfiguration, Webservice, Workspace


class LocalWebservice(Webservice):
    """A wrapper subprocess for `entry_script`, sending to `workspace`'s collector as service `name`."""

    @staticmethod
    def deploy_configuration(enable_app_insights: bool = True, port: int | None = None, **options) -> DeploymentConfiguration:
        return Webservice.deploy_configuration(enable_app_insights, port, **options)

    @classmethod
    def deploy(cls, workspace: Workspace, name: str, entry_script: str | os.PathLike, model_dir: str | os.PathLike | None = None,
               deployment_config: DeploymentConfiguration | None = None, spool_dir: str | os.PathLike | None = None,
               timeout: float = 120.0, *, layout: Layout | None = None) -> LocalWebservice:
        """Create the service if needed, start its wrapper and wait until it is ready. (`layout`
        is Model.deploy's: the models it laid out, and the inference config.)"""
        config = deployment_config or DeploymentConfiguration()
        try:
            existing = Webservice(workspace, name)
        except ApiError as error:
            if error.status_code != 404:
                raise
            workspace.create_service(name, enable_app_insights=config.enable_app_insights)
        else:
            if existing.enable_app_insights != config.enable_app_insights:
                existing.update(enable_app_insights=config.enable_app_insights)
        service = cls(workspace, name, entry_script, model_dir, config, spool_dir, layout=layout)
        service.start(timeout)
        return service

    def __init__(self, workspace: Workspace, name: str, entry_script: str | os.PathLike, model_dir: str | os.PathLike | None = None,
                 deployment_config: DeploymentConfiguration | None = None, spool_dir: str | os.PathLike | None = None,
                 *, layout: Layout | None = None):
        super().__init__(workspace, name)
        self.layout = layout
        """Where Model.deploy put the models and how the entry script runs (None for a bare entry script)."""
        self.entry_script = Path(entry_script).resolve()
        self.model_dir = Path(model_dir).resolve() if model_dir is not None else None
        self.deployment_config = deployment_config or DeploymentConfiguration()
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None
        self.port = self.deployment_config.port
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkdtemp(prefix=f"insights-local-{name}-")) / "console.log"
        self.status_path = self.log_path.parent / "wrapper-status.json"
        if layout is not None:
            self.entry_script, self.model_dir = layout.entry_script, layout.model_dir
        self._http = httpx.Client(timeout=None, trust_env=False)

    def __repr__(self) -> str:
        return f"LocalWebservice(name={self.name!r}, scoring_uri={self.scoring_uri!r}, state={self.state!r})"

    def __enter__(self) -> LocalWebservice:
        return self

    def __exit__(self, *exc) -> None:
        self.delete()

    # -- the process -----------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        """Start the wrapper and wait until /ready answers 200 (init() finished)."""
        if self.process is not None and self.process.poll() is None:
            return
        if not self.entry_script.is_file():
            raise DeploymentFailed(f"no entry script at {self.entry_script}", "")
        config = self.deployment_config
        self.port = self.port or _free_port(config.host)  # a restart (update) keeps the port
        command = [sys.executable, "-m", "scoring", "score", "--entry_script", str(self.entry_script),
                   "--port", str(self.port), "--service", self.name, "--status_file", str(self.status_path),
                   *config.arguments()]
        if self.model_dir is not None:
            command += ["--model_dir", str(self.model_dir)]
        if self.spool_dir is not None:
            command += ["--spool_dir", str(self.spool_dir)]
        env = {**os.environ, **config.environment(), "APPLICATIONINSIGHTS_CONNECTION_STRING": self.connection_string,
               "INSIGHTS_URL": self.workspace.url, "SERVICE_NAME": self.name}
        if self.workspace.connection.api_key:  # the wrapper vouches for its state with the workspace's key
            env["INSIGHTS_API_KEY"] = self.workspace.connection.api_key
        if self.layout is not None:
            env.update(self.layout.environment())
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        atexit.register(self._stop, 10)  # a wrapper does not outlive the program that deployed it
        self.wait_for_deployment(timeout=timeout)

    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float | None = None, *,
                            timeout: float | None = None) -> None:
        """Wait until the wrapper answers /ready (azureml-core's signature; `timeout=` as before);
        with `show_output`, say where it runs."""
        timeout = timeout if timeout is not None else timeout_sec if timeout_sec is not None else 120.0
        if self.process is None:
            raise DeploymentFailed(f"the wrapper for {self.name} was never started", "")
        self._wait_ready(timeout)
        if show_output:
            print(f"Local webservice is running at {self.scoring_uri}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise DeploymentFailed(f"the wrapper for {self.name} exited with code {self.process.returncode}",
                                       self._local_logs(100))
            if self._ready() and self._all_workers_ready():
                return
            if time.monotonic() > deadline:
                self._stop(10)
                raise DeploymentFailed(f"the wrapper for {self.name} was not ready after {timeout:.0f} s",
                                       self._local_logs(100))
            time.sleep(0.1)

    def _all_workers_ready(self) -> bool:
        """Every worker finished init() (from the wrapper's status file), not only the one /ready reached."""
        status = self.wrapper_status()
        return status.get("ready_workers", 0) >= status.get("workers", 0)

    def _ready(self) -> bool:
        try:
            return self._http.get(self._url("/ready"), timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def exit_code(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    # -- reload and update -----------------------------------------------------------------------

    def wrapper_status(self) -> dict:
        """What the wrapper last wrote about itself: {"generation", "attempt", "workers",
        "ready_workers", "retiring_workers", "reloading", "reload_error", "utilization",
        "scale_events": [...]}; {} before it wrote anything."""
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}

    def reload(self, wait: bool = True, timeout: float = 120.0) -> None:
        """Import the entry script anew and run its init() again, on the same port and with the
        same telemetry settings: the wrapper starts fresh workers (SIGHUP, as gunicorn reloads) and
        retires the old ones once the new ones are ready, so requests keep being answered. If the
        new init() fails, the old workers stay and DeploymentFailed carries the console output."""
        if self.process is None or self.process.poll() is not None:
            raise DeploymentFailed(f"the wrapper for {self.name} is not running", self._local_logs(100))
        before = self.wrapper_status().get("attempt", 0)
        self.process.send_signal(signal.SIGHUP)
        if wait:
            self._wait_generation(before, timeout)

    def _wait_generation(self, before: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DeploymentFailed(f"the wrapper for {self.name} exited with code {self.process.returncode} "
                                       "while reloading", self._local_logs(100))
            status = self.wrapper_status()
            if status.get("attempt", 0) > before and not status.get("reloading"):
                if status.get("reload_error"):
                    raise DeploymentFailed(f"reload of {self.name} failed ({status['reload_error']}); "
                                           "the previous workers keep serving", self._local_logs(100))
                if not status.get("retiring_workers"):  # the old workers are gone: every answer is the new code's
                    return
            time.sleep(0.05)
        raise DeploymentFailed(f"the reload of {self.name} did not finish within {timeout:.0f} s", self._local_logs(100))

    def update(self, models: list | None = None, image_config=None, deployment_config: DeploymentConfiguration | None = None,  # type: ignore[override]
               wait: bool = True, inference_config: InferenceConfig | None = None,
               enable_app_insights: bool | None = None, timeout: float = 120.0) -> None:
        """azureml-core's LocalWebservice.update, plus `enable_app_insights` (the service's switch,
        which running wrappers follow within seconds). New `models` or a new `inference_config`
        are laid out afresh and the wrapper is restarted with them, as is a new
        `deployment_config`; the port stays unless the new configuration names another.
        (`image_config` and `wait` are azureml-core's: there is no image here, and it always waits.)"""
        if enable_app_insights is not None:
            Webservice.update(self, enable_app_insights=enable_app_insights)
        if models is None and inference_config is None and deployment_config is None:
            return
        previous = self.layout
        if models is not None or inference_config is not None:
            self._relayout(models, inference_config)
        if deployment_config is not None:
            self.port = deployment_config.port or self.port
            self.deployment_config = deployment_config
        self._stop(30)
        if previous is not None and previous is not self.layout:
            previous.remove()  # only now: the old wrapper read its models until it stopped
        self.start(timeout)

    def _relayout(self, models: list | None, inference_config: InferenceConfig | None) -> None:
        current = self.layout
        if current is None and models is not None:
            raise ConfigError(f"{self.name} was deployed from an entry script, not with Model.deploy: "
                              "deploy it with Model.deploy to give it models")
        config = inference_config or (current.inference_config if current else None) or InferenceConfig(self.entry_script)
        layout = lay_out(self.name, list(models if models is not None else current.models if current else []), config)
        if current is None:
            layout.model_dir = self.model_dir  # deployed with a model_dir of its own: it keeps it
        self.layout = layout
        self.entry_script, self.model_dir = layout.entry_script, layout.model_dir

    # -- what a Webservice offers, answered locally ----------------------------------------------

    @property
    def scoring_uri(self) -> str:
        return self._url("/score")

    @property
    def state(self) -> str:
        """Healthy when the wrapper answers /ready now; Stopped when it exited with code 0 (a clean
        stop); Unhealthy when it crashed (see `exit_code`), never ran or is not ready. The
        collector's view, from heartbeats, is `wrapper_state()`."""
        if self.process is None or self.process.poll() is not None:
            return "Stopped" if self.exit_code == 0 else "Unhealthy"
        return "Healthy" if self._ready() else "Unhealthy"

    def run(self, input_data, headers: dict | None = None, timeout: float = 60.0):
        """POST `input_data` to /score (a str or bytes as it is, anything else as JSON) and return
        the answer, parsed when it is JSON; ScoringError for an error status."""
        if isinstance(input_data, (str, bytes)):
            body = input_data if isinstance(input_data, bytes) else input_data.encode()
        else:
            body = json.dumps(input_data).encode()
        try:
            response = self._http.post(self.scoring_uri, content=body, timeout=timeout,
                                       headers={"content-type": "application/json", **(headers or {})})
        except httpx.TransportError as error:
            raise ScoringError(0, f"the wrapper does not answer ({error}); state: {self.state}", self.scoring_uri) from None
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except (ValueError, AttributeError):
                message = response.text
            raise ScoringError(response.status_code, message, self.scoring_uri)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def get_logs(self, lines: int = 100) -> str:
        """The wrapper's console output, from the collector; from the local copy when the
        collector cannot be reached."""
        try:
            return super().get_logs(lines)
        except CollectorUnreachable:
            return self._local_logs(lines)

    def delete(self, delete_service: bool = False, timeout: float = 30.0) -> None:
        """Stop the wrapper (SIGTERM: in-flight requests finish, telemetry is flushed or spooled);
        with `delete_service`, delete the service and its data in the collector too."""
        self._stop(timeout)
        if self.layout is not None:
            self.layout.remove()
        if delete_service:
            super().delete()

    def _stop(self, timeout: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _url(self, path: str) -> str:
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.deployment_config.host, self.deployment_config.host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}{path}"

    def _local_logs(self, lines: int) -> str:
        try:
            with open(self.log_path, errors="replace") as handle:
                return "".join(deque(handle, maxlen=lines)).rstrip("\n")
        except OSError:
            return ""


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host if host not in ("", "0.0.0.0") else "127.0.0.1", 0))
        return sock.getsockname()[1]
