"""KQL text in, checked SQL over placeholder tables out: our one call into duckdb-kql.

This runs in the compile sandbox's worker processes (sandbox.py), never in the collector's own:
its cost is the query's to choose, and there it is bounded by the deadline and a memory cap.

Writes are disabled at the translator (`allow_write=False`) and before it: any control command
(a statement starting with `.`, e.g. `.set-or-append`, `.drop table`, `.show`) is refused here, so
none of duckdb-kql's command families is ever reached. `now()` is pinned to the instant the caller
gives, so every `now()`/`ago()` in one query agrees and the SQL carries it as a bound parameter.
The SQL is then proven one safe SELECT and its placeholder tables located (scope.placeholders),
so the collector only has to put each caller's scope in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

import duckdb_kql

from collector.store.schema import TABLES

from . import (
    aggregates,  # noqa: F401  (registers stdevp, make_bag, percentiles_array, tdigest, hash...)
    columns,
    functions,  # noqa: F401  (registers our function bridges with the translator)
    generators,  # noqa: F401  (registers the bounded renderings of range and strrep)
    joins,  # noqa: F401  (registers the outer-join stage)
    mvapply,  # noqa: F401  (registers the mv-apply stage)
    nested,  # noqa: F401  (registers the top-nested stage)
    scalars,  # noqa: F401  (registers bin_at, set_*, bag_*, format_timespan, datetime_part)
    series,  # noqa: F401  (registers the make-series stage)
    series_functions,  # noqa: F401  (registers series_fir, series_decompose...)
    stages,
    window,  # noqa: F401  (registers serialize and the window functions)
)
from .errors import FORBIDDEN, SEMANTIC, KqlError, from_translator, locate
from .fastpath import optimize
from .has_chains import fold as fold_has
from .lookup import Lookup
from .lookup import plan as plan_lookup
from .rewrite import rewrite
from .scope import SCOPE, placeholders
from .unions import for_lookup, separate

# Public columns only: `_service` and `_seq` never exist as far as the translator knows. Keyed by
# bare and placeholder-qualified name, because the translator looks tables up both ways.
_SCHEMA: dict[str, list[str]] = {}
for _table in TABLES.values():
    _SCHEMA[_table.name] = _table.column_names
    _SCHEMA[f"{SCOPE}.{_table.name}"] = _table.column_names

_COMMENT_OR_SPACE = re.compile(r"(?:\s+|//[^\n]*)*")
_ARITY = re.compile(r"^(\w+)\(\) takes \(([\d, ]*)\) argument\(s\), got (\d+)$")


@dataclass(frozen=True)
class Translation:
    """Translated SQL (tables still as placeholders), its bound values, the `render` metadata, and
    where each placeholder table sits in the SQL: (start, end, table)."""

    sql: str
    parameters: dict[str, Any]
    visualization: dict | None
    tables: tuple[tuple[int, int, str], ...] = ()
    lookup: Lookup | None = None
    """The terms that narrow the query's source tables through the lookup index (lookup.py)."""


def translate(text: str, now: datetime | None) -> Translation:
    """Validate, translate and check *text*; raise KqlError naming the problem and its position.

    With *now* None the translation is the reusable one: the SQL does not depend on the instant,
    which travels as the bound clock parameter the caller fills in. A query that sets the clock
    itself (`set query_now = ...`) is translated with the *now* given, so its own value is kept.
    """
    compiled = _cached(text) if now is None else _translate(text, now)
    try:
        tables = placeholders(compiled.sql)
    except KqlError as exc:
        raise exc.at(text, getattr(exc, "name", None)) from None
    return replace(compiled, tables=tables)


@lru_cache(maxsize=512)
def _cached(text: str) -> Translation:
    return _translate(text, datetime(2000, 1, 1))


def _translate(text: str, now: datetime) -> Translation:
    _refuse_commands(text)
    rewritten = rewrite(text, _columns_of)
    def to_sql(kql: str, extra: dict[str, list[str]]) -> duckdb_kql.TranslationResult:
        return duckdb_kql.to_sql(kql, schema={**_SCHEMA, **extra}, database=SCOPE,
                                 allow_write=False, query_now=now)

    try:
        sql, parameters = stages.translate(rewritten.text, to_sql, columns.describe)
    except duckdb_kql.KqlError as exc:
        error = from_translator(exc, rewritten.text)
        if rewritten.changed:
            # Positions in the bridged text are not the user's: find the name in theirs instead.
            error.line = error.pos = None
            error.at(text, _construct_name(exc))
        raise error from None
    except ValueError as exc:
        raise _from_value_error(exc, text) from None
    except RecursionError:
        raise KqlError(SEMANTIC, "the query is nested too deeply") from None
    sql, typed = separate(fold_has(optimize(sql)))
    return Translation(sql, parameters, rewritten.visualization,
                       lookup=plan_lookup(for_lookup(rewritten.text, typed)))


def _columns_of(text: str) -> list[tuple[str, str]]:
    """The columns of the tabular query *text* (for `search` and `project-reorder`)."""
    compiled = _cached(text)
    return columns.describe(compiled.sql, compiled.parameters)


def _construct_name(exc: duckdb_kql.KqlError) -> str | None:
    construct = getattr(exc, "construct", None) or getattr(exc, "name", None)
    return str(construct).partition(":")[2] or str(construct).rpartition(".")[2] if construct else None


def _refuse_commands(text: str) -> None:
    """Control commands are a different dialect, and many of them write: none is allowed."""
    leading = _COMMENT_OR_SPACE.match(text)
    assert leading is not None  # the pattern matches the empty string
    start = leading.end()
    if text[start:start + 1] == ".":
        command = re.match(r"\.[\w-]*", text[start:])
        assert command is not None  # text[start] is the "."
        word = command.group(0)
        line, pos = locate(text, word.lstrip(".")) if len(word) > 1 else (None, None)
        raise KqlError(FORBIDDEN, f"control command '{word}' is not allowed: queries are read-only",
                       line, (pos - 1) if pos else None)


def _from_value_error(exc: ValueError, text: str) -> KqlError:
    """The translator reports a wrong argument count as a ValueError; say it in KQL terms."""
    if m := _ARITY.match(str(exc)):
        fn, allowed, got = m.groups()
        counts = " or ".join(c.strip() for c in allowed.split(",") if c.strip())
        return KqlError(SEMANTIC, f"wrong number of arguments to '{fn}': expected {counts}, "
                        f"got {got}").at(text, fn)
    return KqlError(SEMANTIC, "the query could not be translated")
