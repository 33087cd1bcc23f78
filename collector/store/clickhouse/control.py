"""The control tables on ClickHouse: what N collectors share besides telemetry (services and keys,
payload settings, console logs, counters, export settings and checkpoints, leases), so that no
collector holds state that another needs. tables.py registers these with every other table the
store uses (alerts, endpoints, models, monitors, live metrics) and creates them all.

ClickHouse has no transactions, no unique keys and no UPDATE in place; each table is shaped for that:
- state that changes (a service, a setting, a checkpoint) is a `ReplacingMergeTree` keyed by what
  identifies it, each change a new row with a larger version, read with `FINAL` (the newest version
  wins even before a merge folds the others away);
- state that only grows (console lines, counter increments, lease claims) is an append-only
  `MergeTree`/`SummingMergeTree`, read by aggregation.
On a cluster these tables are replicated to every server of every shard (one Keeper path per table,
without `{shard}`): they are small, every collector reads them, and a Distributed table would spread
one service's state over shards. Inserts then wait for a quorum and reads ask for sequential
consistency (`write_settings`, `read_settings`), so a collector reads what another has acknowledged.
Checked only on paper here: chdb runs one node, without Keeper.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from collector.store.writer import Overloaded

T = TypeVar("T")

CONTROL_KEEPER_PATH = "/clickhouse/insights/{database}/{table}"
"""Where a replicated control table keeps its Keeper state: no `{shard}`, so every server holds it."""


class Connection(Protocol):
    """What the control modules need of the store's connection (store/clickhouse/location.py's
    ClickHouseConnection): the database, the cluster if any, and this thread's client."""

    database: str
    cluster: str | None

    def client(self) -> Any: ...


TableSpec = tuple[str, str, str, str]
"""(columns, engine, engine arguments, the rest: ORDER BY ..., TTL ..., SETTINGS ...)."""

TABLES: dict[str, TableSpec] = {
    "services": (
        "name String, instrumentation_key String, api_key_sha256 String, api_key_prefix String, "
        "enable_app_insights Bool, created_at DateTime64(6, 'UTC'), version UInt64, is_deleted UInt8",
        "ReplacingMergeTree", "version, is_deleted", "ORDER BY name"),
    "service_collection": (
        "service String, collections String, sample_rate Float64, version UInt64",
        "ReplacingMergeTree", "version", "ORDER BY service"),
    "console_logs": (
        "service String, seq Int64 CODEC(Delta, ZSTD(1)), time DateTime64(6, 'UTC'), stream LowCardinality(String), "
        "instance Nullable(String), line String CODEC(ZSTD(1)), verified Bool",
        "MergeTree", "", "ORDER BY (service, verified, seq)"),
    "service_counters": (
        "service String, counter LowCardinality(String), value Int64",
        "SummingMergeTree", "", "ORDER BY (service, counter)"),
    "export_settings": (
        "service String, settings String, updated_at DateTime64(6, 'UTC'), version UInt64",
        "ReplacingMergeTree", "version", "ORDER BY service"),
    "export_checkpoints": (
        "service String, record_type LowCardinality(String), seq Int64, items Int64, blobs Int64, "
        "pending_first Nullable(Int64), pending_last Nullable(Int64), pending_items Nullable(Int64), "
        "pending_name Nullable(String), updated_at DateTime64(6, 'UTC'), fence UInt64, version UInt128",
        "ReplacingMergeTree", "version", "ORDER BY (service, record_type)"),
    "leases": (
        "name String, epoch UInt64, holder String, inserted DateTime64(6, 'UTC') DEFAULT now64(6), ttl_ms UInt32, "
        "expires DateTime64(6, 'UTC') DEFAULT inserted + toIntervalMillisecond(ttl_ms)",
        "MergeTree", "", "ORDER BY (name, epoch, inserted) TTL toDateTime(inserted) + INTERVAL 1 DAY"),
}


def table(connection: Connection, name: str) -> str:
    """A control table's qualified name."""
    return f"`{connection.database}`.`{name}`"


def read_settings(connection: Connection) -> dict[str, Any]:
    """Reads see every acknowledged write (replicas: only a replica that has them answers)."""
    return {"select_sequential_consistency": 1} if connection.cluster else {}


def write_settings(connection: Connection) -> dict[str, Any]:
    """Writes are synchronous, and acknowledged by a quorum of replicas on a cluster."""
    settings: dict[str, Any] = {"async_insert": 0}
    if connection.cluster:
        settings.update(insert_quorum="auto", insert_quorum_parallel=0)
    return settings


_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="clickhouse-control")


def submit(work: Callable[[], T]) -> Future[T]:
    """Run a control write off the event loop; the future resolves once ClickHouse acknowledged it
    (as the DuckDB writer's futures resolve once committed). A ClickHouse that refuses or cannot be
    reached raises Overloaded, which the API answers 503 + Retry-After, as for the DuckDB writer."""
    return _pool.submit(_as_overloaded, work)


def _as_overloaded(work: Callable[[], T]) -> T:
    from clickhouse_connect.driver.exceptions import ClickHouseError

    try:
        return work()
    except ClickHouseError as error:
        raise Overloaded(f"the ClickHouse store did not take this write: {error}") from error
