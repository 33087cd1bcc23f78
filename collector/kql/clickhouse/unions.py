"""`union` on ClickHouse: the translator writes DuckDB's `UNION ALL BY NAME`, which aligns the
sides by column name (a column one side lacks is NULL there) and which ClickHouse lacks.

The column set of each side is known without running anything: a SELECT's projections name
them, a `*` takes its source's columns (a CTE's, a subquery's, or an App Insights table's from
collector/store/schema.py). Each side is then wrapped in a SELECT with the union's full column
list in DuckDB's order (the first side's columns, then each new one of the next side), NULL where
the side lacks one, and the BY NAME is dropped: a positional `UNION ALL` with the same rows.
A side whose columns cannot be named (a function table, an unknown source) is refused.

A datatable (DuckDB's `VALUES`) keeps its rows' order here too (`ordered_values`).
"""

from __future__ import annotations

from sqlglot import exp

from ...store.schema import TABLES
from .refusals import refuse

_SCOPE = "__kql_scope__"


def union_by_name(tree: exp.Expr) -> exp.Expr:
    """`a UNION ALL BY NAME b` becomes `SELECT <all columns, NULL where absent> FROM (a) UNION ALL
    SELECT <all columns, NULL where absent> FROM (b)` (see the module doc)."""
    for union in reversed(list(tree.find_all(exp.Union))):
        if not union.args.get("by_name"):
            continue
        left, right = union.this, union.expression
        left_names, right_names = _columns(left), _columns(right)
        names = left_names + [n for n in right_names if n not in left_names]
        union.set("this", _aligned(left, left_names, names))
        union.set("expression", _aligned(right, right_names, names))
        union.set("by_name", None)
    return tree


def _aligned(side: exp.Expr, present: list[str], names: list[str]) -> exp.Select:
    projections = [exp.column(n, quoted=True) if n in present else
                   exp.alias_(exp.Null(), n, quoted=True) for n in names]
    source = side.this if isinstance(side, exp.Subquery) and not side.alias else side
    # Moved, not copied: the union's side is replaced by this SELECT, and copying every side of
    # a `search` over all tables (a union nested once per table) was most of its lowering time.
    return exp.select(*projections, copy=False).from_(exp.Subquery(this=source.pop()), copy=False)


def ordered_values(tree: exp.Expr) -> exp.Expr:
    """A datatable's `(VALUES (..), (..)) AS _dt("a", "b")` becomes `(SELECT tupleElement(__kql_row,
    1) AS "a", ... FROM (SELECT arrayJoin([tuple(..), tuple(..)]) AS __kql_row)) AS _dt`. sqlglot
    writes VALUES as a UNION ALL of one-row SELECTs, whose branches ClickHouse runs in parallel, so
    `serialize` (row_number() OVER ()) numbered the rows in any order; one array expands in the
    datatable's order."""
    for values in list(tree.find_all(exp.Values)):
        names = values.alias_column_names
        if not names:
            continue
        rows = exp.Array(expressions=[exp.Anonymous(this="tuple", expressions=row.expressions)
                                      for row in values.expressions])
        expanded = exp.select(exp.alias_(exp.Anonymous(this="arrayJoin", expressions=[rows]), "__kql_row"))
        cells = [exp.alias_(exp.Anonymous(this="tupleElement", expressions=[
                     exp.column("__kql_row"), exp.Literal.number(position)]), name, quoted=True)
                 for position, name in enumerate(names, start=1)]
        values.replace(exp.select(*cells).from_(expanded.subquery("__kql_rows")).subquery(values.alias))
    return tree


def _columns(node: exp.Expr) -> list[str]:
    """The output column names of *node* (a SELECT, a subquery, a union), in order."""
    if isinstance(node, exp.Subquery):
        return _columns(node.this)
    if isinstance(node, exp.Union):
        first = _columns(node.this)
        if not node.args.get("by_name"):
            return first
        return first + [n for n in _columns(node.expression) if n not in first]
    if not isinstance(node, exp.Select):
        refuse("union over a source whose columns are not known")
    names: list[str] = []
    for projection in node.expressions:
        if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column)
                                                and isinstance(projection.this, exp.Star)):
            names += [n for n in _source_columns(node) if n not in names]
        elif projection.alias_or_name:
            names.append(projection.alias_or_name)
        else:
            refuse("union over a column with no name")
    return names


def _source_columns(select: exp.Select) -> list[str]:
    """The columns a `*` in *select* expands to: those of its one FROM source."""
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is None or select.args.get("joins"):
        refuse("union over a source whose columns are not known")
    source = from_.this
    if source.alias_column_names:  # `(VALUES ...) AS _dt("a")`, a datatable
        return list(source.alias_column_names)
    if isinstance(source, exp.Table):
        return _table_columns(source)
    return _columns(source)


def _table_columns(table: exp.Table) -> list[str]:
    if table.db == _SCOPE and table.name in TABLES:
        return list(TABLES[table.name].column_names)
    cte = _cte(table, table.name)
    if cte is None:
        refuse("union over a source whose columns are not known")
    return _columns(cte.this)


def _cte(node: exp.Expr, name: str) -> exp.CTE | None:
    """The nearest CTE called *name* visible from *node* (inner WITHs shadow outer ones)."""
    scope = node.parent
    while scope is not None:
        with_ = scope.args.get("with_") or scope.args.get("with") if isinstance(scope, exp.Query) else None
        if with_ is not None:
            for cte in with_.expressions:
                if cte.alias == name:
                    return cte
        scope = scope.parent
    return None
