"""DuckDB SQL from the translator in, ClickHouse SQL out: parse (dialect duckdb), apply the rules,
scope the placeholder tables, generate (dialect clickhouse).

sqlglot's transpiler alone gets filters, `top`, `count()` and `dcount` right but breaks the hot
paths (/work/shared/reference/clickhouse.md: `bin()`, percentiles, the clock parameter, outer-join
NULLs, regex escaping). Each of those is a rule of its own in rules.py, applied here in order; a
construct no rule can express in ClickHouse raises `not supported on the clickhouse store` (a
400), never a query that would answer different rows.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from ..errors import UNSUPPORTED, KqlError
from ..timespan import Window
from . import refusals, rules, sessions
from .scoping import scope_parameters, scope_tables

_ANY_WINDOW = Window(datetime(1970, 1, 1), datetime(1970, 1, 1))  # only its presence shapes the SQL

SETTINGS_BASE = {
    "readonly": 1,
    "join_use_nulls": 1,  # outer joins give NULL, not the type's default (rules.outer_join_nulls)
    "aggregate_functions_null_for_empty": 0,
    "allow_experimental_analyzer": 1,
    "cast_keep_nullable": 1,
    # A select alias that names a column (`bin(timestamp, 5m) AS timestamp`) must not shadow the
    # column inside the other expressions, as ClickHouse aliases do by default.
    "prefer_column_name_to_alias": 1,
}


@dataclass(frozen=True)
class Lowered:
    """ClickHouse SQL, its bound values (the query's own and the scope's) and its settings."""

    sql: str
    parameters: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)


def lower(sql: str, parameters: dict[str, Any], *, database: str, services: Sequence[str] | None,
          window: Window | None = None) -> Lowered:
    """The ClickHouse form of the translator's *sql* for this scope (see the module doc)."""
    text = _lowered_text(sql, database, services is None, window is None)
    values = {rules.CLOCK_PARAMETER if k == "kqlnow" else k: v for k, v in parameters.items()}
    # Only the parameters the SQL binds: given values and no `{name: Type}` in the text,
    # clickhouse-connect would %-format the query (and fail on every `%` in it).
    bound = {k: v for k, v in {**values, **scope_parameters(services, window)}.items() if f"{{{k}:" in text}
    return Lowered(text, bound, {**SETTINGS_BASE, **sessions.settings_for(text)})


@lru_cache(maxsize=512)
def _lowered_text(sql: str, database: str, all_services: bool, all_time: bool) -> str:
    """The lowered text depends on the scope's shape only (its values are bound): cached, as
    dashboards repeat their queries and copying and generating a wide tree is most of the cost."""
    tree = lower_tree(sql).copy()
    tree = scope_tables(tree, database, None if all_services else (), None if all_time else _ANY_WINDOW)
    return generate(tree)


@lru_cache(maxsize=512)
def lower_tree(sql: str) -> exp.Expr:
    """The rules applied to *sql* (cached per translated SQL: dashboards repeat their queries);
    callers copy the result before changing it."""
    with _deeper_recursion():
        try:
            tree = sqlglot.parse_one(sql, read="duckdb")
        except SqlglotError:
            raise KqlError(UNSUPPORTED, "this query is not supported on the clickhouse store") from None
        for rule in rules.RULES:
            tree = rule(tree)
        refusals.refuse_leftovers(tree)
        return tree


def generate(tree: exp.Expr) -> str:
    with _deeper_recursion():
        return tree.sql(dialect="clickhouse")


@contextmanager
def _deeper_recursion() -> Iterator[None]:
    """sqlglot's parser and generator recurse about twenty frames per parenthesis, and `search`
    over a table nests one per column (27 deep): more than Python's default 1,000 frames. The
    limit is raised while lowering (Python 3.11 frames of pure-Python calls take no C stack)."""
    global _raised
    with _recursion_lock:
        if _raised == 0:
            sys.setrecursionlimit(max(sys.getrecursionlimit(), _DEEP))
        _raised += 1
    try:
        yield
    finally:
        with _recursion_lock:
            _raised -= 1
            if _raised == 0:
                sys.setrecursionlimit(_NORMAL)


_DEEP = 20_000
_NORMAL = sys.getrecursionlimit()
_recursion_lock = threading.Lock()
_raised = 0
