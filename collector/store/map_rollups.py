"""Per-hour rollups of requests and dependencies that the application map reads instead of the raw
rows: over a day of 10M requests and 10M dependencies, the map's three KQL queries take seconds, the
rollups a fraction of one (bench/README.md). A range's whole hours come from the rollups, its partial
hours at either end from the raw rows (the same SELECT the writer runs, on the fly): counts stay
exact for any range. Hours, not minutes: with a duration histogram per edge, per-minute rollups of
such a day hold about as many rows as the day itself.

Kept exact by construction: the writer calls `MapRollups.record` with every table it inserts,
inside the transaction that inserts it (writer.after_insert); every FLUSH_SECONDS, that transaction
also rolls up the rows stored past a mark (map_rollup_marks, per table) and moves the mark. A row is thus
either in the rollups or past the mark, never both, and the map reads the rows past the mark from
the table in the same statement (one snapshot): counted once it is stored, and only then. Imports go
through the same insert. Retention (`trim`, in the transaction of the delete) rebuilds every hour it
may have touched from the rows that remain, up to the mark. A store that had rows before the
rollups existed rolls them all up in its first flush.

FLUSH_SECONDS is 5, not 1: a flush's statements, the scan of the rows back and the pairing of recent
links cost per flush as much as per row (the writer's CPU per item under bench/ingest.py's load,
bench/README.md part 22f), and the map reads the rows past the mark from the table anyway, so a
longer interval changes no answer, only how many rows (seconds of ingestion) each map read rolls
up on the fly. Folds likewise every 30 s, not 10: the map's reads sum the unfolded rows anyway, and
each fold rewrites the touched hours' groups whatever was appended since the last.

The tables (each roll-up appends its groups; the touched hours are folded to one row per group
every FOLD_SECONDS):
- map_node_hours: requests by (service, hour, role, duration bucket): count, failed, duration sum;
- map_node_instances: the role instances seen per (service, hour, role);
- map_edge_hours: dependencies (not InProc) by (service, hour, role, target, type, bucket);
- map_link_calls / map_link_callees: the links that name the role behind a target, sampled.

Durations go into logarithmic buckets (BUCKET_RATIO wide), so a p95 read from them is within half a
bucket (2%) of the rows'.

Role resolution: a dependency whose `id` is some request's `operation_ParentId` called that
request's role. Which request that is cannot be known when the dependency arrives (the callee's
telemetry may come first, later, or from another service), so the links are kept two ways: both
sides sampled by the same rule on the linking value (a dependency id, and a request's parent id,
are kept when hash(value) % LINK_SAMPLE == 0, so a kept id's request is kept too, whatever the
order they arrived in), and the pairs seen arriving within the last RECENT_LINKS items of their
kind (what resolves a target with few calls). The query joins the two small tables; the partial
hours at a range's ends read every link from the rows. Where this differs from the raw-row map
(live/appmap.py LINKS_KQL): a (role, target) with few calls in the range's whole hours, whose
callee's requests arrived too far apart from the calls (or across a restart), and none in its
partial hours, may read as an external target; and when several roles answer one target, the role
with the most kept links wins rather than the one with the most of one id per last character.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN

BUCKET_RATIO = 1.04
LINK_SAMPLE = 16
FOLD_SECONDS = 30.0
FLUSH_SECONDS = 5.0
RECENT_LINKS = 100_000
_HOUR = timedelta(hours=1)

DDL = (
    """CREATE TABLE IF NOT EXISTS map_node_hours (service VARCHAR NOT NULL, hour TIMESTAMP NOT NULL,
        role VARCHAR NOT NULL, bucket SMALLINT, requests BIGINT NOT NULL, failed BIGINT NOT NULL,
        duration_sum DOUBLE NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS map_node_instances (service VARCHAR NOT NULL, hour TIMESTAMP NOT NULL,
        role VARCHAR NOT NULL, instance VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS map_edge_hours (service VARCHAR NOT NULL, hour TIMESTAMP NOT NULL,
        role VARCHAR NOT NULL, target VARCHAR NOT NULL, type VARCHAR NOT NULL, bucket SMALLINT,
        calls BIGINT NOT NULL, failed BIGINT NOT NULL, duration_sum DOUBLE NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS map_link_calls (service VARCHAR NOT NULL, hour TIMESTAMP NOT NULL,
        role VARCHAR NOT NULL, target VARCHAR NOT NULL, id VARCHAR NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS map_rollup_marks (source VARCHAR PRIMARY KEY, seq BIGINT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS map_link_callees (service VARCHAR NOT NULL, hour TIMESTAMP NOT NULL,
        parent_id VARCHAR NOT NULL, callee VARCHAR NOT NULL)""",
)

_BUCKET = f"CASE WHEN duration IS NULL THEN NULL ELSE floor(ln(greatest(duration, 0.001)) / ln({BUCKET_RATIO}))::SMALLINT END"
_HOUR_OF = "date_trunc('hour', \"timestamp\")"
_SERVICE = f'"{SERVICE_COLUMN}"'
_NOT_INPROC = "lower(coalesce(type, '')) <> 'inproc'"
# What each rollup table holds, as a SELECT over rows of its source table (`{rows}`, filtered by `{where}`).
_ROLLUPS: dict[str, tuple[str, str]] = {
    "map_node_hours": ("requests", f"""SELECT {_SERVICE} AS service, {_HOUR_OF} AS hour,
        coalesce(cloud_RoleName, '') AS role, {_BUCKET} AS bucket, count(*) AS requests,
        count(*) FILTER (WHERE success = false) AS failed, coalesce(sum(duration), 0) AS duration_sum
        FROM {{rows}} WHERE {{where}} GROUP BY ALL"""),
    "map_node_instances": ("requests", f"""SELECT DISTINCT {_SERVICE} AS service, {_HOUR_OF} AS hour,
        coalesce(cloud_RoleName, '') AS role, cloud_RoleInstance AS instance
        FROM {{rows}} WHERE cloud_RoleInstance IS NOT NULL AND {{where}}"""),
    "map_edge_hours": ("dependencies", f"""SELECT {_SERVICE} AS service, {_HOUR_OF} AS hour,
        coalesce(cloud_RoleName, '') AS role, coalesce(target, '') AS target, coalesce(type, '') AS type,
        {_BUCKET} AS bucket, count(*) AS calls, count(*) FILTER (WHERE success = false) AS failed,
        coalesce(sum(duration), 0) AS duration_sum FROM {{rows}} WHERE {_NOT_INPROC} AND {{where}} GROUP BY ALL"""),
    "map_link_calls": ("dependencies", f"""SELECT {_SERVICE} AS service, {_HOUR_OF} AS hour,
        coalesce(cloud_RoleName, '') AS role, coalesce(target, '') AS target, id FROM {{rows}}
        WHERE id IS NOT NULL AND {{sampled}} AND {_NOT_INPROC} AND {{where}}"""),
    "map_link_callees": ("requests", f"""SELECT {_SERVICE} AS service, {_HOUR_OF} AS hour,
        operation_ParentId AS parent_id, coalesce(cloud_RoleName, '') AS callee FROM {{rows}}
        WHERE operation_ParentId IS NOT NULL AND {{sampled}} AND {{where}}"""),
}


_READS = {
    "requests": ["timestamp", SERVICE_COLUMN, "cloud_RoleName", "cloud_RoleInstance", "duration", "success",
                 "operation_ParentId"],
    "dependencies": ["timestamp", SERVICE_COLUMN, "cloud_RoleName", "target", "type", "id", "duration", "success"],
}
"""The columns the rollups read of each table."""
_SAMPLED = {"map_link_calls": f"hash(id) % {LINK_SAMPLE} = 0",
            "map_link_callees": f"hash(operation_ParentId) % {LINK_SAMPLE} = 0"}
"""Which links the rollups keep (`{sampled}` in the SELECTs); read from the raw rows of a partial
hour, every link counts, so a short range resolves its targets as the KQL links do."""

_FOLDS = {
    "map_node_hours": "service, hour, role, bucket, sum(requests)::BIGINT, sum(failed)::BIGINT, sum(duration_sum)",
    "map_edge_hours": "service, hour, role, target, type, bucket, sum(calls)::BIGINT, sum(failed)::BIGINT, "
                        "sum(duration_sum)",
    "map_node_instances": "service, hour, role, instance",
}
"""How each aggregated rollup folds (grouped by its key columns), in its columns' order."""


@dataclass(frozen=True)
class MapRows:
    """The map's rows in the shape of live/appmap.py's three KQL queries (NODES, EDGES, LINKS)."""

    nodes: list[dict]
    edges: list[dict]
    links: list[dict]


def trim(con: duckdb.DuckDBPyConnection, service: str, cutoff: datetime) -> None:
    """After retention deleted the service's rows before `cutoff` (not always all of them: rows not
    yet exported stay): every hour up to the one holding the cutoff is rebuilt from the rows left."""
    through = _ceil_hour(cutoff)
    for rollup, (source, select) in _ROLLUPS.items():
        con.execute(f"DELETE FROM {rollup} WHERE service = ? AND hour < ?", [service, through])
        where = f'{_SERVICE} = $service AND "timestamp" < $through AND {_unrolled(source, "<=")}'
        con.execute(f"INSERT INTO {rollup} " + select.format(rows=f'"{source}"', where=where,
                                                             sampled=_SAMPLED.get(rollup, "true")),
                    {"service": service, "through": through})


class MapRollups:
    """Reads the rollups; the writer maintains them (`record`, and `trim` for retention)."""

    def __init__(self, reader: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]):
        self._reader = reader
        self._touched: set[tuple[str, datetime]] = set()  # (service, hour) with rows not yet folded
        self._folded_at = time.monotonic()
        self._recent = _RecentLinks()
        self._high: dict[str, int] = {}  # the highest _seq inserted, per table
        self._flushed_at = 0.0

    def record(self, con: duckdb.DuckDBPyConnection, table: str, incoming: pa.Table) -> None:
        """Note the rows just inserted into `table` (in the writer's transaction, by the writer's
        thread); every FLUSH_SECONDS, roll up what was stored since the last time."""
        if table not in _READS:
            return
        self._high[table] = max(self._high.get(table, -1), pc.max(incoming[SEQ_COLUMN]).as_py())
        if time.monotonic() - self._flushed_at >= FLUSH_SECONDS:
            self._flush(con)

    def _flush(self, con: duckdb.DuckDBPyConnection) -> None:
        """Roll up each table's rows past its mark (committed, or in this transaction) and move the
        mark, in the same transaction: a rolled-back flush leaves the mark where it was."""
        self._flushed_at = time.monotonic()
        marks = dict(con.execute("SELECT source, seq FROM map_rollup_marks").fetchall())
        for table, high in self._high.items():
            mark = marks.get(table, -1)
            if high <= mark:
                continue
            columns = ", ".join(f'"{column}"' for column in _READS[table])
            rows = con.sql(f'SELECT {columns} FROM "{table}" WHERE "{SEQ_COLUMN}" > {mark} '
                           f'AND "{SEQ_COLUMN}" <= {high}').to_arrow_table()
            self._roll(con, table, rows)
            con.execute("INSERT INTO map_rollup_marks VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET seq = excluded.seq",
                        [table, high])
        if time.monotonic() - self._folded_at >= FOLD_SECONDS:
            self._fold(con)

    def _roll(self, con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
        """The rollups of `rows` of `table`, appended; their hours noted for the next fold."""
        for rollup, (source, select) in _ROLLUPS.items():
            if source == table:  # DuckDB scans the local Arrow table `rows` by name
                con.execute(f"INSERT INTO {rollup} " + select.format(
                    rows="rows", where='"timestamp" IS NOT NULL', sampled=_SAMPLED.get(rollup, "true")))
        self._add_pairs(con, self._recent.pair(table, rows))
        hours = pc.floor_temporal(rows["timestamp"], unit="hour")
        touched = pa.table({"service": rows[SERVICE_COLUMN], "hour": hours}).drop_null().group_by(["service", "hour"])
        self._touched.update(zip(*touched.aggregate([]).to_pydict().values(), strict=True))

    @staticmethod
    def _add_pairs(con: duckdb.DuckDBPyConnection, pairs: tuple[pa.Table, pa.Table]) -> None:
        """The paired links the sampling did not keep already, into the link tables."""
        calls, callees = pairs  # noqa: F841 (DuckDB scans them by name)
        if not calls.num_rows:
            return
        con.execute(f"INSERT INTO map_link_calls SELECT * FROM calls WHERE NOT hash(id) % {LINK_SAMPLE} = 0")
        con.execute(f"INSERT INTO map_link_callees SELECT * FROM callees WHERE NOT hash(parent_id) % {LINK_SAMPLE} = 0")

    def _fold(self, con: duckdb.DuckDBPyConnection) -> None:
        """One row per group in the touched hours: each commit appended its own, and a quiet
        service commits a few rows at a time, so unfolded rollups would grow as fast as the rows.
        A fold lost with a failed commit leaves more rows than needed, never wrong sums."""
        self._folded_at = time.monotonic()
        if not self._touched:
            return
        services, hours = zip(*self._touched, strict=True)
        touched = pa.table({"service": pa.array(services, pa.string()),  # noqa: F841 (DuckDB reads it by name)
                            "hour": pa.array(hours, pa.timestamp("us"))})
        for rollup, columns in _FOLDS.items():
            folded = con.sql(  # noqa: F841
                f"SELECT {columns} FROM {rollup} SEMI JOIN touched USING (service, hour) GROUP BY ALL"
            ).to_arrow_table()
            con.execute(f"DELETE FROM {rollup} USING touched t WHERE {rollup}.service = t.service "
                        f"AND {rollup}.hour = t.hour")
            con.execute(f"INSERT INTO {rollup} SELECT * FROM folded")
        self._touched.clear()

    def map_rows(self, services: list[str] | None, start: datetime, end: datetime) -> MapRows:
        """Nodes, edges and links over `start`..`end` (both included, as the query API's timespan):
        the whole hours from the rollups, the partial hours at either end from the rows. Each
        source is read once; the per-bucket rows are summed here (a few thousand)."""
        with self._reader() as cursor:
            sources = {rollup: _ranged(rollup, services, start, end) for rollup in _ROLLUPS}
            nodes = sum_buckets(_query(cursor, _NODES.format(**sources)), ("role",), "requests")
            instances = dict(cursor.execute(_INSTANCES.format(**sources)).fetchall())
            edges = sum_buckets(_query(cursor, _EDGES.format(**sources)), ("role", "target", "type"), "calls")
            links = _query(cursor, _LINKS.format(**sources))
        for node in nodes:
            node["instances"] = instances.get(node["role"], 0)
        return MapRows(nodes, edges, links)


class _RecentLinks:
    """Pairs a dependency with the request it caused when both arrive within the last RECENT_LINKS
    items of their kind, in either order: that resolves a target with few calls, which the sampling
    may miss (a restart forgets what waits for its pair; the sampling still holds). A pair is
    found once, when its second half arrives (Arrow joins: a Python loop cost 8 µs per row)."""

    def __init__(self) -> None:
        self._calls = pa.table({name: pa.array([], kind) for name, kind in _CALL_FIELDS})
        self._parents = pa.table({name: pa.array([], kind) for name, kind in _PARENT_FIELDS})

    def pair(self, table: str, rows: pa.Table) -> tuple[pa.Table, pa.Table]:
        """The (calls, callees) link rows that `rows` complete; all of them wait for later pairs."""
        if table == "dependencies":
            rows = rows.filter(pc.not_equal(pc.utf8_lower(pc.fill_null(rows["type"], "")), "inproc"))
            new = _present(pa.table({"service": rows[SERVICE_COLUMN], "hour": _hours(rows),
                                     "role": _names(rows["cloud_RoleName"]), "target": _names(rows["target"]),
                                     "id": rows["id"]}), "id")
            joined = new.join(self._parents, keys="id", right_keys="parent_id", join_type="inner")
            self._calls = _last(pa.concat_tables([self._calls, new]))
        else:
            new = _present(pa.table({"parent_service": rows[SERVICE_COLUMN], "parent_hour": _hours(rows),
                                     "parent_id": rows["operation_ParentId"],
                                     "callee": _names(rows["cloud_RoleName"])}), "parent_id")
            joined = self._calls.join(new, keys="id", right_keys="parent_id", join_type="inner")
            self._parents = _last(pa.concat_tables([self._parents, new]))
        calls = joined.select(["service", "hour", "role", "target", "id"])
        callees = joined.select(["parent_service", "parent_hour", "id", "callee"]).rename_columns(
            ["service", "hour", "parent_id", "callee"])
        return calls, callees


_CALL_FIELDS = (("service", pa.string()), ("hour", pa.timestamp("us")), ("role", pa.string()),
                ("target", pa.string()), ("id", pa.string()))
_PARENT_FIELDS = (("parent_service", pa.string()), ("parent_hour", pa.timestamp("us")),
                  ("parent_id", pa.string()), ("callee", pa.string()))


def _present(rows: pa.Table, linked: str) -> pa.Table:
    return rows.filter(pc.and_(pc.is_valid(rows[linked]), pc.is_valid(rows["hour" if linked == "id" else "parent_hour"])))


def _last(rows: pa.Table) -> pa.Table:
    return rows.slice(max(0, rows.num_rows - RECENT_LINKS)).combine_chunks()


def _hours(rows: pa.Table) -> pa.Array:
    return pc.floor_temporal(rows["timestamp"], unit="hour")


def _names(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.fill_null(column, "")


_NODES = """WITH n AS ({map_node_hours}) SELECT role, bucket, sum(requests)::BIGINT AS requests,
    sum(failed)::BIGINT AS failed, sum(duration_sum) AS duration_sum, any_value(service) AS service
    FROM n GROUP BY ALL"""
_INSTANCES = """WITH i AS ({map_node_instances}) SELECT role, count(DISTINCT instance) FROM i GROUP BY role"""
_EDGES = """WITH e AS ({map_edge_hours}) SELECT role, target, type, bucket, sum(calls)::BIGINT AS calls,
    sum(failed)::BIGINT AS failed, sum(duration_sum) AS duration_sum, any_value(service) AS service
    FROM e GROUP BY ALL"""
_LINKS = """WITH c AS ({map_link_calls}), r AS ({map_link_callees})
    SELECT c.role, c.target, r.callee, count(*) AS links FROM c JOIN r ON c.id = r.parent_id GROUP BY ALL"""


def sum_buckets(rows: list[dict], key: tuple[str, ...], count: str) -> list[dict]:
    """Per-bucket rows summed per key: the count, failures, the average duration (over the rows
    with one) and the p95 from the buckets, as the KQL queries name them."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        group = groups.setdefault(tuple(row[k] for k in key), {
            **{k: row[k] for k in key}, count: 0, "failed": 0, "service": row["service"], "_timed": 0,
            "_sum": 0.0, "_buckets": []})
        group[count] += row[count]
        group["failed"] += row["failed"]
        if row["bucket"] is not None:
            group["_timed"] += row[count]
            group["_sum"] += row["duration_sum"]
            group["_buckets"].append((row["bucket"], row[count]))
    for group in groups.values():
        timed, total = group.pop("_timed"), group.pop("_sum")
        group["avgDuration"] = total / timed if timed else None
        group["p95"] = _percentile(sorted(group.pop("_buckets")), 0.95)
    return list(groups.values())


def _ranged(rollup: str, services: list[str] | None, start: datetime, end: datetime) -> str:
    """The rollup's rows over the range, as SQL: whole hours from the rollup table, the rest
    rolled up from the raw rows on the fly (the same SELECT the writer runs): the partial hours,
    and the rows of the whole hours stored since the last flush."""
    source, select = _ROLLUPS[rollup]
    scope = "" if services is None else f" AND {{column}} IN ({', '.join(_literal(s) for s in services)})"
    first, last = _ceil_hour(start), end.replace(minute=0, second=0, microsecond=0)
    raw = select.format(rows=f'"{source}"', where="{where}" + scope.format(column=_SERVICE), sampled="true")
    if first >= last:
        return raw.format(where=f'"timestamp" BETWEEN {_ts(start)} AND {_ts(end)}')
    edges = (f'("timestamp" >= {_ts(start)} AND "timestamp" < {_ts(first)} OR '
             f'"timestamp" >= {_ts(last)} AND "timestamp" <= {_ts(end)})')
    whole = (f"SELECT * FROM {rollup} WHERE hour >= {_ts(first)} AND hour < {_ts(last)}"
             + scope.format(column="service"))
    pending = f'"timestamp" >= {_ts(first)} AND "timestamp" < {_ts(last)} AND {_unrolled(source, ">")}'
    return f"{whole} UNION ALL {raw.format(where=edges)} UNION ALL {raw.format(where=pending)}"


def _unrolled(source: str, compare: str) -> str:
    """Rows of `source` past (`>`) or up to (`<=`) its mark, read in the statement that reads the
    rollups, so both come from one snapshot: a row is in the rollups or past the mark, never both."""
    return (f'"{SEQ_COLUMN}" {compare} (SELECT coalesce(max(seq), -1) FROM map_rollup_marks '
            f"WHERE source = {_literal(source)})")


def _percentile(buckets: list[tuple[int, int]], point: float) -> float | None:
    """The middle (in log space) of the bucket holding the percentile; None without timed rows."""
    total = sum(count for _, count in buckets)
    if not total:
        return None
    rank, seen = math.ceil(point * total), 0  # the nearest rank, as the KQL percentile
    for bucket, count in buckets:
        seen += count
        if seen >= rank:
            return math.exp((bucket + 0.5) * math.log(BUCKET_RATIO))
    return math.exp((buckets[-1][0] + 0.5) * math.log(BUCKET_RATIO))


def _query(cursor: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    result = cursor.execute(sql)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _ceil_hour(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + _HOUR


def _ts(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
