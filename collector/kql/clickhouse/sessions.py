"""row_window_session on ClickHouse: the session walk of the DuckDB UDF as an `arrayFold`.

On DuckDB (collector/kql/sessions.py) the ordered stage `_rw_p` gains the helper columns
`__kql_rw<k>_v/_f/_n/_r` (value, max distance from the first, max distance between neighbours,
restart), the `kql_compute('row_window_session', ...)` UDF walks the values in `__kql_ord` order
(series_math.session_starts) and its list of session starts (microseconds) is unnested next to
`range(1, n + 1)` and joined back on `__kql_ord`. ClickHouse runs no Python, so here the walk is an
`arrayFold` over `groupArray((__kql_ord, value, restart))` sorted by `__kql_ord`, with the UDF's
steps: a null value has no session and moves nothing; a row starts a session when it is the first
(no start yet), restarts, or is more than the first distance after the session's start or more
than the neighbour distance after the previous non-null value. The starts are then
`arrayJoin(arrayEnumerate(...))`ed to (position, start) and joined back on `__kql_ord` as on DuckDB,
and read back with `fromUnixTimestamp64Micro(..., 'UTC')` (DuckDB's `make_timestamp`).

ClickHouse evaluates a CTE once per reference and its parallel reads may order rows that tie in the
serialize order differently each time, so the two reads of `_rw_p` (the rows and the walk) could
pair a row with another tie's start. `_rw_p` becomes `MATERIALIZED` (read once, with the setting
`enable_materialized_cte`, which `settings_for` adds to a query holding one).

`arrayFold` copies its accumulator (the starts so far) each step, so the walk is quadratic in the
rows: over more than MAX_ROWS rows the query is refused when it runs (a 400 naming it), not left
to run for minutes.
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp, parse_one

from .udfs import UNSUPPORTED_MARK

MAX_ROWS = 20_000
_SETTING = {"enable_materialized_cte": 1}
_HELPER = re.compile(r"^__kql_rw(\d+)_v$")

_WALK = """(SELECT arrayJoin(arrayEnumerate(__kql_l)) AS __kql_ord, arrayElement(__kql_l, __kql_ord) AS __kql_rw{k}
FROM (SELECT tupleElement(arrayFold((__kql_acc, __kql_x) -> if(isNull(tupleElement(__kql_x, 2)),
    (arrayPushBack(tupleElement(__kql_acc, 1), NULL), tupleElement(__kql_acc, 2), tupleElement(__kql_acc, 3)),
    (arrayPushBack(tupleElement(__kql_acc, 1), {start}), {start}, tupleElement(__kql_x, 2))),
  __kql_items, (CAST([], 'Array(Nullable(Int64))'), CAST(NULL, 'Nullable(Int64)'), CAST(NULL, 'Nullable(Int64)'))), 1)
  AS __kql_l
  FROM (SELECT arraySort(__kql_t -> tupleElement(__kql_t, 1), groupArray((__kql_ord,
      CAST(toUnixTimestamp64Micro(toDateTime64(__kql_rw{k}_v, 6, 'UTC')) AS Nullable(Int64)),
      ifNull(CAST(__kql_rw{k}_r AS Nullable(Bool)), false)))) AS __kql_items,
    toInt64(any(__kql_rw{k}_f)) AS __kql_first, toInt64(any(__kql_rw{k}_n)) AS __kql_between FROM _rw_p)
  WHERE throwIf(length(__kql_items) > {limit},
    '{mark}row_window_session over more than {limit} rows is not supported on the clickhouse store') = 0))"""
# A session starts at x: no start yet, a restart, too far from the start or from the previous value.
_START = ("if(isNull(tupleElement(__kql_acc, 2)) OR isNull(tupleElement(__kql_acc, 3)) OR tupleElement(__kql_x, 3)"
          " OR tupleElement(__kql_x, 2) - tupleElement(__kql_acc, 2) > __kql_first"
          " OR tupleElement(__kql_x, 2) - tupleElement(__kql_acc, 3) > __kql_between,"
          " tupleElement(__kql_x, 2), tupleElement(__kql_acc, 2))")


def session_walks(tree: exp.Expr) -> exp.Expr:
    """Each join of a `kql_compute('row_window_session', ...)` walk (see the module doc) as the
    same walk in ClickHouse functions; its `make_timestamp` read-back and its `_rw_p` CTE with it."""
    for join in list(tree.find_all(exp.Join)):
        k = _walked_call(join)
        select = join.parent_select
        if k is None or not isinstance(select, exp.Select):
            continue
        join.set("this", _walk(k, join.this.alias))
        for projection in select.expressions:
            if isinstance(projection, exp.Alias) and projection.alias == f"__kql_rw{k}":
                projection.set("this", exp.func("fromUnixTimestamp64Micro", exp.column(f"__kql_rw{k}", table=f"r{k}"),
                                                 exp.Literal.string("UTC")))
        for cte in select.ctes:
            if cte.alias == "_rw_p":
                cte.set("materialized", True)
    return tree


def settings_for(sql: str) -> dict[str, Any]:
    """The setting a lowered query holding a MATERIALIZED CTE needs (ClickHouse otherwise ignores
    the word and evaluates the CTE per reference)."""
    return dict(_SETTING) if " MATERIALIZED (" in sql else {}


def _walked_call(join: exp.Join) -> int | None:
    """k when *join* joins the session starts of call k (the UDF over `__kql_rw<k>_v`), else None."""
    if not isinstance(join.this, exp.Subquery):
        return None
    for call in join.this.find_all(exp.Anonymous):
        first = call.expressions[0] if call.name.lower() == "kql_compute" and call.expressions else None
        if isinstance(first, exp.Literal) and first.name == "row_window_session":
            for column in call.find_all(exp.Column):
                match = _HELPER.match(column.name)
                if match:
                    return int(match.group(1))
    return None


def _walk(k: int, alias: str) -> exp.Expr:
    """The walk of call k as a subquery aliased *alias* (see _WALK)."""
    text = _WALK.format(k=k, start=_START, limit=MAX_ROWS, mark=UNSUPPORTED_MARK)
    walk = parse_one(text, read="clickhouse")
    return exp.Subquery(this=walk.this if isinstance(walk, exp.Subquery) else walk,
                        alias=exp.TableAlias(this=exp.to_identifier(alias)))
