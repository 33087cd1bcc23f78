"""Creating the ClickHouse tables that a state module owns (monitors.py, models.py): the same shapes
and rules as control.py's tables (ReplacingMergeTree for state that changes, read with FINAL;
MergeTree for state that only grows; on a cluster replicated to every server under a Keeper path
without `{shard}`), declared next to the SQL that uses them rather than in control.py.
"""

from __future__ import annotations

import threading

from collector.store.clickhouse import control

TableSpec = tuple[str, str, str, str]
"""(columns, engine, engine arguments, the rest: ORDER BY ...), as control.TABLES."""


def statements(database: str, cluster: str | None, tables: dict[str, TableSpec]) -> list[str]:
    """CREATE TABLE IF NOT EXISTS for each table (idempotent)."""
    on_cluster = f" ON CLUSTER `{cluster}`" if cluster else ""
    return [f"CREATE TABLE IF NOT EXISTS `{database}`.`{name}`{on_cluster} ({columns}) "
            f"ENGINE = {_engine(kind, arguments, cluster, database, name)} {rest}"
            for name, (columns, kind, arguments, rest) in tables.items()]


def _engine(kind: str, arguments: str, cluster: str | None, database: str, table: str) -> str:
    if not cluster:
        return f"{kind}({arguments})"
    path = control.CONTROL_KEEPER_PATH.replace("{database}", database).replace("{table}", table)
    return f"Replicated{kind}('{path}', '{{replica}}'" + (f", {arguments})" if arguments else ")")


_lock = threading.Lock()


def ensure(connection: control.Connection, tables: dict[str, TableSpec]) -> None:
    """Create the tables if they are missing (once per connection and set of tables)."""
    control.ensure_tables(connection)  # the database, and the control tables beside ours
    with _lock:
        done: set[str] = getattr(connection, "_state_tables_ensured", set())
        missing = {name: spec for name, spec in tables.items() if name not in done}
        if not missing:
            return
        client = connection.client()
        for statement in statements(connection.database, connection.cluster, missing):
            client.command(statement)
        connection._state_tables_ensured = done | set(missing)  # type: ignore[attr-defined]
