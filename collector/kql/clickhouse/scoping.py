"""The placeholder tables of the translated SQL, read from the ClickHouse tables and narrowed to the
caller's scope.

The DuckDB path pastes each scope in as SQL text (scope.source_sql); here nothing of the scope is
ever text: the services and the window travel as typed, bound parameters (`{kql_services:
Array(String)}`, `{kql_from: DateTime64(6, 'UTC')}`), so no service name can change the query.
Only the public columns are selected, so `_service` and `_seq` never reach a user, and each column is
read as the type the translator's SQL expects (see `_public_column`), whatever storage type the
ClickHouse schema chose for it (LowCardinality, a non-Nullable string with '' for none...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlglot
from sqlglot import exp

from collector.store.clickhouse import schema as ch_schema
from collector.store.schema import SERVICE_COLUMN, TABLES, Column

from ..scope import SCOPE
from ..timespan import Window

SERVICES_PARAMETER = "kql_services"
FROM_PARAMETER = "kql_from"
TO_PARAMETER = "kql_to"

# KQL type -> the ClickHouse type the lowered SQL reads a column as.
READ_TYPES = {
    "datetime": "Nullable(DateTime64(6, 'UTC'))",
    "string": "Nullable(String)",
    "int": "Nullable(Int32)",
    "long": "Nullable(Int64)",
    "real": "Nullable(Float64)",
    "bool": "Nullable(Bool)",
    "dynamic": "Nullable(String)",
}


def scope_parameters(services: Sequence[str] | None, window: Window | None) -> dict[str, Any]:
    """The bound values the scoped reads refer to (only those the scope needs)."""
    values: dict[str, Any] = {}
    if services is not None:
        values[SERVICES_PARAMETER] = [str(s) for s in services]
    if window is not None:
        values[FROM_PARAMETER] = window.start
        values[TO_PARAMETER] = window.end
    return values


def scope_tables(tree: exp.Expr, database: str, services: Sequence[str] | None,
                 window: Window | None) -> exp.Expr:
    """Replace every `"__kql_scope__".<table>` reference in *tree* by the scoped read of that table."""
    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and node.db == SCOPE and node.name in TABLES:
            alias = node.alias or node.name
            read = scoped_read(node.name, database, services, window)
            return exp.Subquery(this=read, alias=exp.TableAlias(this=exp.to_identifier(alias)))
        return node
    return tree.transform(replace, copy=False)


def scoped_read(table: str, database: str, services: Sequence[str] | None, window: Window | None) -> exp.Select:
    """`SELECT <public columns> FROM db.table WHERE _service IN {services} AND timestamp BETWEEN ...`."""
    columns = [_public_column(c.name, c.kql_type, stored_type(c)) for c in TABLES[table].columns]
    where = []
    if services is not None:
        where.append(f"{_quote(SERVICE_COLUMN)} IN {{{SERVICES_PARAMETER}:Array(String)}}")
    if window is not None:
        where.append(f"`timestamp` BETWEEN {{{FROM_PARAMETER}:DateTime64(6, 'UTC')}} "
                     f"AND {{{TO_PARAMETER}:DateTime64(6, 'UTC')}}")
    text = f"SELECT {', '.join(columns)} FROM {_quote(database)}.{_quote(table)}"
    if where:
        text += " WHERE " + " AND ".join(where)
    return sqlglot.parse_one(text, read="clickhouse")  # type: ignore[return-value]


def stored_type(column: Column) -> str:
    """The ClickHouse store's type for *column* (collector/store/clickhouse/schema.py), codec aside."""
    return ch_schema.column_type(column).split(" CODEC(")[0]


def _public_column(name: str, kql_type: str, stored: str) -> str:
    """The column as the lowered SQL reads it: Nullable, as DuckDB's columns are, and empty text
    read as null where the store keeps strings non-Nullable (DuckDB's store has null there). A
    column stored as that type (LowCardinality aside), or a non-Nullable timestamp, is read bare,
    so the sort key and the skip indexes on it stay usable."""
    wanted = READ_TYPES[kql_type]
    quoted = _quote(name)
    base = _unwrap(_unwrap(stored, "LowCardinality"), "Nullable")
    if base == _unwrap(wanted, "Nullable") and (stored != base or kql_type == "datetime"):
        return quoted
    if kql_type in ("string", "dynamic") and not stored.startswith("Nullable"):
        return f"CAST(nullIf(toString({quoted}), '') AS {wanted}) AS {quoted}"
    return f"CAST({quoted} AS {wanted}) AS {quoted}"


def _unwrap(type_name: str, wrapper: str) -> str:
    prefix = wrapper + "("
    return type_name[len(prefix):-1] if type_name.startswith(prefix) and type_name.endswith(")") else type_name


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"
