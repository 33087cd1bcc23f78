"""DuckDB syntax that needs a subquery's columns, which ClickHouse SQL must spell out: `SELECT *
RENAME (a AS c)` (project-rename) and `DESCRIBE SELECT ...` as a table (getschema).

The columns are the DuckDB path's own: the subquery, still in the translator's DuckDB SQL (these
rules run first), is bound on the empty in-memory DuckDB that `columns.describe` keeps (no rows
read). A subquery that does not bind there (one with bound values) keeps DuckDB's syntax, which
ClickHouse refuses (a 400), never answers differently.

- `SELECT * RENAME (a AS c) FROM s` becomes `SELECT a AS c, b FROM s`, in the subquery's order.
- `(DESCRIBE SELECT ...)` becomes its (column_name, column_type) rows, DuckDB's type names, from
  one `arrayJoin` over a constant array: one stream, so `row_number() OVER ()` (getschema's
  ColumnOrdinal) numbers them in column order.
- `typeof(c)` of a column c of the SELECT's source is c's DuckDB type name, as DuckDB answers it,
  and the type tests it decides are folded (typing.fold_constants): typing.py infers types with
  sqlglot, which cannot type a column an UNNEST made (`mv-expand k = ... to typeof(string)`).
"""

from __future__ import annotations

import duckdb
from sqlglot import exp, parse_one

from ..columns import _empty_store
from .typing import fold_constants


def renamed_columns(tree: exp.Expr) -> exp.Expr:
    """`* RENAME (...)` over one subquery as its column list (see the module doc)."""
    for star in list(tree.find_all(exp.Star)):
        select = star.parent
        renames = star.args.get("rename")
        if not renames or not isinstance(select, exp.Select) or select.args.get("joins"):
            continue
        source = select.args.get("from_")
        if source is None:
            continue
        names = _column_names(source.this)
        if names is None:
            continue
        new_names = {r.this.name: r.alias for r in renames}
        columns = [exp.alias_(exp.column(n, quoted=True), new_names[n], quoted=True) if n in new_names
                   else exp.column(n, quoted=True) for n in names]
        select.set("expressions", _spliced(select.expressions, star, columns))
    return tree


def _spliced(expressions: list[exp.Expr], star: exp.Star, columns: list[exp.Expr]) -> list[exp.Expr]:
    """*expressions* with *columns* where *star* was."""
    out: list[exp.Expr] = []
    for e in expressions:
        out.extend(columns if e is star else [e])
    return out


def described_tables(tree: exp.Expr) -> exp.Expr:
    """`(DESCRIBE SELECT ...)` as the constant rows DuckDB describes (see the module doc)."""
    for describe in list(tree.find_all(exp.Describe)):
        rows = _described(describe.this)
        if not rows:
            continue
        pairs = ", ".join(f"({_quoted(n)}, {_quoted(t)})" for n, t in rows)
        describe.replace(parse_one(
            f"SELECT tupleElement(__kql_c, 1) AS column_name, tupleElement(__kql_c, 2) AS column_type"
            f" FROM (SELECT arrayJoin([{pairs}]) AS __kql_c)", read="clickhouse"))
    return tree


def typed_columns(tree: exp.Expr) -> exp.Expr:
    """`typeof(<column>)` as the column's DuckDB type where binding its source tells it (see the
    module doc)."""
    found = [(node, (source_columns(node.parent_select) or {}).get(node.this.name)) for node in tree.find_all(exp.Typeof)
             if isinstance(node.this, exp.Column) and not node.this.table]
    for node, kind in found:
        if kind is not None:
            node.replace(exp.Literal.string(kind))
    return fold_constants(tree) if any(kind for _, kind in found) else tree


def source_columns(select: exp.Expr | None) -> dict[str, str] | None:
    """{name: DuckDB type} of the rows *select* reads (its one FROM, no joins), bound on the empty
    DuckDB store; None when that does not bind (or *select* is no such SELECT)."""
    if not isinstance(select, exp.Select) or select.args.get("joins") or not select.args.get("from_"):
        return None
    source = select.args["from_"].this
    query = source.this if isinstance(source, exp.Subquery) else exp.select("*").from_(source.copy())
    rows = _described(query)
    return None if rows is None else dict(rows)


def _column_names(source: exp.Expr) -> list[str] | None:
    rows = _described(source.this if isinstance(source, exp.Subquery) else None)
    return None if rows is None else [name for name, _ in rows]


def _described(query: exp.Expr | None) -> list[tuple[str, str]] | None:
    """(name, DuckDB type) of *query*'s columns bound on the empty DuckDB store, or None."""
    if not isinstance(query, exp.Query):
        return None
    try:
        found = _empty_store().cursor().execute(f"DESCRIBE {query.sql('duckdb')}").fetchall()
    except duckdb.Error:
        return None
    return [(str(row[0]), str(row[1])) for row in found]


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
