"""Functions that return several columns: `series_stats`, `series_decompose`,
`series_decompose_anomalies` in `extend` and `project`.

`| extend (flag, score, baseline) = series_decompose_anomalies(y, 2)` becomes
`| extend __kql_m0 = __kql_series_decompose_anomalies(y, 2) | extend flag = __kql_m0["ad_flag"],
score = ..., baseline = ... | project-away __kql_m0`: the function once, as a bag, then one column
per part, in the place the call stood. Unnamed, the parts are named as Kusto names them:
`series_stats_y_min`, `series_decompose_y_baseline`, `series_decompose_anomalies_y_ad_flag`.
"""

from __future__ import annotations

import re
from typing import Any

from . import syntax

# function -> (the bag-returning function, its parts and the conversion each gets)
_OUTPUTS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "series_stats": ("series_stats_dynamic", [
        ("min", "toreal"), ("min_idx", "tolong"), ("max", "toreal"), ("max_idx", "tolong"),
        ("avg", "toreal"), ("stdev", "toreal"), ("variance", "toreal")]),
    "series_decompose": ("__kql_series_decompose", [
        ("baseline", ""), ("seasonal", ""), ("trend", ""), ("residual", "")]),
    "series_decompose_anomalies": ("__kql_series_decompose_anomalies", [
        ("ad_flag", ""), ("ad_score", ""), ("baseline", "")]),
}
_MAX_CALLS = 32


def expand(text: str) -> str:
    """Every multi-column call in an extend or project expanded (module doc)."""
    for n in range(_MAX_CALLS):
        if not any(name in text for name in _OUTPUTS):
            return text
        found = _next_call(syntax.parse(text))
        if found is None:
            return text
        text = _expand_one(text, *found, f"__kql_m{n}")
    return text


def _next_call(tree: Any) -> tuple[Any, Any, Any] | None:
    for operator in syntax.descendants(tree):
        if syntax.kind(operator) not in ("ExtendOperator", "ProjectOperator"):
            continue
        for named in syntax.descendants(operator, "NamedExpression"):
            call = _sole_call(named)
            if call is not None and _callee(call) in _OUTPUTS:
                return operator, named, call
    return None


def _callee(call: Any) -> str:
    return syntax.name_text(syntax.children(call)[0])


def _sole_call(named: Any) -> Any | None:
    unnamed = syntax.first(named, "UnnamedExpression")
    if unnamed is None:
        return None
    call = syntax.first(unnamed, "NamedFunctionCallExpression")
    return call if call is not None and syntax.same_span(call, unnamed) else None


def _names(text: str, named: Any, function: str, call: Any) -> list[str]:
    """The column names: those declared (`(a, b) = ...`: the first parts only), or Kusto's defaults."""
    _, parts = _OUTPUTS[function]
    args = syntax.children(call, "ArgumentExpression")
    column = syntax.span(text, args[0]).strip() if args else ""
    stem = f"{function}_{column}" if re.fullmatch(r"[A-Za-z_]\w*", column) else function
    defaults = [f"{stem}_{part}" for part, _ in parts]
    clause = syntax.first(named, "NamedExpressionNameClause")
    if clause is None:
        return defaults
    listed = syntax.first(clause, "NamedExpressionNameList")
    declared = ([syntax.span(text, c) for c in syntax.children(listed)] if listed is not None
                else [syntax.span(text, clause).rstrip("= \t\r\n")])
    return declared


def _expand_one(text: str, operator: Any, named: Any, call: Any, bag: str) -> str:
    function = _callee(call)
    dynamic_function, parts = _OUTPUTS[function]
    names = _names(text, named, function, call)
    args = syntax.span(text, call)[len(syntax.span(text, syntax.children(call)[0])):]
    columns = ", ".join(
        f"{name} = {conv}({bag}[{syntax.string(part)}])" if conv else f"{name} = {bag}[{syntax.string(part)}]"
        for name, (part, conv) in zip(names, parts, strict=False))
    start, end = syntax.bounds(operator)
    named_start, named_end = syntax.bounds(named)
    edits = [(start, start, f"extend {bag} = {dynamic_function}{args} | "),
             (named_start, named_end, columns)]
    if syntax.kind(operator) == "ExtendOperator":
        edits.append((end, end, f" | project-away {bag}"))
    return syntax.apply(text, edits)
