"""`serialize` and the window functions over serialized rows: `row_number`, `prev`, `next`,
`row_cumsum`.

Kusto computes these in the order the rows arrive, which must be a known order: after `sort`/
`order by`, `top`, `serialize`, or `range`, through operators that keep it (`where`, `extend`,
`project`, `take`, `parse`, `mv-expand`...). An operator calling one of them is cut out as a stage
(stages.py): its input's rows are numbered as they arrive (`row_number() OVER ()`, which DuckDB
computes in arrival order) into `__kql_ord`, the operator runs with each window function over
that order (`prev(x, 2)` is `lag(x, 2) OVER (ORDER BY __kql_ord)`), and the rows leave in it.
A `where` calling one computes its predicate in an `extend` first (SQL refuses windows in WHERE).

`serialize` without expressions only marks the rows as ordered; with expressions it is an
`extend`. The official grammar fails to parse a bare `serialize` followed by `|`, so
`mark_bare_serialize` (run before parsing) gives it a placeholder expression first.
"""

from __future__ import annotations

from typing import Any

import duckdb_kql.translate as _translate
from antlr4 import InputStream
from duckdb_kql._antlr.KqlLexer import KqlLexer

from . import sessions, stages, syntax
from .errors import SEMANTIC, UNSUPPORTED, KqlError, position
from .stages import Input, Staging

ORDER = "__kql_ord"
_PLACEHOLDER = "__kql_serialized"
WINDOW_FUNCTIONS = frozenset({"row_number", "prev", "next", "row_cumsum", "row_window_session"})
_ORDERING = frozenset({"SortOperator", "TopOperator", "SerializeOperator"})
_KEEPING = frozenset({"WhereOperator", "FilterOperator", "ExtendOperator", "ProjectOperator",
                      "ProjectAwayOperator", "ProjectRenameOperator", "ProjectKeepOperator",
                      "TakeOperator", "LimitOperator", "ParseOperator", "ParseWhereOperator",
                      "MvExpandOperator", "SerializeOperator"})
_HANDLED = ("ExtendOperator", "ProjectOperator", "WhereOperator", "FilterOperator")


def mark_bare_serialize(text: str) -> str:
    """`| serialize |` -> `| serialize __kql_serialized = 0 |` (module doc), found by the lexer."""
    if "serialize" not in text:
        return text
    lexer = KqlLexer(InputStream(text))
    lexer.removeErrorListeners()  # the parser reports bad tokens, in our words (errors.py)
    tokens = [t for t in lexer.getAllTokens() if t.channel == 0]
    edits = []
    for i, token in enumerate(tokens):
        if token.text != "serialize" or i == 0 or tokens[i - 1].text != "|":
            continue
        following = tokens[i + 1].text if i + 1 < len(tokens) else None
        if following in (None, "|", ")", ";", "}"):
            edits.append((token.stop + 1, token.stop + 1, f" {_PLACEHOLDER} = 0"))
    return syntax.apply(text, edits)


def _window_calls(node: Any) -> list[Any]:
    """The window function calls of this operator itself (not of a pipeline nested in it)."""
    own = node if syntax.kind(node) == "AfterPipeOperator" else node.parentCtx
    return [c for c in syntax.descendants(node, "NamedFunctionCallExpression")
            if syntax.name_text(syntax.children(c)[0]) in WINDOW_FUNCTIONS
            and next((a for a in syntax.ancestors(c) if syntax.kind(a) == "AfterPipeOperator"), None) is own]


def _wanted(node: Any, text: str) -> bool:
    return bool(_window_calls(node))


@stages.handles("SerializeOperator")
def serialize(staging: Staging, node: Any, text: str, source: Input) -> str:
    """Number the rows as they come; run the expressions (if any) as an extend."""
    exprs = [syntax.span(text, n) for n in syntax.children(node, "NamedExpression")
             if _PLACEHOLDER not in syntax.span(text, n)]
    return _ordered(staging, source, f"| extend {', '.join(exprs)}" if exprs else "")


@stages.handles("AfterPipeOperator", lambda node, text: _misplaced(node))
def refuse_elsewhere(staging: Staging, node: Any, text: str, source: Input) -> str:
    call = _window_calls(node)[0]
    line, pos = position(text, call.start.start)
    name = syntax.name_text(syntax.children(call)[0])
    raise KqlError(SEMANTIC, f"{name}() can be used in extend, project and where only", line, pos)


def _misplaced(node: Any) -> bool:
    inner = syntax.children(node)
    return bool(inner) and syntax.kind(inner[0]) not in (*_HANDLED, "SerializeOperator") \
        and bool(_window_calls(node))


def _handle(staging: Staging, node: Any, text: str, source: Input) -> str:
    calls = _window_calls(node)
    for call in calls:
        _check_call(text, call)
    _require_serialized(staging, node, text, calls[0])
    session_calls = [c for c in calls if syntax.name_text(syntax.children(c)[0]) == "row_window_session"]
    written = sessions.replaced(text, node, session_calls)
    helpers = ", ".join(f"__kql_rw{k}" for k in range(len(session_calls)))
    if syntax.kind(node) in ("WhereOperator", "FilterOperator"):
        predicate = written[len(written.split(None, 1)[0]):]
        body = f"| extend __kql_w = ({predicate}) | where __kql_w | project-away __kql_w"
    elif syntax.kind(node) == "ProjectOperator":
        body = f"| {written}, {ORDER}"  # the order outlives the projection, to leave in it
    else:
        body = "| " + written
    if session_calls and syntax.kind(node) != "ProjectOperator":
        body += f" | project-away {helpers}"
    return _ordered(staging, source, body, session_calls and (lambda numbered: sessions.add_columns(
        staging, text, numbered, source.prelude, session_calls)))


for _kind in _HANDLED:
    stages.handles(_kind, _wanted)(_handle)


def _ordered(staging: Staging, source: Input, body: str, prepare: Any = None) -> str:
    """*body* (operators, in KQL) over *source*'s rows numbered in arrival order, leaving in it;
    *prepare* (numbered stage -> stage) adds what the body reads first (sessions.py)."""
    name = f"{stages.STAGE_PREFIX}{len(staging.stages) + 1}"
    numbered = stages.Stage(name, f'SELECT *, row_number() OVER () AS "{ORDER}" FROM ({source.sql})',
                            [*source.columns, (ORDER, "long")])
    staging.stages.append(numbered)
    if prepare:
        name = prepare(name)
    staging.serialized.add(name)
    sql = staging.sql(f"{name}\n{body}\n| order by {ORDER} asc\n| project-away {ORDER}")
    staging.serialized.add(f"{stages.STAGE_PREFIX}{len(staging.stages) + 1}")
    return sql


def _check_call(text: str, call: Any) -> None:
    name = syntax.name_text(syntax.children(call)[0])
    args = syntax.children(call, "ArgumentExpression")
    limits = {"row_number": 1, "prev": 3, "next": 3, "row_cumsum": 1, "row_window_session": 4}
    if name not in limits or len(args) > limits[name]:
        line, pos = position(text, call.start.start)
        raise KqlError(UNSUPPORTED, f"unsupported function: {name}() with a restart argument", line, pos)


def _require_serialized(staging: Staging, node: Any, text: str, call: Any) -> None:
    piped = next(a for a in syntax.ancestors(node) if syntax.kind(a) == "PipedOperator")
    pipe = piped.parentCtx
    kids = syntax.children(pipe)
    for kid in reversed(kids[:kids.index(piped)]):
        if syntax.kind(kid) != "PipedOperator":
            head = syntax.span(text, kid).strip()
            if head in staging.serialized or syntax.first(kid, "RangeExpression") is not None:
                return
            break
        operator = syntax.children(syntax.children(kid)[0])[0]
        if syntax.kind(operator) in _ORDERING:
            return
        if syntax.kind(operator) not in _KEEPING:
            break
    name = syntax.name_text(syntax.children(call)[0])
    line, pos = position(text, call.start.start)
    raise KqlError(SEMANTIC, f"{name}() needs serialized rows: put '| serialize' or "
                   "'| order by ...' before it", line, pos)


def _over(frame: str = "") -> str:
    return f'OVER (ORDER BY "{ORDER}"{frame})'


def _render_row_number(node) -> str | None:
    if len(node.args) > 1:
        return None
    start = _translate.render_expr(node.args[0]) if node.args else "1"
    return f"(row_number() {_over()} + ({start}) - 1)"


def _render_shift(function: str):
    def render(node) -> str | None:
        if not 1 <= len(node.args) <= 3:
            return None
        args = [_translate.render_expr(a) for a in node.args]
        value, offset = args[0], (args[1] if len(args) > 1 else "1")
        if len(args) == 3:
            return f"{function}({value}, {offset}, {args[2]}) {_over()}"
        return f"{function}({value}, {offset}) {_over()}"
    return render


def _render_row_cumsum(node) -> str | None:
    if len(node.args) != 1:
        return None
    value = _translate.render_expr(node.args[0])
    return f"coalesce(sum({value}) {_over(' ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW')}, 0)"


def register() -> None:
    """Install the renderings in the translator; idempotent."""
    _translate._SPECIAL_FORMS.update({
        "row_number": _render_row_number, "prev": _render_shift("lag"),
        "next": _render_shift("lead"), "row_cumsum": _render_row_cumsum,
    })


register()
