"""`row_window_session(expr, max_from_first, max_between_neighbors[, restart])`: the value of
*expr* at the start of each row's session, over serialized rows.

A row starts a new session when it is the first, when *restart* is true for it, when its value is
more than *max_from_first* after the session's first value, or more than *max_between_neighbors*
after the previous row's. That depends on where the current session began, which no SQL window
frame expresses, so the values are walked once, in row order, in the `kql_compute` UDF
(series_math.session_starts): the ordered stage (window.py) gains one column per call, holding the
session starts, joined back on the row number. Null values belong to no session (null out).
"""

from __future__ import annotations

from typing import Any

from . import syntax
from .errors import SEMANTIC, KqlError, position
from .series_functions import UDF_NAME
from .stages import Staging

_MICROS = "CAST(round(epoch({}) * 1000000) AS BIGINT)"


def add_columns(staging: Staging, text: str, numbered: str, prelude: str, calls: list[Any]) -> str:
    """A stage over *numbered* with `__kql_rw<k>` holding call k's session starts; its name."""
    extends = []
    for k, call in enumerate(calls):
        args = [syntax.span(text, a) for a in syntax.children(call, "ArgumentExpression")]
        if len(args) not in (3, 4):
            line, pos = position(text, call.start.start)
            raise KqlError(SEMANTIC, "row_window_session takes (expression, max distance from the first, "
                           "max distance between neighbors[, restart])", line, pos)
        restart = args[3] if len(args) == 4 else "false"
        extends.append(f"__kql_rw{k}_v = {args[0]}, __kql_rw{k}_f = {args[1]}, __kql_rw{k}_n = {args[2]}, "
                       f"__kql_rw{k}_r = tobool({restart})")
    prepared = staging.sql(f"{prelude}{numbered}\n| extend {', '.join(extends)}")
    helpers = ", ".join(f"__kql_rw{k}_{x}" for k in range(len(calls)) for x in "vfnr")
    joins, columns = [], []
    for k in range(len(calls)):
        walked = (f"{UDF_NAME}('row_window_session', CAST(to_json(list(epoch_us(__kql_rw{k}_v) ORDER BY __kql_ord)) "
                  f"AS VARCHAR), CAST(json_array(any_value({_MICROS.format(f'__kql_rw{k}_f')}), "
                  f"any_value({_MICROS.format(f'__kql_rw{k}_n')}), to_json(list(__kql_rw{k}_r ORDER BY __kql_ord))) "
                  "AS VARCHAR))")
        joins.append(f"JOIN (SELECT unnest(range(1, len(l) + 1)) AS __kql_ord, unnest(l) AS __kql_rw{k} "
                     f"FROM (SELECT CAST(CAST({walked} AS JSON) AS BIGINT[]) AS l FROM _rw_p)) r{k} USING (__kql_ord)")
        columns.append(f"make_timestamp(r{k}.__kql_rw{k}) AS __kql_rw{k}")
    return staging.add(f"WITH _rw_p AS ({prepared}) SELECT p.* EXCLUDE ({helpers}), {', '.join(columns)} "
                       f"FROM _rw_p p {' '.join(joins)}")


def replaced(text: str, node: Any, calls: list[Any]) -> str:
    """The operator's text with call k replaced by its column `__kql_rw<k>`."""
    base = node.start.start
    edits = [(c.start.start - base, c.stop.stop + 1 - base, f"__kql_rw{k}") for k, c in enumerate(calls)]
    return syntax.apply(syntax.span(text, node), edits)
