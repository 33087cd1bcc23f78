"""A worker process: captures, loads score.py and serves on the socket its supervisor bound.

Started by the supervisor as `python -m scoring.worker` with the settings in the environment and the
listening socket inherited as a file descriptor. Capture is installed before score.py is imported,
so module-level prints are telemetry too. It exits with code 3 when init() fails, as azmlinfsrv does.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from scoring import capture as capture_module
from scoring import dependencies, load, modeldata
from scoring.app import ScoringApp
from scoring.capture import Capture
from scoring.config import Settings
from scoring.envelopes import Identity
from scoring.spool import Spool
from scoring.switch import SwitchFile
from scoring.telemetry_queue import TelemetryQueue
from scoring.user_script import UserScript

FD_VAR = "INSIGHTS_SCORING_FD"
LOG_FORMAT = "%(asctime)s %(levelname).1s [%(process)d] %(name)s - %(message)s"


def telemetry_dir(settings: Settings) -> Path:
    return Path(settings.spool_dir) / "telemetry"


def sender_stats_path(settings: Settings) -> Path:
    return Path(settings.spool_dir) / "telemetry-sender.json"


def _server_logger(stream) -> None:
    """Our own lines go to the console only (never to telemetry), in azmlinfsrv's format."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("scoring")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _capture(settings: Settings) -> Capture | None:
    if not settings.sends_telemetry:
        return None
    identity = Identity(settings.instrumentation_key, settings.service_name, settings.workspace_name, settings.container_id)
    if settings.deployment:
        identity.base_properties["Deployment"] = settings.deployment
    switch = SwitchFile(Path(settings.spool_dir))
    queue = TelemetryQueue(Spool(telemetry_dir(settings)), interval=0.5, switch=switch).start()
    queue.enabled = switch()
    capture = Capture(identity, queue, settings.log_response)
    capture_module.install(capture)
    dependencies.install(capture)
    return capture


def _loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _http() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def main() -> None:
    settings = Settings.from_env()
    listener = socket.socket(fileno=int(os.environ[FD_VAR]))
    console_err = sys.__stderr__
    _server_logger(console_err)
    level = os.environ.get("AZUREML_LOG_LEVEL")
    if level and level.upper() in logging.getLevelNamesMapping():
        logging.getLogger().setLevel(level.upper())
    capture = _capture(settings)
    app = ScoringApp(settings, UserScript(settings.entry_script), capture, console_err, sender_stats_path(settings))
    app.model_data = modeldata.install(settings, capture)
    if os.environ.get(load.STATUS_DIR_VAR):
        load.LoadReporter(app, os.environ[load.STATUS_DIR_VAR], sample=settings.autoscale_enabled).start()
    if os.environ.get(load.INIT_FIRST_VAR) and not app.init_before_serving():
        _exit_unserved(capture, app.exit_code or 3)
    config = uvicorn.Config(
        app, loop=_loop(), http=_http(), lifespan="on", access_log=False, server_header=False, date_header=False,
        timeout_keep_alive=30, timeout_graceful_shutdown=int(settings.graceful_timeout_s), backlog=2048,
    )
    server = uvicorn.Server(config)
    app.on_fatal = lambda code: setattr(server, "should_exit", True)
    _survive_reraised_signals(server)
    try:
        server.run(sockets=[listener])
    finally:
        if capture is not None:
            capture.queue.close()
        if app.model_data is not None:
            app.model_data.close()
    sys.exit(app.exit_code or 0)


def _exit_unserved(capture: Capture | None, code: int) -> None:
    """init() failed before this worker served anything: keep its telemetry (the exception) on disk, exit."""
    if capture is not None:
        capture.queue.close()
    sys.exit(code)


def _survive_reraised_signals(server: uvicorn.Server) -> None:
    """uvicorn handles SIGTERM/SIGINT while it serves, then restores the handlers it found and
    raises the signal again. With the default handlers that kills the process right there, before
    the telemetry queue is flushed to the spool (the requests just finished would be lost), so the
    handlers it finds only ask the server to exit (which also covers a signal that arrives before
    uvicorn installed its own) and let main() finish."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: setattr(server, "should_exit", True))


if __name__ == "__main__":
    main()
