"""The App Insights tables as ClickHouse MergeTree tables: the same names, columns and meaning as the
DuckDB tables of store/schema.py (which stays the one declaration of what a table holds), laid out
the way observability stores at ClickHouse scale lay them out (ClickStack, SigNoz, the OpenTelemetry
Collector's ClickHouse exporter).

The choices, each for a reason:
- **Types.** `datetime` -> `DateTime64(6, 'UTC')`: DuckDB keeps microseconds, so do we, and the zone
  is stated so that a server in another zone neither shifts nor reinterprets a value. `string` ->
  `Nullable(String)`, `LowCardinality` where a column repeats a few thousand values at most (role
  names, result codes, operation and metric names, SDK versions, ...): dictionary encoding makes them
  smaller on disk and faster to group by. `int`/`long`/`real`/`bool` -> `Int32`/`Int64`/`Float64`/
  `Bool`. `dynamic` -> `String` holding the JSON text byte for byte as DuckDB holds it, so KQL's
  `customDimensions.k` lowers to JSON functions over the same text and export writes the same bytes.
- **Nullable.** The public columns are Nullable because the DuckDB ones are: a column an SDK did not
  send is NULL there, and KQL answers (`isnull`, `isempty`, outer joins, what a row prints) must be
  the same on both stores. `timestamp`, `_service` and `_seq` are always set by the writer and are
  keys, so they are not Nullable.
- **Codecs.** Timestamps and `_seq` grow nearly monotonically inside a part: `Delta` then `ZSTD`
  stores the small differences. Durations and metric values are floats that change little between
  neighbours: `Gorilla` then `ZSTD`.
- **Partitions.** `PARTITION BY toDate(timestamp)`: one partition per day, so retention drops whole
  days with `DROP PARTITION` (a metadata operation) instead of rewriting parts; a day is coarse
  enough that a busy table has tens of partitions, not thousands (see retention.py for the cost:
  a day holding a service that must stay is pruned row by row instead).
- **Sort key.** `ORDER BY (_service, toStartOfHour(timestamp), timestamp)`: every KQL query is scoped
  to one service and nearly every one to a time range, so the primary index prunes on both; the hour
  bucket before the exact time keeps one service's hour of rows in adjacent granules even when
  its clock is skewed, and leaves room to insert a low-cardinality column after it later without
  losing the time pruning (the ClickStack and SigNoz keys start the same way).
- **Skip indexes.** `bloom_filter(0.001)` on `operation_Id` and `itemId` (the ids users paste to
  find one transaction: a lookup reads the few granules that may hold it, not the table).
  A `text` index over `lower(message)` and `lower(customDimensions)` (ClickHouse 26.2+): queries
  written `hasToken(lower(message), lower(term))`, which is KQL's case-insensitive `has`, read only
  the granules holding the token. The index is on `lower(...)`, not a `preprocessor`, so `hasToken`
  without `lower` keeps its exact, case-sensitive meaning. Servers older than 26.2 get `tokenbf_v1`
  over the same expressions instead (`text_index=False`; migrate.py decides from `version()`).
  `minmax` on `_seq` (export reads `_seq` ranges, and `_seq` follows insert time, not `timestamp`)
  and on `duration` (`where duration > 1000`).
- **Cluster.** With `cluster`: every statement `ON CLUSTER`, the data in `<table>_local`
  `ReplicatedMergeTree` tables (one copy per replica, Keeper-coordinated), and the App Insights name
  given to a `Distributed` table over them sharded by `cityHash64(operation_Id)`: one operation's
  request, dependencies, traces and exceptions land on one shard, so `join ... on operation_Id`
  stays shard-local (rows without an operation id spread by itemId). Queries and inserts use the
  Distributed name; retention's ALTERs go to the local tables. Checked as text only here: no
  multi-node ClickHouse can run on these machines (chdb is one process, without Keeper).
"""

from __future__ import annotations

from collections.abc import Iterable

from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN, TABLES, Column, Table

_LOW_CARDINALITY = frozenset(
    "itemType cloud_RoleName cloud_RoleInstance resultCode name operation_Name sdkVersion appId "
    "appName iKey client_Type client_Model client_OS client_City client_StateOrProvince "
    "client_CountryOrRegion client_Browser application_Version performanceBucket source type "
    "target category counter instance location handledAt assembly method outerType outerAssembly "
    "outerMethod innermostType innermostAssembly innermostMethod baseType collection modelVersion "
    "endpoint deployment monitor signal feature featureType metric".split()
)
"""String columns whose values repeat (at most a few thousand distinct per part)."""

_FLOAT_CODEC = frozenset("duration value valueSum valueMin valueMax valueStdDev size".split())
"""Float columns whose neighbours differ little: Gorilla before ZSTD."""

_TYPES = {
    "datetime": "DateTime64(6, 'UTC')",
    "string": "String",
    "int": "Int32",
    "long": "Int64",
    "real": "Float64",
    "bool": "Bool",
    "dynamic": "String",
}

TIME_CODEC = "CODEC(Delta, ZSTD(1))"
FLOAT_CODEC = "CODEC(Gorilla, ZSTD(1))"
MIGRATIONS_TABLE = "_insights_migrations"
LOCAL_SUFFIX = "_local"
REPLICA_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
"""Where each replicated table keeps its Keeper state (`{shard}` and `{replica}` come from each
server's macros)."""


def quote(name: str) -> str:
    """A ClickHouse identifier in backquotes (our names are letters, digits and `_`)."""
    return f"`{name}`"


def column_type(column: Column) -> str:
    """The ClickHouse type of a public column, with its codec."""
    base = _TYPES[column.kql_type]
    if column.name == "timestamp":
        return f"{base} {TIME_CODEC}"
    typed = f"Nullable({base})"
    if column.kql_type == "string" and column.name in _LOW_CARDINALITY:
        typed = f"LowCardinality({typed})"
    if column.kql_type == "real" and column.name in _FLOAT_CODEC:
        typed = f"{typed} {FLOAT_CODEC}"
    return typed


def _column_lines(table: Table) -> list[str]:
    lines = [f"{quote(c.name)} {column_type(c)}" for c in table.columns]
    lines.append(f"{quote(SERVICE_COLUMN)} LowCardinality(String)")
    lines.append(f"{quote(SEQ_COLUMN)} Int64 {TIME_CODEC}")
    return lines


def _index_lines(table: Table, text_index: bool) -> list[str]:
    names = set(table.column_names)
    lines = [f"INDEX idx_{c} {quote(c)} TYPE bloom_filter(0.001) GRANULARITY 1"
             for c in ("operation_Id", "itemId") if c in names]
    token_type = ("text(tokenizer = 'splitByNonAlpha')" if text_index
                  else "tokenbf_v1(32768, 3, 0)")
    lines += [f"INDEX idx_{c}_tokens lower({quote(c)}) TYPE {token_type} GRANULARITY 1"
              for c in ("message", "customDimensions") if c in names]
    lines.append(f"INDEX idx_seq {quote(SEQ_COLUMN)} TYPE minmax GRANULARITY 1")
    if "duration" in names:
        lines.append("INDEX idx_duration `duration` TYPE minmax GRANULARITY 1")
    return lines


def data_table_name(table: str, cluster: str | None) -> str:
    """The table that holds the rows: `<table>_local` on a cluster (ALTERs go there), else the table."""
    return table + LOCAL_SUFFIX if cluster else table


def _on_cluster(cluster: str | None) -> str:
    return f" ON CLUSTER {quote(cluster)}" if cluster else ""


def _engine(database: str, table: str, cluster: str | None) -> str:
    if not cluster:
        return "MergeTree"
    path = REPLICA_PATH.replace("{database}", database).replace("{table}", table)
    return f"ReplicatedMergeTree('{path}', '{{replica}}')"


def shard_key(table: Table) -> str:
    """The Distributed sharding expression: one operation's rows on one shard."""
    names = set(table.column_names)
    keys = [quote(c) for c in ("operation_Id", "itemId") if c in names]
    return f"cityHash64(coalesce({', '.join(keys)}, ''))"


def table_statement(database: str, table: Table, cluster: str | None = None,
                    text_index: bool = True) -> str:
    """CREATE TABLE for one App Insights table (the replicated local table on a cluster)."""
    name = data_table_name(table.name, cluster)
    body = ",\n  ".join(_column_lines(table) + _index_lines(table, text_index))
    return (
        f"CREATE TABLE IF NOT EXISTS {quote(database)}.{quote(name)}{_on_cluster(cluster)} (\n  {body}\n)\n"
        f"ENGINE = {_engine(database, name, cluster)}\n"
        "PARTITION BY toDate(timestamp)\n"
        f"ORDER BY ({quote(SERVICE_COLUMN)}, toStartOfHour(timestamp), timestamp)"
    )


def delete_statement(database: str, table: str, cluster: str | None, condition: str) -> str:
    """A lightweight DELETE of `table`'s rows matching `condition` (on a cluster: of every shard's
    local table, ON CLUSTER)."""
    target = f"{quote(database)}.{quote(data_table_name(table, cluster))}"
    return f"DELETE FROM {target}{_on_cluster(cluster)} WHERE {condition}"


def distributed_statement(database: str, table: Table, cluster: str) -> str:
    """The Distributed table under the App Insights name, over `<table>_local` on every shard."""
    local = data_table_name(table.name, cluster)
    return (
        f"CREATE TABLE IF NOT EXISTS {quote(database)}.{quote(table.name)}{_on_cluster(cluster)} "
        f"AS {quote(database)}.{quote(local)}\n"
        f"ENGINE = Distributed({quote(cluster)}, {quote(database)}, {quote(local)}, {shard_key(table)})"
    )


def database_statement(database: str, cluster: str | None = None) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {quote(database)}{_on_cluster(cluster)}"


def create_statements(database: str, cluster: str | None = None, *, text_index: bool = True,
                      tables: Iterable[Table] | None = None) -> list[str]:
    """Every statement that creates the telemetry schema in `database` (idempotent: IF NOT EXISTS),
    in order: the database, then per table the MergeTree (or, on a cluster, the replicated local
    table and its Distributed twin)."""
    statements = [database_statement(database, cluster)]
    for table in tables if tables is not None else TABLES.values():
        statements.append(table_statement(database, table, cluster, text_index))
        if cluster:
            statements.append(distributed_statement(database, table, cluster))
    return statements
