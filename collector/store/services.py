"""Services: who may send (instrumentation key), who may read (api key), and the on/off switch.

The registry keeps every service in memory, because each ingested item is routed by its iKey and
each query is authorised by its key; changes are written through the single writer and applied to
memory only once committed. Keys are looked up by their SHA-256, so the lookup's timing says
nothing about the key itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

import duckdb

from collector.store.writer import Writer

NAME_PATTERN = re.compile(r"^[A-Za-z0-9-]{3,32}$")

DDL = (
    """CREATE TABLE IF NOT EXISTS services (
        name VARCHAR PRIMARY KEY,
        instrumentation_key VARCHAR NOT NULL UNIQUE,
        api_key VARCHAR NOT NULL UNIQUE,
        enable_app_insights BOOLEAN NOT NULL DEFAULT TRUE,
        created_at TIMESTAMP NOT NULL
    )""",
)


class ServiceError(ValueError):
    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class Service:
    name: str
    instrumentation_key: str
    api_key: str
    enable_app_insights: bool
    created_at: datetime

    def to_json(self, ingestion_endpoint: str) -> dict:
        data = asdict(self)
        data["created_at"] = self.created_at.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
        data["connection_string"] = (
            f"InstrumentationKey={self.instrumentation_key};IngestionEndpoint={ingestion_endpoint}"
        )
        return data


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class Registry:
    def __init__(self, con: duckdb.DuckDBPyConnection, writer: Writer):
        self._writer = writer
        self._by_name: dict[str, Service] = {}
        self._by_ikey: dict[str, Service] = {}
        self._by_api_key: dict[bytes, Service] = {}
        self._routing: dict[str, tuple[str, bool]] | None = None
        rows = con.execute(
            "SELECT name, instrumentation_key, api_key, enable_app_insights, created_at FROM services"
        ).fetchall()
        for row in rows:
            self._remember(Service(*row))

    def all(self) -> list[Service]:
        return sorted(self._by_name.values(), key=lambda s: s.name)

    def get(self, name: str) -> Service:
        service = self._by_name.get(name)
        if service is None:
            raise ServiceError(f"no service named {name!r}", 404)
        return service

    def by_instrumentation_key(self, ikey: str) -> Service | None:
        return self._by_ikey.get(ikey.lower())

    def routing(self) -> dict[str, tuple[str, bool]]:
        """iKey -> (name, enabled), a plain snapshot that ingestion workers can be handed."""
        if self._routing is None:
            self._routing = {
                ikey: (service.name, service.enable_app_insights) for ikey, service in self._by_ikey.items()
            }
        return self._routing

    def by_api_key(self, key: str) -> Service | None:
        return self._by_api_key.get(_digest(key))

    async def create(self, name: str, enable_app_insights: bool = True) -> Service:
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ServiceError("name: 3 to 32 letters, digits or '-'")
        if name in self._by_name:
            raise ServiceError(f"a service named {name!r} already exists", 409)
        service = Service(
            name=name,
            instrumentation_key=str(uuid.uuid4()),
            api_key=secrets.token_urlsafe(24),
            enable_app_insights=bool(enable_app_insights),
            created_at=datetime.now(UTC).replace(tzinfo=None),
        )
        await self._commit(
            lambda con: con.execute(
                "INSERT INTO services (name, instrumentation_key, api_key, enable_app_insights, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [service.name, service.instrumentation_key, service.api_key, service.enable_app_insights, service.created_at],
            )
        )
        self._remember(service)
        return service

    async def update(self, name: str, enable_app_insights: bool) -> Service:
        service = replace(self.get(name), enable_app_insights=bool(enable_app_insights))
        await self._commit(
            lambda con: con.execute(
                "UPDATE services SET enable_app_insights = ? WHERE name = ?", [service.enable_app_insights, name]
            )
        )
        self._remember(service)
        return service

    async def delete(self, name: str) -> None:
        """Removes the service and its keys; its telemetry stays until retention removes it."""
        service = self.get(name)
        await self._commit(lambda con: con.execute("DELETE FROM services WHERE name = ?", [name]))
        del self._by_name[name]
        del self._by_ikey[service.instrumentation_key.lower()]
        del self._by_api_key[_digest(service.api_key)]
        self._routing = None

    async def _commit(self, operation) -> None:
        await asyncio.wrap_future(self._writer.write(operation=operation))

    def _remember(self, service: Service) -> None:
        self._routing = None
        self._by_name[service.name] = service
        self._by_ikey[service.instrumentation_key.lower()] = service
        self._by_api_key[_digest(service.api_key)] = service
