"""`evaluate bag_unpack`, `evaluate pivot` and `evaluate narrow`: plugins whose columns depend on
the data, rewritten into plain KQL once the data has been asked.

A query's SQL is fixed before it runs, but `bag_unpack` makes a column per property key found in
the rows, and `pivot` one per value of a column. So these run in two steps, both through the
normal path (compiled in the sandbox, scoped to the caller's services and window, under the same
budget): a discovery query over the plugin's input finds the keys or values (at most
`MAX_DISCOVERED`), then the plugin is rewritten with them written in, as literals quoted by
syntax.py:

- `evaluate bag_unpack(d [, prefix])` -> `extend ['<prefix>k1'] = d["k1"], ... | project-away d`
  (keys in alphabetical order; the values stay dynamic);
- `evaluate pivot(c [, agg(x)] [, k1, ...])` -> `summarize ['v1'] = aggif(x, tostring(c) ==
  "v1"), ... by k1, ...` (default `count()`; without keys, every column but c and those agg
  reads);
- `evaluate narrow()` -> one row per cell, `Row` (0-based), `Column`, `Value` (the string form).

The text is parsed here, in the collector, only after budget.check_shape has bounded it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import syntax
from .budget import check_shape
from .errors import LIMIT, SEMANTIC, UNSUPPORTED, KqlError, position

MAX_DISCOVERED = 1000
_PLUGINS = ("bag_unpack", "pivot", "narrow")
_CONDITIONAL = {"count": "countif", "sum": "sumif", "avg": "avgif", "min": "minif", "max": "maxif",
                "dcount": "dcountif", "make_list": "make_list_if", "make_set": "make_set_if",
                "stdev": "stdevif", "variance": "varianceif"}

Discover = Callable[[str], tuple[list[tuple[str, str]], list[list[Any]]]]
"""Run a KQL query as the caller: (columns, rows)."""


def resolve(text: str, discover: Discover) -> str:
    """*text* with every data-dependent plugin rewritten (module doc)."""
    if "evaluate" not in text:
        return text
    check_shape(text)
    for _ in range(8):
        found = _next_plugin(text)
        if found is None:
            return text
        text = _rewrite(text, *found, discover)
    raise KqlError(UNSUPPORTED, "too many evaluate operators in one query")


def _next_plugin(text: str) -> tuple[Any, Any, str] | None:
    for node in syntax.descendants(syntax.parse(text), "EvaluateOperator"):
        call = syntax.first(node, "NamedFunctionCallExpression")
        if call is not None:
            name = syntax.name_text(syntax.children(call)[0])
            if name in _PLUGINS:
                return node, call, name
            line, pos = position(text, node.start.start)
            raise KqlError(UNSUPPORTED, f"unsupported operator 'evaluate {name}' (plugins supported: "
                           f"{', '.join(_PLUGINS)})", line, pos)
    return None


def _rewrite(text: str, node: Any, call: Any, name: str, discover: Discover) -> str:
    piped = next(a for a in syntax.ancestors(node) if syntax.kind(a) == "PipedOperator")
    pipe = piped.parentCtx
    statement = syntax.statement_of(pipe)
    source = text[:statement.start.start] + text[pipe.start.start:piped.start.start].rstrip()
    args = [syntax.span(text, a).strip() for a in syntax.children(call, "ArgumentExpression")]
    if name == "bag_unpack":
        replacement = _bag_unpack(text, call, args, source, discover)
    elif name == "pivot":
        replacement = _pivot(text, call, args, source, discover)
    else:
        replacement = _narrow(source, discover)
    start, end = syntax.bounds(node)
    return syntax.apply(text, [(start, end, replacement)])


def _found(text: str, call: Any, rows: list[list[Any]], what: str) -> list[str]:
    if len(rows) > MAX_DISCOVERED:
        line, pos = position(text, call.start.start)
        raise KqlError(LIMIT, f"{what}: more than {MAX_DISCOVERED:,} distinct values would each become a "
                       "column", line, pos)
    return sorted(str(r[0]) for r in rows if r[0] is not None)


def _bag_unpack(text: str, call: Any, args: list[str], source: str, discover: Discover) -> str:
    if not 1 <= len(args) <= 2:
        line, pos = position(text, call.start.start)
        raise KqlError(UNSUPPORTED, "bag_unpack: only the (column[, prefix]) arguments are supported", line, pos)
    column = args[0]
    prefix = _string(text, call, args[1]) if len(args) == 2 else ""
    _, rows = discover(f"{source}\n| mv-expand __kql_k = bag_keys({column}) to typeof(string)\n"
                       f"| where isnotempty(__kql_k)\n| summarize by __kql_k\n| take {MAX_DISCOVERED + 1}")
    keys = _found(text, call, rows, "bag_unpack")
    unpacked = ", ".join(f"{syntax.name(prefix + k)} = {column}[{syntax.string(k)}]" for k in keys)
    return (f"extend {unpacked} | project-away {column}" if keys else f"project-away {column}")


def _string(text: str, call: Any, literal: str) -> str:
    match = re.fullmatch(r"'([^'\\]*)'|\"([^\"\\]*)\"", literal)
    if match is None:
        line, pos = position(text, call.start.start)
        raise KqlError(SEMANTIC, "bag_unpack: the prefix must be a string literal", line, pos)
    return match.group(1) if match.group(1) is not None else match.group(2)


def _pivot(text: str, call: Any, args: list[str], source: str, discover: Discover) -> str:
    if not args:
        line, pos = position(text, call.start.start)
        raise KqlError(SEMANTIC, "pivot needs the column to pivot on", line, pos)
    column, aggregate, keys = args[0], (args[1] if len(args) > 1 else "count()"), args[2:]
    match = re.fullmatch(r"(\w+)\s*\((.*)\)", aggregate, re.S)
    if match is None or match.group(1) not in _CONDITIONAL:
        line, pos = position(text, call.start.start)
        raise KqlError(UNSUPPORTED, f"pivot: unsupported aggregation '{aggregate}' (use one of "
                       f"{', '.join(sorted(_CONDITIONAL))})", line, pos)
    function, inner = _CONDITIONAL[match.group(1)], match.group(2).strip()
    if not keys:
        columns, _ = discover(f"{source}\n| take 0")
        used = set(re.findall(r"[A-Za-z_]\w*", inner)) | {column}
        keys = [syntax.name(c) for c, _ in columns if c not in used]
    _, rows = discover(f"{source}\n| summarize by __kql_v = tostring({column})\n| take {MAX_DISCOVERED + 1}")
    values = _found(text, call, rows, "pivot")
    parts = []
    for value in values:
        condition = f"tostring({column}) == {syntax.string(value)}"
        arguments = f"{inner}, {condition}" if inner else condition
        parts.append(f"{syntax.name(value)} = {function}({arguments})")
    by = f" by {', '.join(keys)}" if keys else ""
    return f"summarize {', '.join(parts)}{by}" if parts else f"summarize{by}"


def _narrow(source: str, discover: Discover) -> str:
    columns, _ = discover(f"{source}\n| take 0")
    cells = ", ".join(f"bag_pack('Column', {syntax.string(c)}, 'Value', tostring({syntax.name(c)}))"
                      for c, _ in columns)
    return (f"serialize Row = row_number() - 1 | mv-expand __kql_cell = pack_array({cells}) "
            f"| project Row, Column = tostring(__kql_cell.Column), Value = tostring(__kql_cell.Value)")
