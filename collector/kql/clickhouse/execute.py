"""Run one compiled query on the ClickHouse store and answer it in the DuckDB path's shape.

The columns and their KQL types are the DuckDB path's own: the translated SQL is bound (`LIMIT 0`)
on the empty in-memory DuckDB that `columns.describe` keeps, which also answers the query's type
and name errors exactly as the DuckDB path words them. The rows come from ClickHouse, through the
store's clickhouse-connect client, under the same budget: read-only (`readonly=1`), the time left
(`max_execution_time`), a memory share (`max_memory_usage`) and the row cap (`max_result_rows`);
each cell is converted to what the DuckDB path gives for that KQL type (results.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import orjson

from .. import typecheck
from ..budget import Budget, out_of_time
from ..columns import _empty_store
from ..errors import LIMIT, UNSUPPORTED, KqlError, from_duckdb
from ..results import _json_dynamic, _native_dynamic, _real, datetime_text, kql_type, timespan_text
from ..scope import referenced_tables
from ..timespan import Window
from ..translation import Translation
from .lowering import lower
from .refusals import STORE
from .timespans import interval_cells

DEFAULT_MEMORY = 4 * 2**30
_UNION = re.compile(r"\bUNION\b", re.IGNORECASE)
_CODE = re.compile(r"Code: (\d+)")
_TIMEOUT_CODES = {"159", "394"}  # TIMEOUT_EXCEEDED, QUERY_WAS_CANCELLED
_MEMORY_CODES = {"241"}  # MEMORY_LIMIT_EXCEEDED
# TYPE_MISMATCH, ILLEGAL_TYPE_OF_ARGUMENT, CANNOT_PARSE_TEXT, CANNOT_CONVERT_TYPE, NO_COMMON_TYPE,
# CANNOT_PARSE_NUMBER...: a value of the wrong type, which the user's text may explain.
_TYPE_CODES = {"6", "27", "38", "41", "43", "53", "70", "72", "386"}
_THROW_CODE = "395"  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO: a generator's kql-limit guard
_LIMIT_TEXT = re.compile(r"kql-limit: (.*?)(?::\s*while executing|\. \(FUNCTION_THROW|'\)|$)", re.S)
# A construct udfs.py can only answer exactly for some rows refuses the others at run time.
_UNSUPPORTED_TEXT = re.compile(r"kql-unsupported: (.*?)(?::\s*while executing|\. \(FUNCTION_THROW|'\)|$)", re.S)


def is_clickhouse(con: Any) -> bool:
    """Whether the engine was handed the ClickHouse store's connection (`.client()`, `.database`)
    rather than a DuckDB cursor."""
    return callable(getattr(con, "client", None)) and isinstance(getattr(con, "database", None), str)


@contextmanager
def query_connection(store: Any) -> Iterator[Any]:
    """What `run_query` reads *store* through: the ClickHouse connection on the ClickHouse store,
    a read cursor of the DuckDB file otherwise."""
    if getattr(store, "backend", "duckdb") == "clickhouse":
        yield store.clickhouse
        return
    # Kept for the next query, with its prepared plans (kql/prepared.py), where the store pools them.
    with getattr(store, "query_reader", store.reader)() as cursor:
        yield cursor


def run_compiled(connection: Any, compiled: Translation, text: str, *, services: Sequence[str] | None,
                 window: Window | None, budget: Budget, max_rows: int, max_bytes: int,
                 ) -> tuple[str, list[tuple[str, str]], list[list], bool]:
    """(ClickHouse SQL, columns, rows, truncated) of *compiled* over the ClickHouse store behind
    *connection* (an object with `.client()` and `.database`)."""
    columns = describe(compiled, text)
    lowered = lower(compiled.sql, compiled.parameters, database=connection.database,
                    services=services, window=window)
    settings = {
        **lowered.settings,
        "max_execution_time": max(1, math.ceil(budget.check("starting it"))),
        "max_memory_usage": budget.memory_bytes or DEFAULT_MEMORY,
        "max_result_rows": max_rows + 1,
        "result_overflow_mode": "break",
    }
    sql = with_settings(lowered.sql, settings)
    try:
        result = connection.client().query(sql, parameters=lowered.parameters or None)
    except Exception as exc:  # clickhouse-connect's DatabaseError, OperationalError...
        raise _from_clickhouse(exc, text, budget) from None
    if result.result_rows and len(result.column_names) != len(columns):  # no rows: no names from chdb
        raise KqlError(UNSUPPORTED, f"this query is not supported on {STORE}")
    rows = interval_cells(result.column_types, result.result_rows)
    return (sql, *_collect(columns, rows, max_rows, max_bytes))


def with_settings(sql: str, settings: dict[str, Any]) -> str:
    """*sql* with its settings in its own text (`SETTINGS readonly = 1, join_use_nulls = 1, ...`):
    what it means and what it may do must not depend on a transport or proxy passing URL settings
    on. SQL with a UNION anywhere is wrapped first (a trailing SETTINGS binds to the last part of
    a top-level UNION).
    The values are ours (numbers), never the user's."""
    clause = ", ".join(f"{name} = {int(value)}" if isinstance(value, (bool, int)) else f"{name} = '{value}'"
                       for name, value in settings.items())
    body = sql.strip()
    if _UNION.search(body):
        body = f"SELECT * FROM ({body})"
    return f"{body}\nSETTINGS {clause}"


def describe(compiled: Translation, text: str) -> list[tuple[str, str]]:
    """The (name, KQL type) columns of *compiled*, bound on an empty DuckDB (see module doc);
    a query that does not bind fails as it does on the DuckDB path. Cached per SQL (the types do
    not depend on the bound values), so a repeated query binds once."""
    known = _COLUMNS.get(compiled.sql)
    if known is not None:
        return list(known)
    referenced_tables(compiled.sql)
    try:
        cursor = _empty_store().cursor()
        found = cursor.execute(f"SELECT * FROM ({compiled.sql}) LIMIT 0", compiled.parameters or None)
    except duckdb.Error as exc:
        typed = isinstance(exc, (duckdb.BinderException, duckdb.ConversionException))
        raise ((typed and typecheck.blame(text)) or from_duckdb(exc, text)) from None
    columns = tuple((d[0], kql_type(d[1])) for d in found.description or [])
    if len(_COLUMNS) >= _COLUMNS_CACHED:
        _COLUMNS.pop(next(iter(_COLUMNS)), None)
    _COLUMNS[compiled.sql] = columns
    return list(columns)


_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {}
_COLUMNS_CACHED = 512


def _from_clickhouse(exc: Exception, text: str, budget: Budget) -> KqlError:
    """A ClickHouse failure as the DuckDB path words it: a deadline, a memory or generator limit,
    a type error in the user's text (typecheck.blame, as the DuckDB path finds it), or (anything
    else: SQL the lowering could not make valid) not supported here."""
    message = str(exc)
    code = (_CODE.search(message) or [None, ""])[1]
    if code in _TIMEOUT_CODES:
        return out_of_time(budget.timeout_s, "running it")
    if code in _MEMORY_CODES:
        return KqlError(LIMIT, "the query needs more memory than it may use")
    if code == _THROW_CODE and (thrown := _thrown(message)):
        return thrown
    blamed = typecheck.blame(text) if code in _TYPE_CODES else None
    error = blamed or KqlError(UNSUPPORTED, f"this query is not supported on {STORE}")
    error.detail = message  # type: ignore[attr-defined]  # for the logs and tests, never the user
    return error


def _thrown(message: str) -> KqlError | None:
    """The guard that threw: the first marked message (the query's text, echoed after it, holds
    the other guards' messages too)."""
    found = [(m.start(), kind, m.group(1).strip()) for kind, pattern in ((LIMIT, _LIMIT_TEXT), (UNSUPPORTED, _UNSUPPORTED_TEXT))
             if (m := pattern.search(message))]
    if not found:
        return None
    _, kind, text = min(found)
    return KqlError(kind, text)


def _collect(columns: list[tuple[str, str]], raw_rows: Sequence[Sequence[Any]], max_rows: int,
             max_bytes: int) -> tuple[list[tuple[str, str]], list[list], bool]:
    """Rows converted per KQL type, cut at *max_rows* rows or ~*max_bytes* of JSON as results.collect does."""
    converters = [_CONVERTERS.get(kind, _identity) for _, kind in columns]
    rows: list[list] = []
    size = 0
    for raw in raw_rows:
        row = [None if v is None else conv(v) for conv, v in zip(converters, raw, strict=True)]
        size += len(orjson.dumps(row, default=str)) + 1
        if len(rows) >= max_rows or size > max_bytes:
            return columns, rows, True
        rows.append(row)
    return columns, rows, False


def _identity(value: Any) -> Any:
    return value


def _datetime(value: Any) -> Any:
    return datetime_text(value) if isinstance(value, (datetime, date)) else str(value)


def _dynamic(value: Any) -> Any:
    return _json_dynamic(value) if isinstance(value, str) else _native_dynamic(value)


def _string(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def _timespan(value: Any) -> Any:
    """ClickHouse answers the difference of two instants as Decimal seconds."""
    if isinstance(value, (int, float, Decimal)):
        return timespan_text(timedelta(microseconds=round(Decimal(value) * 1_000_000)))
    return timespan_text(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "timespan": _timespan,
    "datetime": _datetime,
    "dynamic": _dynamic,
    "real": _real,
    "long": int,
    "int": int,
    "bool": bool,
    "string": _string,
    "guid": str,
    "decimal": str,
}
