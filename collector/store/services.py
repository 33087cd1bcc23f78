"""Services: who may send (instrumentation key), who may read (api key), and the on/off switch.

The registry keeps every service in memory, because each ingested item is routed by its iKey and
each query is authorised by its key; changes are written through the single writer and applied to
memory only once committed.

API keys are kept only as their SHA-256 (hex) and a short prefix for display: the key in clear is
returned once, by `create` and `rotate_key`, and is never written anywhere. A plain (unsalted)
SHA-256 is enough because the keys are 192 random bits, not passwords: nobody can guess one from its
digest, so a salt or a per-install pepper (an HMAC secret) would protect nothing more, and a pepper
kept beside the database would add a file whose loss invalidates every key. Keys are looked up by
their digest, so the lookup's timing says nothing about the key itself.

Data dirs made before keys were hashed hold them in clear (column `api_key`); `migrate` hashes them
in place when the store opens.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import duckdb

from collector.store.transactions import transaction
from collector.store.writer import Writer

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9-]{3,32}$")
PREFIX_LENGTH = 6
"""Characters of a key shown in place of it (36 of its 192 random bits): enough to tell keys apart."""
MASK = "…"

_COLUMNS = "name, instrumentation_key, api_key_sha256, api_key_prefix, enable_app_insights, created_at"


def _table_ddl(table: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {table} (
        name VARCHAR PRIMARY KEY,
        instrumentation_key VARCHAR NOT NULL UNIQUE,
        api_key_sha256 VARCHAR NOT NULL UNIQUE,
        api_key_prefix VARCHAR NOT NULL,
        enable_app_insights BOOLEAN NOT NULL DEFAULT TRUE,
        created_at TIMESTAMP NOT NULL
    )"""


DDL = (
    _table_ddl("services"),
    """CREATE TABLE IF NOT EXISTS service_collection (
        service VARCHAR PRIMARY KEY,
        collections VARCHAR NOT NULL,
        sample_rate DOUBLE NOT NULL
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
    api_key_sha256: str
    api_key_prefix: str
    enable_app_insights: bool
    created_at: datetime
    api_key: str | None = field(default=None, repr=False, compare=False)
    """The key in clear: set only on what `create` and `rotate_key` return, never kept."""

    def to_json(self, ingestion_endpoint: str) -> dict:
        """The service as the API shows it: `api_key` is the key in clear only in the answer to
        create and rotate-key (`api_key_masked` false), else its prefix and a mask."""
        return {
            "name": self.name,
            "instrumentation_key": self.instrumentation_key,
            "api_key": self.api_key or self.api_key_prefix + MASK,
            "api_key_prefix": self.api_key_prefix,
            "api_key_masked": self.api_key is None,
            "enable_app_insights": self.enable_app_insights,
            "created_at": self.created_at.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z"),
            "connection_string": (
                f"InstrumentationKey={self.instrumentation_key};IngestionEndpoint={ingestion_endpoint}"
                f";LiveEndpoint={ingestion_endpoint}"  # SDKs that stream live metrics (QuickPulse) stream to us
            ),
        }


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> tuple[str, str, str]:
    """(key, its digest, its prefix)."""
    key = secrets.token_urlsafe(24)
    return key, digest(key), key[:PREFIX_LENGTH]


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Hash the keys of a services table that still holds them in clear (column `api_key`), in one
    transaction; the number of keys hashed, 0 when there was nothing to do (so it runs at every
    open). The table is rebuilt rather than altered: DuckDB cannot drop a UNIQUE column, and a new
    table leaves none of the old one's blocks in use."""
    columns = {row[0] for row in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = 'services'"
    ).fetchall()}
    if "api_key" not in columns:
        return 0
    with transaction(con):
        rows = con.execute(
            "SELECT name, instrumentation_key, api_key, enable_app_insights, created_at FROM services"
        ).fetchall()
        con.execute("DROP TABLE IF EXISTS services_hashed")
        con.execute(_table_ddl("services_hashed"))
        if rows:
            con.executemany(
                f"INSERT INTO services_hashed ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                [[name, ikey, digest(key), key[:PREFIX_LENGTH], enabled, created]
                 for name, ikey, key, enabled, created in rows],
            )
        con.execute("DROP TABLE services")
        con.execute("ALTER TABLE services_hashed RENAME TO services")
    if rows:
        log.warning(
            "hashed the API keys of %d service(s) that this data dir kept in clear; they still work, "
            "but they were readable in the file: rotate them (`insights service rotate-key NAME`)", len(rows))
    return len(rows)


class ServiceLookups:
    """The reads every registry answers from memory, whichever store fills its maps: ingestion and
    auth look a service up on every request."""

    _by_name: dict[str, Service]
    _by_ikey: dict[str, Service]
    _by_api_key: dict[str, Service]
    _routing: dict[str, tuple[str, bool]] | None

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
        routing = self._routing  # read once: another thread may replace the maps meanwhile
        if routing is None:
            routing = self._routing = {ikey: (s.name, s.enable_app_insights) for ikey, s in self._by_ikey.items()}
        return routing

    def by_api_key(self, key: str) -> Service | None:
        return self._by_api_key.get(digest(key))


class Registry(ServiceLookups):
    def __init__(self, con: duckdb.DuckDBPyConnection, writer: Writer):
        self._writer = writer
        self._by_name: dict[str, Service] = {}
        self._by_ikey: dict[str, Service] = {}
        self._by_api_key: dict[str, Service] = {}
        self._routing: dict[str, tuple[str, bool]] | None = None
        self._changing = asyncio.Lock()  # one change at a time: memory follows the commits in order
        for row in con.execute(f"SELECT {_COLUMNS} FROM services").fetchall():
            self._remember(Service(*row))

    async def create(self, name: str, enable_app_insights: bool = True) -> Service:
        """The new service, with its API key in clear (`api_key`) this once."""
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ServiceError("name: 3 to 32 letters, digits or '-'")
        async with self._changing:
            if name in self._by_name:
                raise ServiceError(f"a service named {name!r} already exists", 409)
            key, key_digest, prefix = _new_key()
            service = Service(
                name=name,
                instrumentation_key=str(uuid.uuid4()),
                api_key_sha256=key_digest,
                api_key_prefix=prefix,
                enable_app_insights=bool(enable_app_insights),
                created_at=datetime.now(UTC).replace(tzinfo=None),
            )
            await self._commit(
                lambda con: con.execute(
                    f"INSERT INTO services ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    [service.name, service.instrumentation_key, service.api_key_sha256, service.api_key_prefix,
                     service.enable_app_insights, service.created_at],
                )
            )
            self._remember(service)
        return replace(service, api_key=key)

    async def rotate_key(self, name: str) -> Service:
        """A new API key for the service, returned in clear this once; the old one stops working as
        soon as the change is committed. The instrumentation key stays as it is."""
        async with self._changing:
            old = self.get(name)
            key, key_digest, prefix = _new_key()
            service = replace(old, api_key_sha256=key_digest, api_key_prefix=prefix)
            await self._commit(
                lambda con: con.execute(
                    "UPDATE services SET api_key_sha256 = ?, api_key_prefix = ? WHERE name = ?",
                    [key_digest, prefix, name],
                )
            )
            del self._by_api_key[old.api_key_sha256]
            self._remember(service)
        return replace(service, api_key=key)

    async def update(self, name: str, enable_app_insights: bool) -> Service:
        async with self._changing:
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
        async with self._changing:
            service = self.get(name)
            await self._commit(lambda con: con.execute("DELETE FROM services WHERE name = ?", [name]))
            del self._by_name[name]
            del self._by_ikey[service.instrumentation_key.lower()]
            del self._by_api_key[service.api_key_sha256]
            self._routing = None

    async def _commit(self, operation) -> None:
        await asyncio.wrap_future(self._writer.write(operation=operation))

    def _remember(self, service: Service) -> None:
        self._routing = None
        self._by_name[service.name] = service
        self._by_ikey[service.instrumentation_key.lower()] = service
        self._by_api_key[service.api_key_sha256] = service


PAYLOAD_COLLECTIONS = ("request", "response")
"""What payload logging can capture without code in score.py (issue 17): the HTTP bodies."""


@dataclass(frozen=True)
class Collection:
    """A service's payload logging: which of PAYLOAD_COLLECTIONS, and the share of requests (0-1]."""

    collections: tuple[str, ...] = ()
    sample_rate: float = 1.0

    def to_json(self) -> dict:
        return {"collect": list(self.collections), "sample_rate": self.sample_rate}

    def stored_text(self) -> str:
        """The collections as either store keeps them (comma-separated, each once); a ServiceError
        naming the field when a collection is unknown or the rate is outside (0, 1]."""
        unknown = [c for c in self.collections if c not in PAYLOAD_COLLECTIONS]
        if unknown:
            raise ServiceError(f"collect: unknown collection {unknown[0]!r}; expected some of {', '.join(PAYLOAD_COLLECTIONS)}")
        if not 0 < self.sample_rate <= 1:
            raise ServiceError(f"sample_rate: {self.sample_rate} is not in (0, 1]")
        return ",".join(dict.fromkeys(self.collections))


class CollectionSettings:
    """Payload logging per service, kept apart from the services table (off unless set), read
    from memory on every wrapper poll; changes go through the single writer."""

    def __init__(self, reader, writer: Writer):
        self._writer = writer
        with reader() as cursor:
            rows = cursor.execute("SELECT service, collections, sample_rate FROM service_collection").fetchall()
        self._by_service = {name: Collection(tuple(c for c in text.split(",") if c), rate) for name, text, rate in rows}

    def get(self, service: str) -> Collection:
        return self._by_service.get(service, Collection())

    async def set(self, service: str, collection: Collection) -> Collection:
        text = collection.stored_text()
        await asyncio.wrap_future(self._writer.write(operation=lambda con: con.execute(
            "INSERT INTO service_collection VALUES (?, ?, ?) ON CONFLICT (service) DO UPDATE SET "
            "collections = excluded.collections, sample_rate = excluded.sample_rate",
            [service, text, collection.sample_rate])))
        self._by_service[service] = collection
        return collection
