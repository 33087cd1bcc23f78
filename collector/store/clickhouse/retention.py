"""Retention on ClickHouse, with export's guard: a service's rows older than its cutoff go, except rows
of an exported type that export has not delivered yet (`_seq` above the type's checkpoint).

The policy — which cutoff, which types are guarded — is exporters/retention.py's, the same for
both stores: it calls `delete_expired` on the store's export state, which on ClickHouse lands here
(store.py). What differs is how rows go:

- **Whole parts first.** A part of a day wholly before the cutoff whose visible rows are all this
  service's, all exported, is dropped with `ALTER TABLE ... DROP PART`: a metadata operation, no
  rewrite. Parts are dropped by name rather than the day with `DROP PARTITION`, because a late row
  (an SDK's retry, an import of old data) can land in an old day at any moment, and it is not
  exported yet: DROP PARTITION would take it with the rest; DROP PART takes exactly the part that
  was checked (a part merged since is no longer there to drop, so it fails and is left for the next
  step). When every part of a day qualifies, this is the same as dropping the partition.
- **Then rows.** Whatever else expired goes with a lightweight `DELETE FROM ... WHERE` (rows are
  masked at once and removed by later merges). A part that held several services' rows loses
  each service's rows this way as its retention comes; when the last one's turn comes, its rows
  are the only ones left visible and the part goes whole.

The partitioning trade-off. `PARTITION BY toDate(timestamp)` gives whole days to drop and lets
every time-bounded query skip other days, at the price of one part per day per insert: a batch
spanning midnight, or an SDK resending yesterday's items, writes parts to two partitions, and a
store keeping years has hundreds of partitions (still far under the thousands that slow
ClickHouse). Monthly partitions would merge better but drop a month at a time, long past a
30-day retention; per-service partitions would make drops exact for each service but multiply
parts by the number of services, which ClickHouse handles badly. Days, with deletes for mixed
parts, are the middle.

On a cluster the rows go with `DELETE ... ON CLUSTER` on the local tables (parts differ per shard,
so dropping by name would need each shard's own check); only checked as text here.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from collector.store.clickhouse.location import ClickHouseConnection
from collector.store.clickhouse.schema import delete_statement, quote
from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN

log = logging.getLogger(__name__)


class ClickHouseRetention:
    def __init__(self, connection: ClickHouseConnection):
        self._connection = connection

    def delete_expired(self, service: str, tables: list[str], cutoff: datetime, guards: dict[str, int]) -> int:
        """Delete the service's rows older than `cutoff` from `tables`, in a table of `guards` only
        those with `_seq` at or below its guard (the export checkpoint). The number of rows deleted."""
        return sum(self._expire(table, service, cutoff, guards.get(table)) for table in tables)

    def _expire(self, table: str, service: str, cutoff: datetime, guard: int | None) -> int:
        condition, params = _condition(service, cutoff, guard)
        client = self._connection.client()
        name = f"{quote(self._connection.database)}.{quote(table)}"
        expired = int(client.query(f"SELECT count() FROM {name} WHERE {condition}", parameters=params).result_rows[0][0])
        if not expired:
            return 0
        dropped = 0 if self._connection.cluster else self._drop_parts(table, condition, params)
        if dropped < expired:
            self._delete_rows(table, condition, params)
        return expired

    def _drop_parts(self, table: str, condition: str, params: dict) -> int:
        """Drop the parts of wholly expired days whose visible rows all match; their row count."""
        client = self._connection.client()
        name = f"{quote(self._connection.database)}.{quote(table)}"
        parts = client.query(
            f"SELECT _part, count() FROM {name} WHERE toDate(timestamp) < toDate({{cutoff:DateTime64(6, 'UTC')}}) "
            f"GROUP BY _part HAVING countIf(NOT ({condition})) = 0", parameters=params).result_rows
        dropped = 0
        for part, rows in parts:
            try:
                client.command(f"ALTER TABLE {name} DROP PART {{part:String}}", parameters={"part": part})
            except Exception as error:  # noqa: BLE001 - merged since the check: its rows go row by row
                log.info("part %s of %s not dropped (%s); its rows are deleted instead", part, table, error)
                continue
            dropped += int(rows)
        return dropped

    def _delete_rows(self, table: str, condition: str, params: dict) -> None:
        connection = self._connection
        connection.client().command(delete_statement(connection.database, table, connection.cluster, condition),
                                    parameters=params)


def _condition(service: str, cutoff: datetime, guard: int | None) -> tuple[str, dict]:
    """The WHERE clause of the rows that expired, with its parameters (a naive cutoff is UTC)."""
    condition = f"{quote(SERVICE_COLUMN)} = {{service:String}} AND timestamp < {{cutoff:DateTime64(6, 'UTC')}}"
    if cutoff.tzinfo is not None:
        cutoff = cutoff.astimezone(UTC).replace(tzinfo=None)
    params: dict = {"service": service, "cutoff": cutoff.isoformat(sep=" ")}
    if guard is not None:
        condition += f" AND {quote(SEQ_COLUMN)} <= {{guard:Int64}}"
        params["guard"] = int(guard)
    return condition, params
