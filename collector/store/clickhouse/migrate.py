"""Versioned, idempotent migrations of a ClickHouse store (`insights store migrate`).

Each migration has a version and a list of statements that may run any number of times (CREATE
... IF NOT EXISTS, ADD COLUMN IF NOT EXISTS). `migrate` runs those not recorded yet in
`_insights_migrations`, in order, and records each once it has run; a second run finds every
version recorded and changes nothing. Two processes migrating at once both run the same
idempotent statements, and a version recorded twice reads as once. After the versions, the
telemetry tables are reconciled with store/schema.py: a column a later version adds to TABLES is
added to the ClickHouse table (as the DuckDB store does at start), so a schema change needs no
migration of its own; likewise a state table a later release adds to tables.py's registry is
created (`tables.create_missing`, the call a collector makes when it opens the store).

Version 1 made the telemetry tables; version 2 the state tables (services, keys, console, counters,
export, leases, alerts, availability tests, endpoints, the model registry, monitors, live metrics:
tables.py), which collectors used to create on first use.

A collector does not migrate: it refuses to start on a store whose schema is behind
(`check_current`), because on a cluster DDL is an operator's step (`ON CLUSTER`, Keeper), and
because N collectors starting together should not race to change a schema.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collector.store.clickhouse import tables
from collector.store.clickhouse.location import ClickHouseConnection
from collector.store.clickhouse.schema import (
    MIGRATIONS_TABLE,
    column_type,
    create_statements,
    data_table_name,
    database_statement,
    quote,
)
from collector.store.schema import TABLES

TEXT_INDEX_VERSION = (26, 2)
"""The first ClickHouse version with text indexes out of experimental (older ones get tokenbf_v1)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[str, str | None, bool], list[str]]
    """(database, cluster, text_index) -> the statements, each idempotent."""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "telemetry tables", lambda db, cluster, text: create_statements(db, cluster, text_index=text)[1:]),
    Migration(2, "state tables", lambda db, cluster, text: tables.state_statements(db, cluster)),
)


class SchemaBehind(RuntimeError):
    """The store's schema is older than this collector's: run `insights store migrate`."""


def ledger_statement(database: str, cluster: str | None) -> str:
    """The table recording applied versions (replicated on a cluster, so every replica sees them)."""
    engine = ("MergeTree" if not cluster else
              f"ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{database}/{MIGRATIONS_TABLE}', '{{replica}}')")
    on_cluster = f" ON CLUSTER {quote(cluster)}" if cluster else ""
    return (f"CREATE TABLE IF NOT EXISTS {quote(database)}.{quote(MIGRATIONS_TABLE)}{on_cluster} "
            "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            f"ENGINE = {engine} ORDER BY version")


def applied_versions(connection: ClickHouseConnection) -> set[int]:
    """The versions recorded; empty when the ledger does not exist yet."""
    client = connection.client()
    exists = client.query("SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                          parameters={"db": connection.database, "t": MIGRATIONS_TABLE}).result_rows[0][0]
    if not exists:
        return set()
    rows = client.query(f"SELECT DISTINCT version FROM {quote(connection.database)}.{quote(MIGRATIONS_TABLE)}").result_rows
    return {int(row[0]) for row in rows}


def supports_text_index(connection: ClickHouseConnection) -> bool:
    version = str(connection.client().query("SELECT version()").result_rows[0][0])
    major_minor = tuple(int(part) for part in version.split(".")[:2])
    return major_minor >= TEXT_INDEX_VERSION


def migrate(connection: ClickHouseConnection, migrations: Sequence[Migration] = MIGRATIONS) -> list[Migration]:
    """Bring the store's schema up to date; the migrations that ran (none when it was current).
    `connection` may name a database that does not exist yet: its client must not need it
    (location.ClickHouseLocation with database "default" does not)."""
    client = connection.client()
    database, cluster = connection.database, connection.cluster
    client.command(database_statement(database, cluster))
    client.command(ledger_statement(database, cluster))
    done = applied_versions(connection)
    ran = []
    text_index = supports_text_index(connection)
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        for statement in migration.statements(database, cluster, text_index):
            client.command(statement)
        client.command(f"INSERT INTO {quote(database)}.{quote(MIGRATIONS_TABLE)} (version, name) "
                       "VALUES ({version:UInt32}, {name:String})",
                       parameters={"version": migration.version, "name": migration.name},
                       settings=connection.insert_settings)
        ran.append(migration)
    add_missing_columns(connection)
    tables.create_missing(connection)
    return ran


def add_missing_columns(connection: ClickHouseConnection) -> list[str]:
    """ALTERs adding the columns TABLES declares that the ClickHouse tables lack; the ones that ran."""
    client = connection.client()
    database, cluster = connection.database, connection.cluster
    rows = client.query("SELECT table, name FROM system.columns WHERE database = {db:String}",
                        parameters={"db": database}).result_rows
    existing: dict[str, set[str]] = {}
    for table, column in rows:
        existing.setdefault(table, set()).add(column)
    on_cluster = f" ON CLUSTER {quote(cluster)}" if cluster else ""
    ran = []
    for table in TABLES.values():
        targets = [data_table_name(table.name, cluster)] + ([table.name] if cluster else [])
        for target in targets:
            for column in table.columns:
                if column.name in existing.get(target, set()):
                    continue
                statement = (f"ALTER TABLE {quote(database)}.{quote(target)}{on_cluster} "
                             f"ADD COLUMN IF NOT EXISTS {quote(column.name)} {column_type(column)}")
                client.command(statement)
                ran.append(statement)
    return ran


def check_current(connection: ClickHouseConnection, migrations: Sequence[Migration] = MIGRATIONS) -> None:
    """Raise SchemaBehind unless every migration is recorded."""
    missing = sorted({m.version for m in migrations} - applied_versions(connection))
    if missing:
        raise SchemaBehind(
            f"the ClickHouse store {connection.database!r} lacks schema version(s) {missing}: "
            "run `insights store migrate --store URL` (with --cluster NAME on a cluster) first")
