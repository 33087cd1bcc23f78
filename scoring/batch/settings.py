"""A batch job's settings: the flags of an Azure ML batch deployment, checked before anything runs.

Every problem a user can fix from the command line (no entry script, no input, an empty folder, an
output that already exists, a service the collector does not know) is found here and reported as a
JobSettingsError naming the flag, so a job never starts half-way and then dies on a typo. The
settings travel to the worker processes as one JSON environment variable, as the wrapper's do.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from scoring import config

ENV_VAR = "INSIGHTS_BATCH_SETTINGS"
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class JobSettingsError(ValueError):
    """A flag is unusable; the message names it and says what to do."""


@dataclass
class JobSettings:
    entry_script: str
    input: str
    output: str
    job: str
    operation_id: str
    mini_batch_size: int = 10
    workers: int = 1
    max_retries: int = 3
    timeout: float = 30.0
    init_timeout: float = 600.0
    """Seconds a worker may take to load score.py and return from init(); separate from --timeout,
    which bounds one run() call, because loading a model takes far longer than scoring a mini-batch."""
    error_threshold: int = -1
    output_file_name: str = "predictions.csv"
    logging_level: str = "INFO"
    resource_monitor_interval: float = 600.0
    node: str = "localhost"
    service_name: str | None = None
    instrumentation_key: str | None = None
    ingestion_endpoint: str | None = None
    spool_dir: str = ""
    flush_timeout_s: float = 10.0

    @property
    def output_file(self) -> Path:
        return Path(self.output) / self.output_file_name

    @property
    def sends_telemetry(self) -> bool:
        return bool(self.instrumentation_key and self.ingestion_endpoint)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ=os.environ) -> JobSettings:
        return cls(**json.loads(environ[ENV_VAR]))


def build(*, entry_script: str, input: str, output: str, service: str | None, job: str | None,
          environ=os.environ, **options) -> JobSettings:
    """Checked settings; JobSettingsError for the first problem found."""
    script = _entry_script(entry_script)
    source = _input(input)
    out = _output(output, options.get("output_file_name", "predictions.csv"))
    level = str(options.pop("logging_level", "INFO")).upper()
    if level not in logging.getLevelNamesMapping():
        raise JobSettingsError(f"--logging_level {level}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    name = job or default_job_name(script)
    if not _JOB_NAME.match(name):
        raise JobSettingsError(f"--job_name {name!r}: use letters, digits, '.', '_' and '-' (at most 128)")
    ikey, endpoint = destination(service, environ)
    return JobSettings(
        entry_script=script, input=source, output=out, job=name, operation_id=uuid.uuid4().hex,
        logging_level=level, node=node_name(), service_name=service or (environ.get("SERVICE_NAME") if ikey else None),
        instrumentation_key=ikey, ingestion_endpoint=endpoint,
        spool_dir=str(Path(config.default_spool_dir(f"batch-{service or ikey or 'local'}")) / name), **options,
    )


def _entry_script(path: str) -> str:
    if not os.path.isfile(path):
        raise JobSettingsError(f"--entry_script {path}: no such file")
    return os.path.realpath(path)


def _input(path: str) -> str:
    if not os.path.exists(path):
        raise JobSettingsError(f"--input {path}: no such file or folder")
    return os.path.realpath(path)


def _output(path: str, file_name: str) -> str:
    if not file_name or "/" in file_name or file_name in (".", ".."):
        raise JobSettingsError(f"--output_file_name {file_name!r}: give a file name, not a path")
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise JobSettingsError(f"--output {path}: exists and is not a folder")
    for existing in (folder / file_name, folder / "logs"):
        if existing.exists():
            raise JobSettingsError(f"output already exists: {existing}; choose a new output location (--output)")
    return os.path.realpath(path)


def default_job_name(script: str) -> str:
    """`<script>-<UTC time>-<4 hex>`: sortable, readable, and unique enough to find with
    `customDimensions.job == "..."`."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(script).stem)[:40] or "batch"
    return f"{stem}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def node_name() -> str:
    """The node's folder name in the log layout (Azure ML uses the node's address)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "localhost"


def destination(service: str | None, environ=os.environ) -> tuple[str | None, str | None]:
    """(instrumentation key, ingestion endpoint): the service's, when --service is given, else
    APPLICATIONINSIGHTS_CONNECTION_STRING's, else none (a job without telemetry)."""
    if service:
        return _service_destination(service)
    connection = environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING")
    if not connection:
        return None, None
    try:
        key, endpoint = config.parse_connection_string(connection)
    except config.SettingsError as error:
        raise JobSettingsError(f"APPLICATIONINSIGHTS_CONNECTION_STRING: {error}") from None
    if endpoint:
        return key, endpoint
    from collector.client import resolve_collector

    return key, resolve_collector(environ=environ).url


def _service_destination(service: str) -> tuple[str, str]:
    from collector.client import InsightsError, Webservice, Workspace

    workspace = Workspace()
    try:
        connection = Webservice(workspace, service).connection_string
    except InsightsError as error:
        raise JobSettingsError(f"--service {service}: {error}") from None
    key, endpoint = config.parse_connection_string(connection)
    return key, endpoint or workspace.url
