"""Name the argument behind a type error: which call or operator, which argument, what type it
has and what type was expected, and where.

DuckDB's binder only knows the SQL we generated ("No function matches '+(DOUBLE, VARCHAR)'",
"Could not convert string 'a' to INT32"), none of which the user wrote. When a query fails that
way, `blame` reads the user's text for the first call or operator whose argument is a literal or
a column of our tables with a type the signature does not take, and says so in KQL terms. It is
asked only after DuckDB refused the query, so it never refuses a query that would have run.
"""

from __future__ import annotations

from typing import Any

from collector.store.schema import TABLES

from . import syntax
from .errors import SEMANTIC, KqlError, position

NUMBER, STRING, DATETIME, TIMESPAN, BOOL = "a number", "string", "datetime", "timespan", "bool"
_NUMERIC = {"long", "int", "real", "decimal"}
_LITERALS = {"LongLiteralExpression": "long", "RealLiteralExpression": "real", "IntLiteralExpression": "int",
             "StringLiteralExpression": "string", "BooleanLiteralExpression": "bool",
             "DateTimeLiteralExpression": "datetime", "TimeSpanLiteralExpression": "timespan"}
_SIGNATURES: dict[str, tuple[str, ...]] = {
    "abs": (NUMBER,), "sqrt": (NUMBER,), "exp": (NUMBER,), "log": (NUMBER,), "log10": (NUMBER,),
    "pow": (NUMBER, NUMBER), "round": (NUMBER, NUMBER), "sign": (NUMBER,), "ceiling": (NUMBER,),
    "substring": (STRING, NUMBER, NUMBER), "toupper": (STRING,), "tolower": (STRING,),
    "indexof": (STRING, STRING, NUMBER, NUMBER, NUMBER), "split": (STRING, STRING, NUMBER),
    "replace_string": (STRING, STRING, STRING), "trim": (STRING, STRING), "strrep": (STRING, NUMBER),
    "extract": (STRING, NUMBER, STRING), "countof": (STRING, STRING), "parse_json": (STRING,),
    "datetime_add": (STRING, NUMBER, DATETIME), "datetime_diff": (STRING, DATETIME, DATETIME),
    "datetime_part": (STRING, DATETIME), "startofday": (DATETIME, NUMBER), "startofweek": (DATETIME, NUMBER),
    "startofmonth": (DATETIME, NUMBER), "endofday": (DATETIME, NUMBER), "dayofweek": (DATETIME,),
    "format_datetime": (DATETIME, STRING), "format_timespan": (TIMESPAN, STRING), "ago": (TIMESPAN,),
    "bin_at": ("", "", ""), "series_fir": ("", "", BOOL, BOOL),
}
_STRING_OPERATORS = {"contains", "!contains", "contains_cs", "has", "!has", "has_cs", "startswith",
                     "!startswith", "endswith", "!endswith", "matches"}
_ARITHMETIC = {"+", "-", "*", "/", "%"}
_COMPARISON = {"<", "<=", ">", ">=", "==", "!="}


def _column_types() -> dict[str, str]:
    seen: dict[str, set[str]] = {}
    for table in TABLES.values():
        for column in table.columns:
            seen.setdefault(column.name, set()).add(column.kql_type)
    return {name: next(iter(kinds)) for name, kinds in seen.items() if len(kinds) == 1}


_COLUMN_TYPES = _column_types()


def blame(text: str) -> KqlError | None:
    """The first argument of a mistaken type in *text*, as a KqlError; None if none is certain."""
    try:
        tree = syntax.parse(text)
    except KqlError:
        return None
    declared = {syntax.name_text(i) for i in syntax.descendants(tree, "IdentifierName")
                if syntax.kind(i.parentCtx.parentCtx) != "SimpleNameReference"}
    for node in syntax.descendants(tree):
        kind = syntax.kind(node)
        found = None
        if kind == "NamedFunctionCallExpression":
            found = _check_call(text, node, declared)
        elif kind in ("RelationalExpression", "EqualityExpression"):
            kids = [node.getChild(i) for i in range(node.getChildCount())]
            if len(kids) == 3 and not hasattr(kids[1], "start"):
                found = _check_operator(text, node, kids[0], kids[1].getText(), kids[1].symbol.start, kids[2], declared)
        elif kind in ("AdditiveOperation", "MultiplicativeOperation", "StringBinaryOperation"):
            found = _check_operation(text, node, declared)
        if found is not None:
            return found
    return None


def _type_of(node: Any, declared: set[str]) -> str | None:
    """The KQL type of a literal or of one of our columns (not redeclared); None otherwise."""
    chain = [node]
    while len(syntax.children(chain[-1])) == 1:
        chain.append(syntax.children(chain[-1])[0])
    for item in chain:
        kind = syntax.kind(item)
        if kind in _LITERALS:
            return _LITERALS[kind]
        if kind == "SimpleNameReference":
            name = syntax.name_text(syntax.children(item)[0])
            return None if name in declared else _COLUMN_TYPES.get(name)
    return None


def _fits(actual: str, expected: str) -> bool:
    if not expected:
        return True
    if expected == NUMBER:
        return actual in _NUMERIC
    return actual == expected or (expected == DATETIME and actual == "datetime")


def _check_call(text: str, call: Any, declared: set[str]) -> KqlError | None:
    name = syntax.name_text(syntax.children(call)[0])
    signature = _SIGNATURES.get(name)
    if signature is None:
        return None
    for i, arg in enumerate(syntax.children(call, "ArgumentExpression")):
        if i >= len(signature):
            break
        actual = _type_of(arg, declared)
        if actual is not None and not _fits(actual, signature[i]):
            line, pos = position(text, arg.start.start)
            return KqlError(SEMANTIC, f"wrong argument type: argument {i + 1} of '{name}' "
                            f"({syntax.span(text, arg).strip()!r}) is {actual}, expected {signature[i]}",
                            line, pos)
    return None


def _check_operation(text: str, operation: Any, declared: set[str]) -> KqlError | None:
    """`a + b` is `AdditiveExpression(a, AdditiveOperation('+', b))` in the grammar."""
    left = operation.parentCtx.getChild(0)
    first = operation.getChild(0)
    if hasattr(first, "start"):
        op, offset = syntax.span(text, first).strip(), first.start.start
    else:
        op, offset = first.getText(), first.symbol.start
    right = operation.getChild(operation.getChildCount() - 1)
    return _check_operator(text, operation.parentCtx, left, op, offset, right, declared)


def _check_operator(text: str, node: Any, left_node: Any, op: str, offset: int, right_node: Any,
                    declared: set[str]) -> KqlError | None:
    left, right = _type_of(left_node, declared), _type_of(right_node, declared)
    line, pos = position(text, offset)
    if op in _STRING_OPERATORS and right is not None and right != "string":
        return KqlError(SEMANTIC, f"wrong argument type: the right side of '{op}' "
                        f"({syntax.span(text, right_node).strip()!r}) is {right}, expected string", line, pos)
    if left is None or right is None:
        return None
    if op in _ARITHMETIC and "string" in (left, right):
        return KqlError(SEMANTIC, f"wrong argument type: '{op}' cannot take {left} and {right} "
                        f"({syntax.span(text, node).strip()!r})", line, pos)
    if op in _COMPARISON and _category(left) != _category(right):
        return KqlError(SEMANTIC, f"wrong argument type: '{op}' cannot compare {left} "
                        f"({syntax.span(text, left_node).strip()!r}) with {right} "
                        f"({syntax.span(text, right_node).strip()!r})", line, pos)
    return None


def _category(kql_type: str) -> str:
    return NUMBER if kql_type in _NUMERIC else kql_type
