"""Folding DuckDB's run-time type tests (`typeof(x) = 'JSON'`) into constants.

The translator writes type-dispatching SQL: `CASE WHEN typeof(x) = 'JSON' THEN x ->> '$' ELSE
CAST(x AS VARCHAR) END`, and the same inside `list_transform([e], lambda _v: ...)`, so one
rendering serves every argument type. DuckDB folds these at bind time. ClickHouse cannot: dynamic
columns are Strings there (so `toTypeName` says nothing), and it type-checks every branch, so a
dead branch such as a String cast to an interval fails the whole query. Here the types are
inferred statically (sqlglot's qualify + annotate_types, with our schema's DuckDB types), each
`typeof(...)` whose argument's type is known becomes that DuckDB type name, and comparisons of
constants and the CASE branches they decide are pruned, so only the live branch reaches ClickHouse.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from collector.store.schema import TABLES

from ..scope import SCOPE

_SCHEMA: dict[str, object] = {SCOPE: {t.name: {c.name: c.sql_type for c in t.columns} for t in TABLES.values()}}

# sqlglot's type -> DuckDB's typeof() name; a type not listed stays a run-time test.
_DUCKDB_NAMES = {
    exp.DType.TEXT: "VARCHAR", exp.DType.VARCHAR: "VARCHAR", exp.DType.BIGINT: "BIGINT",
    exp.DType.INT: "INTEGER", exp.DType.DOUBLE: "DOUBLE", exp.DType.FLOAT: "FLOAT",
    exp.DType.BOOLEAN: "BOOLEAN", exp.DType.JSON: "JSON", exp.DType.TIMESTAMP: "TIMESTAMP",
    exp.DType.TIMESTAMPNTZ: "TIMESTAMP", exp.DType.INTERVAL: "INTERVAL",
}


def fold_typeof(tree: exp.Expr) -> exp.Expr:
    """Every `typeof(x)` with a statically known type becomes that type's DuckDB name, and the
    constant conditions it makes are folded (see the module doc). A tree sqlglot cannot qualify
    is returned unfolded: its type tests then reach ClickHouse, which refuses the query."""
    if not any(True for _ in tree.find_all(exp.Typeof)):
        return tree
    spelling = _spellings(tree)
    series = _typed_series(tree)
    try:
        tree = qualify(tree, schema=_SCHEMA, dialect="duckdb", validate_qualify_columns=False,
                       quote_identifiers=False, identify=False)
        annotate_types(tree, schema=_SCHEMA, dialect="duckdb")
    except (SqlglotError, KeyError, ValueError, AttributeError):
        return _restored(tree, series)
    tree = _restored(tree, series)
    _respell(tree, spelling)
    _type_json_extracts(tree)
    lambda_types = _lambda_parameter_types(tree)
    for node in list(tree.find_all(exp.Typeof)):
        name = _duckdb_name(node.this, lambda_types)
        if name is not None:
            node.replace(exp.Literal.string(name))
    _drop_json_casts(tree, lambda_types)
    return fold_constants(tree)


def _typed_series(tree: exp.Expr) -> list[tuple[exp.Expr, exp.Expr]]:
    """`range x from 1 to 3 step 1` is `generate_series(...) AS _range(x)`, a table function whose
    column sqlglot cannot type (so `tolong(x)` kept its interval branches, which ClickHouse
    refuses): while the types are inferred, each such table stands in as `(SELECT CAST(NULL AS
    <the start's type>) AS x) AS _range`. Answers (stand-in, original) pairs for _restored."""
    pairs: list[tuple[exp.Expr, exp.Expr]] = []
    for table in list(tree.find_all(exp.Table)):
        start = table.this.args.get("start") if isinstance(table.this, exp.GenerateSeries) else None
        columns = table.alias_column_names
        kind = annotate_types(start.copy(), dialect="duckdb").type if start is not None else None
        if kind is None or kind.this == exp.DType.UNKNOWN or len(columns) != 1:
            continue
        stand_in = exp.select(exp.cast(exp.Null(), kind.copy()).as_(columns[0], quoted=True)).subquery(table.alias)
        table.replace(stand_in)
        pairs.append((stand_in, table))
    return pairs


def _restored(tree: exp.Expr, series: list[tuple[exp.Expr, exp.Expr]]) -> exp.Expr:
    """The tables _typed_series stood in for, back in their places (qualify keeps the nodes)."""
    for stand_in, table in series:
        if stand_in.parent is not None:
            stand_in.replace(table)
    return tree


def _drop_json_casts(tree: exp.Expr, lambda_types: dict[int, exp.DataType]) -> None:
    """Casts of a value already JSON, for ClickHouse, where dynamic values are JSON text
    (scoping.READ_TYPES) and every CASE branch is evaluated: `TRY_CAST(x AS JSON)` is x itself (a
    cast to its JSON type, an object store, fails the whole query on a scalar such as `"plain"`);
    `CAST(x AS BOOLEAN)`, a branch DuckDB takes only for a JSON boolean, may not fail on the others;
    `TRY_CAST(x AS <number>)` reads JSON true and false as 1 and 0, as DuckDB does."""
    for node in list(tree.find_all(exp.Cast)):
        if node.to.this == exp.DType.JSON and _duckdb_name(node.this, lambda_types) == "JSON":
            node.replace(node.this)
    for node in list(tree.find_all(exp.Cast)):
        if _duckdb_name(node.this, lambda_types) != "JSON":
            continue
        if not isinstance(node, exp.TryCast) and node.to.this == exp.DType.BOOLEAN:
            node.replace(exp.TryCast(this=node.this, to=node.to))
        elif isinstance(node, exp.TryCast) and node.to.this in _NUMBERS:
            node.set("this", exp.Case(this=node.this.copy(), ifs=[
                exp.If(this=exp.Literal.string(text), true=exp.Literal.string(number)) for text, number in (("true", "1"), ("false", "0"))],
                default=node.this))


_NUMBERS = {exp.DType.DOUBLE, exp.DType.FLOAT, exp.DType.BIGINT, exp.DType.INT}


def _spellings(tree: exp.Expr) -> dict[str, str]:
    """Each identifier's spelling by its lower-case form: qualify() lower-cases names as DuckDB
    resolves them, but ClickHouse is case-sensitive (`severityLevel`)."""
    found = {c.name.lower(): c.name for t in TABLES.values() for c in t.columns}
    for identifier in tree.find_all(exp.Identifier):
        found.setdefault(identifier.name.lower(), identifier.name)
    return found


def _respell(tree: exp.Expr, spelling: dict[str, str]) -> None:
    for identifier in tree.find_all(exp.Identifier):
        original = spelling.get(identifier.name.lower())  # only names qualify() lower-cased: "Value" stays
        if original is not None and original != identifier.name and identifier.name == identifier.name.lower():
            identifier.set("this", original)


def _type_json_extracts(tree: exp.Expr) -> None:
    """DuckDB's `json_extract(j, '$.path')` answers JSON, which sqlglot leaves unknown: without it
    `toreal(customDimensions.x)` (the translator's `list_transform([json_extract(...)], lambda _v:
    CASE typeof(_v) ...)`) kept its interval and timestamp branches, which ClickHouse refuses."""
    for node in tree.find_all(exp.JSONExtract):
        if (node.type is None or node.type.this == exp.DType.UNKNOWN) and not isinstance(node.expression, exp.Array):
            node.type = exp.DataType.build("JSON")


def _lambda_parameter_types(tree: exp.Expr) -> dict[int, exp.DataType]:
    """`list_transform([e], lambda _v: body)`: the parameter `_v` has e's type; keyed by the id of
    each Lambda node, the body being where the parameter is visible."""
    found: dict[int, exp.DataType] = {}
    for node in tree.find_all(exp.Transform):
        array, function = node.this, node.expression
        if isinstance(array, exp.Array) and len(array.expressions) == 1 and isinstance(function, exp.Lambda):
            element = array.expressions[0]
            if element.type is not None and len(function.expressions) == 1:
                found[id(function)] = element.type
    return found


def _duckdb_name(argument: exp.Expr, lambda_types: dict[int, exp.DataType]) -> str | None:
    if _text_only(argument):
        return "VARCHAR"
    kind = argument.type
    if isinstance(argument, (exp.Column, exp.Identifier)) and not (isinstance(argument, exp.Column) and argument.table):
        enclosing = argument.find_ancestor(exp.Lambda)
        if enclosing is not None and argument.name in {p.name for p in enclosing.expressions}:
            kind = lambda_types.get(id(enclosing))
    if kind is None:
        return None
    return _DUCKDB_NAMES.get(kind.this)


def _text_only(node: exp.Expr) -> bool:
    """`coalesce(x ->> '$', '')` (tostring of a dynamic value): every part is text (`->>` answers
    VARCHAR in DuckDB) or NULL, so the whole is a VARCHAR, which sqlglot does not infer."""
    parts = [node.this, *node.expressions] if isinstance(node, exp.Coalesce) else [node]
    return all(isinstance(p, (exp.JSONExtractScalar, exp.Null)) or (isinstance(p, exp.Literal) and p.is_string)
               for p in parts) and any(isinstance(p, exp.Literal) for p in parts) and isinstance(node, exp.Coalesce)


def fold_constants(tree: exp.Expr) -> exp.Expr:
    """Comparisons of two string literals, IN and LIKE over literals, NOT/AND/OR of booleans, and
    CASE branches decided by a constant: folded, bottom-up."""
    changed = False

    def fold(node: exp.Expr) -> exp.Expr:
        nonlocal changed
        folded = _folded(node)
        changed = changed or folded is not node
        return folded
    for _ in range(_MAX_PASSES):  # transform() is top-down: a fold can enable its parent's
        changed = False  # (a flag, not a comparison of the SQL text: generating it was most of the cost)
        tree = tree.transform(fold, copy=False)
        if not changed:
            break
    return tree


def _folded(node: exp.Expr) -> exp.Expr:
    if isinstance(node, (exp.EQ, exp.NEQ)) and _literal(node.this) and _literal(node.expression):
        same = node.this.this == node.expression.this
        return exp.Boolean(this=same if isinstance(node, exp.EQ) else not same)
    if isinstance(node, exp.In) and _literal(node.this) and node.expressions and all(map(_literal, node.expressions)):
        return exp.Boolean(this=node.this.this in {e.this for e in node.expressions})
    if isinstance(node, exp.Like) and _literal(node.this) and _literal(node.expression):
        return exp.Boolean(this=_like(node.this.this, node.expression.this))
    if isinstance(node, exp.Not) and isinstance(_bare(node.this), exp.Boolean):
        return exp.Boolean(this=not _bare(node.this).this)
    if isinstance(node, (exp.And, exp.Or)):
        return _fold_logic(node)
    if isinstance(node, exp.Paren) and isinstance(node.this, exp.Boolean):
        return node.this
    if isinstance(node, exp.Case):
        return _fold_case(node)
    return node


_MAX_PASSES = 8


def _literal(node: exp.Expr) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _bare(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _like(value: str, pattern: str) -> bool:
    import re
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.S) is not None


def _fold_logic(node: exp.Expr) -> exp.Expr:
    left, right = _bare(node.this), _bare(node.expression)
    absorbing = isinstance(node, exp.Or)  # TRUE absorbs an OR, FALSE an AND
    for side, other in ((left, node.expression), (right, node.this)):
        if isinstance(side, exp.Boolean):
            return exp.Boolean(this=absorbing) if side.this == absorbing else other
    return node


def _fold_case(node: exp.Case) -> exp.Expr:
    operand = node.this
    live: list[exp.If] = []
    branches = node.args.get("ifs") or []
    for branch in branches:
        condition = _bare(branch.this)
        if operand is not None:
            if not (_literal(operand) and _literal(condition)):
                return node
            decided: bool | None = operand.this == condition.this
        else:
            decided = condition.this if isinstance(condition, exp.Boolean) else None
        if decided is False:
            continue
        if decided is True and not live:
            return branch.args["true"]
        if decided is True:
            return exp.Case(ifs=live, default=branch.args["true"])
        live.append(branch)
    default = node.args.get("default") or exp.Null()
    if not live:
        return default
    if operand is not None or len(live) == len(branches):
        return node  # unchanged: transform() goes on into its children
    return exp.Case(ifs=live, default=node.args.get("default"))
