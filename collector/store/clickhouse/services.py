"""Services, keys and payload settings kept in ClickHouse, so that a service created, rotated or
switched off through one collector works the same on every other within seconds.

The interface is store/services.py's (Registry, CollectionSettings), and so are the rules: API keys
kept only as SHA-256 and a prefix, the key in clear returned once, keys looked up by their digest
(whose timing says nothing about the key). What differs is where the truth is: every collector
keeps a snapshot of the `services` table that a background thread reloads every
`REFRESH_SECONDS` (ingestion and authorisation read it on every request, so they never wait on
the store), and a change is written first, then applied to the snapshot.

`services` is a ReplacingMergeTree keyed by name, read with FINAL; a delete is a row with
`is_deleted = 1`. ClickHouse has no unique constraint, so two collectors may create the same name
at once: both rows land, and the version decides. A creation's version counts *down* from
VERSION_BASE with its time, so the earliest creation wins in every reader's eyes (and each creator,
reading back, answers 201 only if it won, 409 otherwise); later changes count up from VERSION_BASE
and always beat creations, the latest change winning. Two changes at once to one service (rotate on
one collector, disable on another) keep the later one whole: they are admin actions, rare, and the
answer of each says what it set.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from collector.store.clickhouse import control
from collector.store.services import (
    NAME_PATTERN,
    Collection,
    Service,
    ServiceError,
    ServiceLookups,
    _new_key,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

REFRESH_SECONDS = 2.0
"""How stale a collector's view of services may be: a key made elsewhere works here after this."""
VERSION_BASE = 1 << 62
"""Creation versions are VERSION_BASE - time (earliest wins), changes VERSION_BASE + time (latest wins)."""

_COLUMNS = "name, instrumentation_key, api_key_sha256, api_key_prefix, enable_app_insights, created_at"


def _micros() -> int:
    return time.time_ns() // 1000


class Registry(ServiceLookups):
    """store/services.py's Registry over ClickHouse (see the module docstring)."""

    def __init__(self, connection: control.Connection, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._connection = connection
        self._table = control.table(connection, "services")
        self._by_name: dict[str, Service] = {}
        self._by_ikey: dict[str, Service] = {}
        self._by_api_key: dict[str, Service] = {}
        self._routing: dict[str, tuple[str, bool]] | None = None
        self._lock = threading.Lock()
        self._changing = asyncio.Lock()
        self._refresh_seconds = refresh_seconds
        self._stopping = threading.Event()
        self.refresh()
        self._thread = threading.Thread(target=self._keep_fresh, name="services-refresh", daemon=True)
        self._thread.start()

    # reads: the snapshot, answered by ServiceLookups -----------------------------------------------

    def refresh(self) -> None:
        """Reload the snapshot from the store."""
        self._install(self._read_all())

    def close(self) -> None:
        self._stopping.set()

    def _keep_fresh(self) -> None:
        while not self._stopping.wait(self._refresh_seconds):
            try:
                self.refresh()
            except Exception as error:  # noqa: BLE001 - the store may be away: keep the last snapshot
                log.warning("services: could not reload from the store: %s", error)

    def _read_all(self) -> list[Service]:
        rows = self._connection.client().query(
            f"SELECT {_COLUMNS} FROM {self._table} FINAL WHERE NOT is_deleted",
            settings=control.read_settings(self._connection)).result_rows
        return [Service(*row) for row in rows]

    def _install(self, services: list[Service]) -> None:
        by_name = {service.name: service for service in services}
        with self._lock:
            self._by_name = by_name
            self._by_ikey = {s.instrumentation_key.lower(): s for s in by_name.values()}
            self._by_api_key = {s.api_key_sha256: s for s in by_name.values()}
            self._routing = None

    def _remember(self, service: Service | None, name: str) -> None:
        """Apply one committed change to the snapshot at once (the refresh would within seconds)."""
        services = {n: s for n, s in self._by_name.items() if n != name}
        if service is not None:
            services[name] = service
        self._install(list(services.values()))

    # writes ------------------------------------------------------------------------------------

    async def create(self, name: str, enable_app_insights: bool = True) -> Service:
        """The new service, with its API key in clear (`api_key`) this once; 409 if the name is taken,
        here or on another collector (the earliest creation wins)."""
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ServiceError("name: 3 to 32 letters, digits or '-'")
        async with self._changing:
            if name in self._by_name:
                raise ServiceError(f"a service named {name!r} already exists", 409)
            key, key_digest, prefix = _new_key()
            service = Service(name=name, instrumentation_key=str(uuid.uuid4()), api_key_sha256=key_digest,
                              api_key_prefix=prefix, enable_app_insights=bool(enable_app_insights),
                              created_at=datetime.now(UTC).replace(tzinfo=None))
            stored = await self._run(lambda: self._create(service))
            if stored is None or stored.instrumentation_key != service.instrumentation_key:
                if stored is not None:
                    self._remember(stored, name)
                raise ServiceError(f"a service named {name!r} already exists", 409)
            self._remember(service, name)
        return replace(service, api_key=key)

    def _create(self, service: Service) -> Service | None:
        """Insert the creation, then read back which creation won; the stored service."""
        current = self._read_one(service.name)
        if current is not None:
            return current
        recreating = self._was_deleted(service.name)
        version = VERSION_BASE + _micros() if recreating else VERSION_BASE - _micros()
        self._write(service, version)
        return self._read_one(service.name)

    def import_service(self, service: Service) -> bool:
        """A service moved from a DuckDB store with its keys (`insights store copy`), so its SDKs and
        API key keep working; False, writing nothing, when the name exists here already."""
        if self._read_one(service.name) is not None:
            return False
        stored = self._create(replace(service, api_key=None))
        self._remember(stored, service.name)
        return True

    async def rotate_key(self, name: str) -> Service:
        """A new API key, in clear this once; the old one stops working here at once and on every
        other collector within REFRESH_SECONDS."""
        async with self._changing:
            old = await self._run(lambda: self._current(name))
            key, key_digest, prefix = _new_key()
            service = replace(old, api_key_sha256=key_digest, api_key_prefix=prefix)
            await self._run(lambda: self._write(service, VERSION_BASE + _micros()))
            self._remember(service, name)
        return replace(service, api_key=key)

    async def update(self, name: str, enable_app_insights: bool) -> Service:
        async with self._changing:
            old = await self._run(lambda: self._current(name))
            service = replace(old, enable_app_insights=bool(enable_app_insights))
            await self._run(lambda: self._write(service, VERSION_BASE + _micros()))
            self._remember(service, name)
        return service

    async def delete(self, name: str) -> None:
        """Removes the service and its keys; its telemetry stays until retention removes it."""
        async with self._changing:
            service = await self._run(lambda: self._current(name))
            await self._run(lambda: self._write(service, VERSION_BASE + _micros(), deleted=True))
            self._remember(None, name)

    def _current(self, name: str) -> Service:
        """The service as the store has it now (not the snapshot: a change builds on the latest)."""
        service = self._read_one(name)
        if service is None:
            raise ServiceError(f"no service named {name!r}", 404)
        return service

    def _read_one(self, name: str) -> Service | None:
        rows = self._connection.client().query(
            f"SELECT {_COLUMNS} FROM {self._table} FINAL WHERE name = {{name:String}} AND NOT is_deleted",
            parameters={"name": name}, settings=control.read_settings(self._connection)).result_rows
        return Service(*rows[0]) if rows else None

    def _was_deleted(self, name: str) -> bool:
        rows = self._connection.client().query(
            f"SELECT count() FROM {self._table} WHERE name = {{name:String}} AND is_deleted",
            parameters={"name": name}, settings=control.read_settings(self._connection)).result_rows
        return bool(rows[0][0])

    def _write(self, service: Service, version: int, deleted: bool = False) -> None:
        self._connection.client().command(
            f"INSERT INTO {self._table} ({_COLUMNS}, version, is_deleted) SELECT {{name:String}}, {{ikey:String}}, "
            "{sha:String}, {prefix:String}, {enabled:Bool}, {created:DateTime64(6, 'UTC')}, {version:UInt64}, "
            "{deleted:UInt8}",
            parameters={"name": service.name, "ikey": service.instrumentation_key, "sha": service.api_key_sha256,
                        "prefix": service.api_key_prefix, "enabled": service.enable_app_insights,
                        "created": service.created_at, "version": version, "deleted": int(deleted)},
            settings=control.write_settings(self._connection))

    @staticmethod
    async def _run(work: Callable[[], T]) -> T:
        return await asyncio.wrap_future(control.submit(work))


class CollectionSettings:
    """store/services.py's CollectionSettings over ClickHouse: payload logging per service, read from
    a snapshot every wrapper poll, reloaded with the services' rhythm (REFRESH_SECONDS)."""

    def __init__(self, connection: control.Connection, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._connection = connection
        self._table = control.table(connection, "service_collection")
        self._refresh_seconds = refresh_seconds
        self._loaded_at = 0.0
        self._by_service: dict[str, Collection] = {}
        self._reload()

    def get(self, service: str) -> Collection:
        if time.monotonic() - self._loaded_at > self._refresh_seconds:
            try:
                self._reload()
            except Exception as error:  # noqa: BLE001 - keep the last view while the store is away
                log.warning("payload settings: could not reload: %s", error)
                self._loaded_at = time.monotonic()
        return self._by_service.get(service, Collection())

    def _reload(self) -> None:
        rows = self._connection.client().query(
            f"SELECT service, collections, sample_rate FROM {self._table} FINAL",
            settings=control.read_settings(self._connection)).result_rows
        self._by_service = {name: Collection(tuple(c for c in text.split(",") if c), rate) for name, text, rate in rows}
        self._loaded_at = time.monotonic()

    async def set(self, service: str, collection: Collection) -> Collection:
        text = collection.stored_text()
        await asyncio.wrap_future(control.submit(lambda: self._connection.client().command(
            f"INSERT INTO {self._table} (service, collections, sample_rate, version) "
            "SELECT {service:String}, {text:String}, {rate:Float64}, {version:UInt64}",
            parameters={"service": service, "text": text, "rate": collection.sample_rate, "version": _micros()},
            settings=control.write_settings(self._connection))))
        self._by_service[service] = collection
        return collection
