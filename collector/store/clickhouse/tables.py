"""Every ClickHouse table the store uses, in one registry: the telemetry tables (schema.py, from
store/schema.py's TABLES) and the state tables N collectors share, each declared once next to the
SQL that uses it (control.py: services, keys, console, counters, export, leases; alert_tables.py:
alerts and availability tests; endpoints.py; models.py: the model registry and its files;
monitors.py; live.py: `live_share`).

One code path creates them: `insights store migrate` (migrate.py, schema version 2 and the
reconciling step after the versions) and a collector opening the store (shared.py) both call
`create_missing`, which creates only the tables `system.tables` lacks. On a migrated store the
collector's call is one query and no DDL; a table a later release adds to this registry is created
by either without a migration of its own (as migrate.add_missing_columns does for columns).

The state tables share one layout rule (control.py's docstring says why): ReplacingMergeTree for
state that changes (read with FINAL), MergeTree/SummingMergeTree for state that only grows; on a
cluster each is replicated to every server under a Keeper path without `{shard}`.
"""

from __future__ import annotations

from collector.store.clickhouse import alert_tables, control, endpoints, live, models, monitors
from collector.store.clickhouse.schema import MIGRATIONS_TABLE, data_table_name, quote
from collector.store.schema import TABLES as TELEMETRY

STATE_TABLES: dict[str, control.TableSpec] = {
    **control.TABLES,
    **alert_tables.TABLES,
    **endpoints.TABLES,
    **models.TABLES,
    **monitors.TABLES,
    live.TABLE: live.SPEC,
}
"""Every state table, by name."""


def table_names(cluster: str | None = None) -> set[str]:
    """The names of every table a migrated store holds (the ledger included)."""
    telemetry = {name for table in TELEMETRY for name in {table, data_table_name(table, cluster)}}
    return telemetry | set(STATE_TABLES) | {MIGRATIONS_TABLE}


def engine(kind: str, arguments: str, cluster: str | None, database: str, table: str) -> str:
    """The table's engine: replicated to every server on a cluster (one Keeper path per table)."""
    if not cluster:
        return f"{kind}({arguments})"
    path = control.CONTROL_KEEPER_PATH.replace("{database}", database).replace("{table}", table)
    return f"Replicated{kind}('{path}', '{{replica}}'" + (f", {arguments})" if arguments else ")")


def state_statement(database: str, cluster: str | None, name: str) -> str:
    """CREATE TABLE IF NOT EXISTS for one state table (idempotent)."""
    columns, kind, arguments, rest = STATE_TABLES[name]
    on_cluster = f" ON CLUSTER {quote(cluster)}" if cluster else ""
    return (f"CREATE TABLE IF NOT EXISTS {quote(database)}.{quote(name)}{on_cluster} ({columns}) "
            f"ENGINE = {engine(kind, arguments, cluster, database, name)} {rest}")


def state_statements(database: str, cluster: str | None = None) -> list[str]:
    """CREATE TABLE IF NOT EXISTS for every state table (schema version 2)."""
    return [state_statement(database, cluster, name) for name in STATE_TABLES]


def missing_state_tables(connection: control.Connection) -> list[str]:
    """The state tables the store's database lacks, in registry order."""
    rows = connection.client().query("SELECT name FROM system.tables WHERE database = {db:String}",
                                     parameters={"db": connection.database}).result_rows
    present = {row[0] for row in rows}
    return [name for name in STATE_TABLES if name not in present]


def create_missing(connection: control.Connection) -> list[str]:
    """Create the state tables the store lacks; the ones created (none on a current store)."""
    missing = missing_state_tables(connection)
    client = connection.client()
    for name in missing:
        client.command(state_statement(connection.database, connection.cluster, name))
    return missing
