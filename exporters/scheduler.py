"""The export scheduler: one background thread in the collector process that exports each configured
service on its interval, applies retention, and runs manual exports (`insights export run`).

It never blocks ingestion or queries: it reads on its own cursor (DuckDB's MVCC lets the writer
commit meanwhile), DuckDB writes the JSON outside the GIL, and its only writes (settings,
checkpoints, retention) are small operations queued to the single writer like anyone else's.
A failing destination costs only that service's export: the error goes into status, the
checkpoint stays where it was (nothing is skipped), and the pass is retried with backoff.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from collector.store.database import Store
from collector.store.services import Registry
from exporters.export import export_service, pending_items
from exporters.retention import apply_retention
from exporters.settings import Destination, ExportSettings
from exporters.sinks import FolderSink, Sink, sink_for

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300.0
SinkFactory = Callable[[Destination, Path], Sink]


@dataclass
class Run:
    """One pass of one service, scheduled or asked for; `future` resolves when it ends."""

    id: int
    manual: bool
    state: str = "queued"  # queued | running | done | failed
    total: int = 0
    done: int = 0
    error: str | None = None
    future: Future = field(default_factory=Future)

    def to_json(self) -> dict:
        return {"id": self.id, "manual": self.manual, "state": self.state, "total": self.total,
                "done": self.done, "error": self.error}


@dataclass
class ServiceState:
    """What status reports about a service beyond its checkpoints (kept in memory)."""

    next_due: float | None = None
    last_run: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    failures: int = 0
    retention_deleted: int = 0
    run: Run | None = None
    queued: Run | None = None


class ExportScheduler:
    def __init__(self, store: Store, registry: Registry, data_dir: Path, sink_factory: SinkFactory = sink_for,
                 guard: ExportGuard | None = None):
        self._guard = guard
        """On a store N collectors share: the export lease (only its holder exports) and how often to
        reload settings that another collector may have saved. None: this collector alone exports."""
        self._settings_loaded = 0.0
        self._registry = registry
        self._data_dir = Path(data_dir)
        self._sink_factory = sink_factory
        self._exports = store.exports
        self._settings: dict[str, ExportSettings] = {}
        self._states: dict[str, ServiceState] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._run_ids = itertools.count(1)
        self._thread: threading.Thread | None = None

    # lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Load settings and start exporting (backlogs first)."""
        self._load_settings()
        self._clear_staging()
        self._thread = threading.Thread(target=self._loop, name="export-scheduler", daemon=True)
        self._thread.start()

    def _load_settings(self) -> None:
        """Settings from the store; a service whose settings are new or changed is due now."""
        stored = self._exports.load_settings()
        now = time.monotonic()
        self._settings_loaded = now
        for name, data in stored.items():
            try:
                settings = ExportSettings.model_validate(data)
            except ValueError as error:  # stored by another version: report it, keep the collector up
                self._state(name).last_error = f"stored export settings are invalid, PUT new ones: {error}"
                continue
            with self._lock:
                if self._settings.get(name) != settings:
                    self._settings[name] = settings
                    self._state(name).next_due = now

    def _reload_settings_if_due(self) -> None:
        """On a shared store, settings saved through another collector apply here within seconds."""
        if self._guard is None or time.monotonic() - self._settings_loaded < self._guard.settings_every:
            return
        try:
            self._load_settings()
        except Exception as error:  # noqa: BLE001 - the store may be away: keep the settings in hand
            log.warning("export settings not reloaded: %s", error)
            self._settings_loaded = time.monotonic()

    def _clear_staging(self) -> None:
        """Staging files a crash left behind are garbage (their ranges get re-exported): remove them
        from the Azure staging folder and from every folder destination."""
        folders = {self._data_dir, self._data_dir / "blob"}
        for settings in self._settings.values():
            destination = settings.destination_for(self._data_dir)
            if destination.kind == "folder":
                assert destination.path is not None  # a 'folder' destination always has its path
                folders.add(destination.path)
        for folder in folders:
            try:
                FolderSink(folder).clear_staging()
            except OSError as error:
                log.warning("cannot clear export staging in %s: %s", folder, error)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the blob in hand (its checkpoint included) and stop."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # what the API calls -------------------------------------------------------------------------

    def settings(self, name: str) -> ExportSettings | None:
        self._registry.get(name)
        return self._settings.get(name)

    async def configure(self, name: str, settings: ExportSettings) -> None:
        """Store the settings (through the writer), then export on the new terms at once."""
        self._registry.get(name)
        await asyncio.wrap_future(self._exports.save_settings(name, settings.model_dump()))
        with self._lock:
            self._settings[name] = settings
            self._state(name).next_due = time.monotonic()
        self._wake.set()

    def request_run(self, name: str) -> Run:
        """Export the service now, once, even if scheduled export is off; an already queued run is reused."""
        self._registry.get(name)
        with self._lock:
            state = self._state(name)
            if state.queued is None:
                state.queued = Run(next(self._run_ids), manual=True)
            run = state.queued
        self._wake.set()
        return run

    def status(self, name: str) -> dict:
        service = self._registry.get(name)
        settings = self._settings.get(name)
        effective = settings or ExportSettings()
        state = self._state(name)
        checkpoints = self._exports.checkpoints(name)
        lag = pending_items(self._exports, name, effective.types, checkpoints)
        run = state.run or state.queued
        return {
            "service": service.name,
            "configured": settings is not None,
            "enabled": bool(settings and settings.enabled),
            "destination": effective.destination_for(self._data_dir).describe(),
            "types": effective.types,
            "interval_seconds": effective.interval_seconds,
            "retention_days": effective.retention_days,
            "last_run": _iso(state.last_run or _latest(c.updated_at for c in checkpoints.values())),
            "last_success": _iso(state.last_success),
            "next_run": _iso(_wall_clock(state.next_due)) if settings and settings.enabled else None,
            "items_exported": sum(c.items for c in checkpoints.values()),
            "blobs": sum(c.blobs for c in checkpoints.values()),
            "lag": sum(lag.values()),
            "lag_by_type": lag,
            "last_error": state.last_error,
            "last_error_at": _iso(state.last_error_at),
            "consecutive_failures": state.failures,
            "retention_deleted": state.retention_deleted,
            "run": run.to_json() if run else None,
            **({"exporting_collector": self._guard.holder()} if self._guard else {}),
        }

    def all_status(self) -> list[dict]:
        return [self.status(service.name) for service in self._registry.all()]

    # the thread ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._reload_settings_if_due()
            picked = self._next()
            if picked is None:
                self._wake.wait(self._seconds_to_next())
                self._wake.clear()
                continue
            name, run = picked
            self._pass(name, run)

    def _next(self) -> tuple[str, Run] | None:
        """A service with a manual run queued, else the most overdue scheduled one; None if none is due."""
        now = time.monotonic()
        with self._lock:
            for name, state in self._states.items():
                if state.queued is not None:
                    run, state.queued = state.queued, None
                    return name, run
            due = [(s.next_due, n) for n, s in self._states.items()
                   if s.next_due is not None and s.next_due <= now and n in self._settings and self._exists(n)]
        if not due:
            return None
        name = min(due)[1]
        return name, Run(next(self._run_ids), manual=False)

    def _seconds_to_next(self) -> float:
        with self._lock:
            dues = [s.next_due for n, s in self._states.items()
                    if s.next_due is not None and n in self._settings and self._exists(n)]
        wait = max(0.05, min(dues) - time.monotonic()) if dues else 60.0
        return min(wait, self._guard.settings_every) if self._guard else wait

    def _pass(self, name: str, run: Run) -> None:
        settings = self._settings.get(name) or ExportSettings()
        state = self._state(name)
        if self._guard is not None and not self._guard.held():
            self._not_holding(state, run)
            return
        state.run, run.state = run, "running"
        state.last_run = _utcnow()
        try:
            self._export_and_retain(name, settings, run)
        except Exception as error:  # noqa: BLE001 - any failure is reported and retried, never fatal
            self._failed(name, state, settings, run, error)
        else:
            state.failures, state.last_success, run.state = 0, _utcnow(), "done"
            state.next_due = time.monotonic() + settings.interval_seconds
        finally:
            run.future.set_result(run.to_json())

    def _export_and_retain(self, name: str, settings: ExportSettings, run: Run) -> None:
        service = self._registry.get(name)
        if settings.retention_days:
            self._state(name).retention_deleted += apply_retention(self._exports, name, settings)
        if not (settings.enabled or run.manual):
            return
        sink = self._sink_factory(settings.destination_for(self._data_dir), self._data_dir)
        run.total = sum(pending_items(self._exports, name, settings.types, self._exports.checkpoints(name)).values())
        export_service(self._exports, service, settings, sink,
                       on_blob=lambda _type, items: _advance(run, items),
                       should_stop=self._should_stop)

    def _should_stop(self) -> bool:
        """Between blobs: stop when asked to, or when the lease is lost (its successor carries on)."""
        return self._stopping.is_set() or (self._guard is not None and not self._guard.held())

    def _not_holding(self, state: ServiceState, run: Run) -> None:
        """Another collector holds the export lease and exports; this one checks back later."""
        assert self._guard is not None
        state.next_due = time.monotonic() + self._guard.settings_every
        if run.manual:
            run.state = "failed"
            run.error = (f"export runs on the collector holding the export lease ({self._guard.holder()}), "
                         "on its schedule")
        else:
            run.state = "done"
        run.future.set_result(run.to_json())

    def _failed(self, name: str, state: ServiceState, settings: ExportSettings, run: Run, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}" if not str(error).startswith(type(error).__name__) else str(error)
        log.warning("export of %s failed (attempt %d): %s", name, state.failures + 1, message)
        state.failures += 1
        state.last_error, state.last_error_at = message, _utcnow()
        run.state, run.error = "failed", message
        backoff = min(MAX_BACKOFF_SECONDS, 2.0 ** (state.failures - 1), settings.interval_seconds)
        state.next_due = time.monotonic() + backoff

    def _state(self, name: str) -> ServiceState:
        with self._lock:
            return self._states.setdefault(name, ServiceState())

    def _exists(self, name: str) -> bool:
        return any(service.name == name for service in self._registry.all())


@dataclass(frozen=True)
class ExportGuard:
    """What a scheduler on a store shared by N collectors needs: whether this collector holds the
    export lease now, who does (for messages), and how often to reload settings."""

    held: Callable[[], bool]
    holder: Callable[[], str]
    settings_every: float = 2.0


def _advance(run: Run, items: int) -> None:
    run.done += items


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _wall_clock(monotonic: float | None) -> datetime | None:
    if monotonic is None:
        return None
    return datetime.fromtimestamp(time.time() + (monotonic - time.monotonic()), UTC)


def _latest(moments) -> datetime | None:
    values = [m.replace(tzinfo=UTC) for m in moments if m is not None]
    return max(values) if values else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None
