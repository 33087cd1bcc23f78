"""The wrapper's settings: azmlinfsrv's flags and environment variables, plus our own.

Names follow azmlinfsrv (reference/azmlinfsrv.md) wherever a setting exists there, so a user's
existing deployment environment keeps working; where azmlinfsrv is silent (body limit, concurrency,
spool) the names are ours. Settings travel from the supervisor to its worker processes as one JSON
environment variable, so both sides read exactly the same values.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

ENV_VAR = "INSIGHTS_SCORING_SETTINGS"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

DEFAULT_TIMEOUT_MS = 3_600_000
"""azmlinfsrv's SCORING_TIMEOUT_MS default."""

DEFAULT_MAX_BODY_BYTES = 1_572_864
"""1.5 MB, the managed online endpoint limit (azmlinfsrv itself has none)."""


class SettingsError(ValueError):
    """A flag or environment variable is unusable; the message names it."""


@dataclass
class Settings:
    entry_script: str
    model_dir: str | None = None
    host: str = "0.0.0.0"
    port: int = 5001
    worker_count: int = 1
    service_name: str = "ML service"
    workspace_name: str = ""
    container_id: str = "Unknown"
    instrumentation_key: str | None = None
    ingestion_endpoint: str | None = None
    telemetry_enabled: bool = True
    log_response: bool = False
    scoring_timeout_ms: int = DEFAULT_TIMEOUT_MS
    max_request_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrent_requests: int = 1
    cors_origins: list[str] = field(default_factory=list)
    deployment: str = ""
    """The online endpoint deployment this wrapper serves (INSIGHTS_DEPLOYMENT): a `Deployment` dimension on every item."""
    spool_dir: str = ""
    spool_max_bytes: int = 256 * 2**20
    graceful_timeout_s: float = 30.0
    flush_timeout_s: float = 5.0
    api_key: str | None = field(default=None, repr=False)
    """The key that vouches for this wrapper's heartbeats and console lines (the service's API key
    or the admin key; see heartbeat.py). The supervisor's alone: it does not travel to the workers."""
    status_file: str = ""
    """Where the supervisor keeps its own state (generation, workers, scale events) as JSON; none when empty."""
    autoscale_enabled: bool = False
    autoscale_min_replicas: int = 1
    autoscale_max_replicas: int = 10
    autoscale_target_utilization: int = 70
    """Percent of max_concurrent_requests busy, per worker, that autoscale aims at (Azure ML's default, 70)."""
    autoscale_refresh_seconds: float = 1.0

    def to_env(self) -> str:
        return json.dumps({**asdict(self), "api_key": None})

    @classmethod
    def from_env(cls, environ=os.environ) -> Settings:
        return cls(**json.loads(environ[ENV_VAR]))

    @property
    def ships(self) -> bool:
        """Whether anything (telemetry or console) can reach a collector."""
        return bool(self.instrumentation_key and self.ingestion_endpoint)

    @property
    def sends_telemetry(self) -> bool:
        return self.ships and self.telemetry_enabled


def parse_connection_string(text: str) -> tuple[str, str | None]:
    """(instrumentation key, ingestion endpoint) from 'InstrumentationKey=...;IngestionEndpoint=...'."""
    parts = {}
    for piece in text.split(";"):
        key, sep, value = piece.partition("=")
        if sep:
            parts[key.strip().lower()] = value.strip()
    ikey = parts.get("instrumentationkey")
    if not ikey:
        raise SettingsError("the connection string has no InstrumentationKey=...")
    endpoint = parts.get("ingestionendpoint")
    return ikey, endpoint.rstrip("/") if endpoint else None


def env_flag(name: str, default: bool, environ=os.environ) -> bool:
    value = environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_int(name: str, default: int, environ=os.environ) -> int:
    value = environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r}: expected a whole number") from None
    if number <= 0:
        raise SettingsError(f"{name}={value!r}: expected a positive number")
    return number


def default_spool_dir(name: str) -> str:
    """A stable place per service, so a restarted wrapper finds what its predecessor left."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "default"
    return str(Path(base) / "endpoint-insights" / "spool" / safe)


def telemetry_switch(environ=os.environ) -> bool:
    """AML_APP_INSIGHTS_ENABLED when set (azmlinfsrv's switch); on otherwise, since a wrapper
    given a service or connection string is asked to send."""
    return env_flag("AML_APP_INSIGHTS_ENABLED", True, environ)


def key_from_aml_env(environ=os.environ) -> str | None:
    key = environ.get("AML_APP_INSIGHTS_KEY")
    if key and not _UUID.match(key.strip()):
        raise SettingsError("AML_APP_INSIGHTS_KEY is not an instrumentation key (a UUID)")
    return key.strip() if key else None


def container_id(environ=os.environ) -> str:
    return environ.get("HOSTNAME") or socket.gethostname() or "Unknown"


def cors_origins(value: str | None) -> list[str]:
    return [origin.strip() for origin in (value or "").split(",") if origin.strip()]
