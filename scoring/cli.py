"""`insights score` and `insights logs`, as plain functions the `insights` app registers.

`score` takes azmlinfsrv's flag names (with underscores, so a user's command line still works) and
its environment variables; `--service NAME` asks the collector for that service's connection string,
or APPLICATIONINSIGHTS_CONNECTION_STRING gives it directly. A wrapper started with `--service` also
presents the key it found the collector with (INSIGHTS_API_KEY, else the local admin.key), so that
the collector takes its heartbeats as the service's state; one with only a connection string sends
telemetry and console lines, and its state reads as unverified unless INSIGHTS_API_KEY is set.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Optional

import typer

from scoring import config
from scoring.config import Settings, SettingsError


def score_command(
    entry_script: Optional[str] = typer.Option(None, "--entry_script", "--entry-script", help="The score.py to host (or AZUREML_ENTRY_SCRIPT)."),
    model_dir: Optional[str] = typer.Option(None, "--model_dir", "--model-dir", help="Sets AZUREML_MODEL_DIR for the script."),
    port: int = typer.Option(5001, "--port", help="Scoring port."),
    host: str = typer.Option("0.0.0.0", "--host", help="Address to listen on (azmlinfsrv always uses 0.0.0.0)."),
    worker_count: Optional[int] = typer.Option(None, "--worker_count", "--worker-count", help="Worker processes (or WORKER_COUNT; default 1)."),
    service: Optional[str] = typer.Option(None, "--service", help="Collector service to send to (its connection string is fetched)."),
    appinsights_instrumentation_key: Optional[str] = typer.Option(None, "--appinsights_instrumentation_key", help="azmlinfsrv's flag: send with this key."),
    access_control_allow_origins: Optional[str] = typer.Option(None, "--access_control_allow_origins", help="CORS origins, comma-separated (or AML_CORS_ORIGINS)."),
    max_concurrent_requests: Optional[int] = typer.Option(None, "--max_concurrent_requests", help="run() calls at once per worker (or MAX_CONCURRENT_REQUESTS; default 1); over twice that pending gets 429."),
    max_request_body_bytes: Optional[int] = typer.Option(None, "--max_request_body_bytes", help="Larger bodies get 413 (or MAX_REQUEST_BODY_BYTES; default 1.5 MB)."),
    spool_dir: Optional[str] = typer.Option(None, "--spool_dir", help="Where unsent telemetry and console lines wait (or INSIGHTS_SPOOL_DIR)."),
    autoscale_enabled: bool = typer.Option(False, "--autoscale_enabled", help="Scale the worker processes by utilization (Azure ML's autoscale settings)."),
    autoscale_min_replicas: int = typer.Option(1, "--autoscale_min_replicas", help="Fewest workers with autoscale."),
    autoscale_max_replicas: int = typer.Option(10, "--autoscale_max_replicas", help="Most workers with autoscale."),
    autoscale_target_utilization: int = typer.Option(70, "--autoscale_target_utilization", help="Percent of max_concurrent_requests busy per worker to aim at."),
    autoscale_refresh_seconds: float = typer.Option(1.0, "--autoscale_refresh_seconds", help="How often utilization is measured and the workers scaled."),
    status_file: Optional[str] = typer.Option(None, "--status_file", help="Where the wrapper writes its state as JSON (workers, reloads, scale events)."),
) -> None:
    """Host a score.py (init/run) as azmlinfsrv does, with telemetry to the collector."""
    from scoring.supervisor import Supervisor

    try:
        settings = build_settings(
            entry_script=entry_script, model_dir=model_dir, port=port, host=host, worker_count=worker_count,
            service=service, ikey=appinsights_instrumentation_key, cors=access_control_allow_origins,
            max_concurrent_requests=max_concurrent_requests, max_request_body_bytes=max_request_body_bytes,
            spool_dir=spool_dir,
        )
        settings = with_autoscale(settings, status_file, enabled=autoscale_enabled, min_replicas=autoscale_min_replicas,
                                  max_replicas=autoscale_max_replicas, target_utilization=autoscale_target_utilization,
                                  refresh_seconds=autoscale_refresh_seconds)
    except SettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(Supervisor(settings).run())


def logs_command(
    name: str = typer.Argument(..., help="Service name."),
    lines: int = typer.Option(100, "--lines", "-n", help="How many of the last lines."),
) -> None:
    """A service's console output (what its wrapper printed), also after a crash."""
    from collector.client import Webservice, Workspace

    text = Webservice(Workspace(), name).get_logs(lines=lines)
    if text:
        typer.echo(text)


def build_settings(*, entry_script, model_dir, port, host, worker_count, service, ikey, cors,
                   max_concurrent_requests, max_request_body_bytes, spool_dir, environ=os.environ) -> Settings:
    script = entry_script or environ.get("AZUREML_ENTRY_SCRIPT")
    if not script:
        raise SettingsError("--entry_script is required (or set AZUREML_ENTRY_SCRIPT)")
    if not os.path.isfile(script):
        raise SettingsError(f"--entry_script {script!r}: no such file")
    instrumentation_key, endpoint = _destination(service, ikey, environ)
    name = service or environ.get("SERVICE_NAME") or "ML service"
    return Settings(
        entry_script=os.path.realpath(script),
        model_dir=os.path.realpath(model_dir) if model_dir else environ.get("AZUREML_MODEL_DIR"),
        host=host,
        port=port,
        worker_count=worker_count or config.env_int("WORKER_COUNT", 1, environ),
        service_name=name,
        workspace_name=environ.get("WORKSPACE_NAME", ""),
        container_id=config.container_id(environ),
        instrumentation_key=instrumentation_key,
        ingestion_endpoint=endpoint,
        telemetry_enabled=config.telemetry_switch(environ) or bool(ikey),
        log_response=config.env_flag("APP_INSIGHTS_LOG_RESPONSE_ENABLED", False, environ),
        scoring_timeout_ms=config.env_int("SCORING_TIMEOUT_MS", config.DEFAULT_TIMEOUT_MS, environ),
        max_request_body_bytes=max_request_body_bytes or config.env_int("MAX_REQUEST_BODY_BYTES", config.DEFAULT_MAX_BODY_BYTES, environ),
        max_concurrent_requests=max_concurrent_requests or config.env_int("MAX_CONCURRENT_REQUESTS", 1, environ),
        cors_origins=config.cors_origins(cors or environ.get("AML_CORS_ORIGINS")),
        deployment=environ.get("INSIGHTS_DEPLOYMENT", ""),
        spool_dir=spool_dir or environ.get("INSIGHTS_SPOOL_DIR") or config.default_spool_dir(service or instrumentation_key or "local"),
        spool_max_bytes=config.env_int("INSIGHTS_SPOOL_MAX_MB", 256, environ) * 2**20,
        flush_timeout_s=config.env_int("INSIGHTS_FLUSH_TIMEOUT_MS", 5000, environ) / 1000,
        api_key=_vouching_key(service, environ),
    )


def with_autoscale(settings: Settings, status_file: str | None, *, enabled: bool, min_replicas: int, max_replicas: int,
                   target_utilization: int, refresh_seconds: float) -> Settings:
    """The settings with the status file and autoscale (scoring/autoscale.py); SettingsError naming a bad value."""
    if min_replicas < 1 or max_replicas < min_replicas:
        raise SettingsError(f"--autoscale_min_replicas {min_replicas} / --autoscale_max_replicas {max_replicas}: "
                            "need 1 <= min <= max")
    if not 1 <= target_utilization <= 100:
        raise SettingsError(f"--autoscale_target_utilization {target_utilization}: a percentage, 1 to 100")
    if not refresh_seconds > 0:
        raise SettingsError(f"--autoscale_refresh_seconds {refresh_seconds}: must be above 0")
    return replace(settings, status_file=os.path.realpath(status_file) if status_file else "", autoscale_enabled=enabled,
                   autoscale_min_replicas=min_replicas, autoscale_max_replicas=max_replicas,
                   autoscale_target_utilization=target_utilization, autoscale_refresh_seconds=refresh_seconds)


def _vouching_key(service: str | None, environ) -> str | None:
    """The key the wrapper's heartbeats and console lines present (see scoring/heartbeat.py)."""
    if service:
        from collector.client import resolve_collector

        return resolve_collector(environ=environ).api_key
    return environ.get("INSIGHTS_API_KEY") or None


def _destination(service: str | None, ikey: str | None, environ) -> tuple[str | None, str | None]:
    """(instrumentation key, ingestion endpoint): the connection string, else the service's own."""
    connection = environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING")
    key, endpoint = config.parse_connection_string(connection) if connection else (None, None)
    key = ikey or config.key_from_aml_env(environ) or key
    if key is None and service:
        key, endpoint = _service_destination(service)
    if key and not endpoint:
        from collector.client import resolve_collector

        endpoint = resolve_collector(environ=environ).url
    return key, endpoint


def _service_destination(service: str) -> tuple[str, str]:
    from collector.client import InsightsError, Webservice, Workspace

    try:
        connection = Webservice(Workspace(), service).connection_string
    except InsightsError as error:
        raise SettingsError(f"--service {service}: {error}") from None
    return config.parse_connection_string(connection)
