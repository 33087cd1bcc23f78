"""Naming tabular results: `let` functions that return a table, and `as`.

duckdb-kql translates tabular `let` *values* (`let T = requests | where ...; T`) but not functions
whose body is a table, nor `as`. Both become tabular `let` values, the one form it has:

- `let f = (n:long) { T | take n }; f(3) | count` -> `let __fn0 = T | take 3; __fn0 | count`.
  Each call is instantiated on its own: a literal argument is written where its parameter was
  (so `take n` still sees a literal count, which the translator needs), any other argument is
  bound first as `let __fn0_n = <argument>;`, and the body's own `let`s are renamed per call.
  The instance is declared just before the statement that calls it, where every name the call's
  arguments could see is in scope; the function's declaration is then dropped.
- `T | where ... | as X | rest` -> `let X = T | where ...; X | rest`: the rows so far, named,
  passed on; later references to `X` in the statement read the same `let`.

A function counts as tabular when its body ends in a pipeline, a tabular operator (`print`,
`union`, `datatable`...), a table, or another tabular name. Scalar functions are left to the
translator, which inlines them itself.
"""

from __future__ import annotations

import re
from typing import Any

from collector.store.schema import TABLES

from . import syntax
from .errors import SEMANTIC, UNSUPPORTED, KqlError, position

_MAX_INSTANCES = 64
_TABULAR_ROOTS = frozenset({"DataTableExpression", "ContextualDataTableExpression",
                            "ExternalDataExpression", "RangeExpression"})
_DECLARATION_KINDS = frozenset({"LetVariableDeclaration", "LetFunctionDeclaration",
                                "LetViewDeclaration", "LetMaterializeDeclaration",
                                "LetEntityGroupDeclaration"})


# --- let functions -----------------------------------------------------------------------------

def inline_functions(text: str) -> str:
    """Every call of a tabular let function replaced by its own instance (see module doc)."""
    for _ in range(_MAX_INSTANCES):
        tree = syntax.parse(text)
        functions = _tabular_functions(text, tree)
        if not functions:
            return text
        # The last declared first: its calls sit in ordinary statements (the bodies of functions
        # declared after it are gone already), and instantiating it may expose calls to earlier ones.
        decl = functions[-1]
        name = syntax.name_text(_declared_name(decl))
        every = [c for c in syntax.descendants(tree, "NamedFunctionCallExpression") if _callee(c) == name]
        inside = [c for c in every if any(a is decl for a in syntax.ancestors(c))]
        calls = [c for c in every if c.start.start > decl.stop.stop]
        if inside:
            line, pos = position(text, inside[0].start.start)
            raise KqlError(UNSUPPORTED, f"unsupported operator: a recursive let function ('{name}')",
                           line, pos)
        if not calls:
            text = _drop_statement(text, decl)
            continue
        text = _instantiate(text, decl, calls[0], name)
    raise KqlError(UNSUPPORTED, "unsupported operator: let functions nested too deeply")


def _tabular_functions(text: str, tree: Any) -> list[Any]:
    tabular_names = set(TABLES)
    found = []
    for statement in _statements(tree):
        decl = _declaration(statement)
        if decl is None:
            continue
        name = syntax.name_text(_declared_name(decl))
        if syntax.kind(decl) == "LetFunctionDeclaration":
            body = syntax.first(decl, "LetFunctionBody")
            if body is not None and _is_tabular(_body_parts(body)[1], tabular_names):
                tabular_names.add(name)
                found.append(decl)
        elif syntax.kind(decl) == "LetVariableDeclaration":
            value = syntax.children(decl)[-1]
            if _is_tabular(value, tabular_names):
                tabular_names.add(name)
    return found


def _statements(tree: Any) -> list[Any]:
    query = syntax.first(tree, "Query")
    return syntax.children(query) if query is not None else []


def _declaration(statement: Any) -> Any | None:
    node = statement
    while True:
        if syntax.kind(node) in _DECLARATION_KINDS:
            return node
        kids = syntax.children(node)
        if len(kids) != 1 or syntax.kind(node) not in ("Statement", "LetStatement", "LetFunctionBodyStatement"):
            return None
        node = kids[0]


def _declared_name(decl: Any) -> Any:
    for child in syntax.children(decl):
        if syntax.kind(child) in ("IdentifierName", "IdentifierOrKeywordOrEscapedName",
                                  "IdentifierOrKeywordName", "IdentifierOrExtendedKeywordOrEscapedName"):
            return child
    raise KqlError(SEMANTIC, "a let statement without a name")


def _chain(node: Any) -> list[Any]:
    """*node* and the nodes below it that span exactly the same text (one expression, many rules)."""
    out = [node]
    while True:
        kids = syntax.children(out[-1])
        if len(kids) != 1 or not syntax.same_span(kids[0], out[-1]):
            return out
        out.append(kids[0])


def _is_tabular(node: Any, tabular_names: set[str]) -> bool:
    for item in _chain(node):
        k = syntax.kind(item)
        if k == "PipeExpression" and syntax.children(item, "PipedOperator"):
            return True
        if k.endswith("Operator") or k in _TABULAR_ROOTS:
            return True
        if k == "SimpleNameReference":
            return syntax.name_text(syntax.children(item)[0]) in tabular_names
        if k == "NamedFunctionCallExpression":
            return _callee(item) in tabular_names
    return False


def _callee(call: Any) -> str:
    return syntax.name_text(syntax.children(call)[0])


def _body_parts(body: Any) -> tuple[list[Any], Any]:
    """(the body's own let declarations, its final expression)."""
    kids = syntax.children(body)
    decls = [_declaration(k) for k in kids[:-1] if _declaration(k) is not None]
    return decls, kids[-1]


def _parameters(decl: Any) -> list[tuple[str, Any | None]]:
    """(name, default value node or None) of each declared parameter."""
    listed = syntax.first(decl, "LetFunctionParameterList")
    if listed is None:
        return []
    out = []
    for param in syntax.children(listed):
        ident = syntax.first(param, "IdentifierName")
        if ident is None:
            raise KqlError(UNSUPPORTED, "unsupported operator: a let function parameter of this kind")
        default = syntax.first(param, "ScalarParameterDefault")
        value = syntax.children(default) if default is not None else []
        out.append((syntax.name_text(ident), value[-1] if value else None))
    return out


def _is_literal(node: Any) -> bool:
    return any(syntax.kind(n).endswith("LiteralExpression") for n in _chain(node)[-2:])


def _instantiate(text: str, decl: Any, call: Any, name: str) -> str:
    """Replace *call* with a fresh tabular let holding the body, bound to the call's arguments."""
    prefix = _fresh_prefix(text, name)
    params = _parameters(decl)
    args = syntax.children(call, "ArgumentExpression")
    if len(args) > len(params):
        line, pos = position(text, call.start.start)
        raise KqlError(SEMANTIC, f"wrong number of arguments to '{name}': expected "
                       f"{len(params)}, got {len(args)}", line, pos)
    bindings: list[str] = []
    replace: dict[str, str] = {}
    for i, (param, default) in enumerate(params):
        if i < len(args):
            value = args[i]
        elif default is not None:
            value = default
        else:
            line, pos = position(text, call.start.start)
            raise KqlError(SEMANTIC, f"missing argument '{param}' in the call to '{name}'", line, pos)
        value_text = syntax.span(text, value)
        if _is_literal(value):
            replace[param] = f"({value_text})" if value_text.lstrip().startswith("-") else value_text
        else:
            bound = f"{prefix}_{_word(param)}"
            bindings.append(f"let {bound} = {value_text};\n")
            replace[param] = bound
    body = syntax.first(decl, "LetFunctionBody")
    inner, final = _body_parts(body)
    for d in inner:
        local = syntax.name_text(_declared_name(d))
        replace[local] = f"{prefix}_{_word(local)}"
    pieces = [_substituted(text, d, replace, renaming=d) + ";\n" for d in inner]
    instance = f"let {prefix} = {_substituted(text, final, replace)};\n"
    statement = syntax.statement_of(call)
    start, end = syntax.bounds(call)
    insert_at = statement.start.start
    edits = [(insert_at, insert_at, "".join(bindings) + "".join(pieces) + instance), (start, end, prefix)]
    return syntax.apply(text, edits)


def _substituted(text: str, node: Any, replace: dict[str, str], renaming: Any = None) -> str:
    """The text of *node* with each reference to a name in *replace* replaced."""
    base = node.start.start
    edits = []
    for ref in syntax.descendants(node, "SimpleNameReference"):
        target = syntax.name_text(syntax.children(ref)[0])
        if target in replace:
            s, e = syntax.bounds(ref)
            edits.append((s - base, e - base, replace[target]))
    if renaming is not None:
        ident = _declared_name(renaming)
        target = syntax.name_text(ident)
        s, e = syntax.bounds(ident)
        edits.append((s - base, e - base, replace[target]))
    return syntax.apply(syntax.span(text, node), edits)


def _fresh_prefix(text: str, name: str) -> str:
    stem = "__fn_" + _word(name)
    n = 0
    while f"{stem}{n}" in text:
        n += 1
    return f"{stem}{n}"


def _word(name: str) -> str:
    return re.sub(r"\W", "_", name, flags=re.ASCII) or "x"


def _drop_statement(text: str, decl: Any) -> str:
    """Remove a declaration statement and the `;` after it."""
    start, end = syntax.bounds(syntax.statement_of(decl))
    rest = text[end:]
    semicolon = re.match(r"\s*;", rest)
    if semicolon:
        end += semicolon.end()
    return text[:start] + text[end:]


# --- invoke ------------------------------------------------------------------------------------

def hoist_invoke(text: str) -> str:
    """Every `P | invoke f(a) | rest` -> `let __inv0 = P; f(__inv0, a) | rest`: the piped rows are
    the function's first (tabular) argument, as Kusto passes them."""
    for n in range(_MAX_INSTANCES):
        if "invoke" not in text:
            return text
        tree = syntax.parse(text)
        node = syntax.first(tree, "InvokeOperator")
        if node is None:
            return text
        piped = next(a for a in syntax.ancestors(node) if syntax.kind(a) == "PipedOperator")
        pipe = piped.parentCtx
        call = syntax.first(node, "NamedFunctionCallExpression")
        if call is None:
            line, pos = position(text, node.start.start)
            raise KqlError(UNSUPPORTED, "unsupported operator: invoke needs a function call", line, pos)
        label = f"__inv{n}"
        while label in text:
            label += "_"
        head = text[pipe.start.start:piped.start.start].rstrip()
        args = [syntax.span(text, a) for a in syntax.children(call, "ArgumentExpression")]
        called = f"{_callee(call)}({', '.join([label, *args])})"
        statement = syntax.statement_of(pipe)
        edits = [(statement.start.start, statement.start.start, f"let {label} = {head};\n"),
                 (pipe.start.start, piped.stop.stop + 1, called)]
        text = syntax.apply(text, edits)
    raise KqlError(UNSUPPORTED, "unsupported operator: too many 'invoke' in one query")


# --- union withsource= with named parts ---------------------------------------------------------

def label_union_parts(text: str) -> str:
    """`union withsource=S (A | as X), B` -> `union (A | as X | extend S = "X"), (B | extend S =
    "B") | project-reorder S`: a part named by `as` is labelled with that name, as Kusto labels
    it (the translator sees only the `let` that `as` becomes). Only unions with such a part are
    rewritten; the other parts get the labels the translator would give them."""
    for _ in range(_MAX_INSTANCES):
        if "source" not in text:
            return text
        tree = syntax.parse(text)
        node = next((u for u in syntax.descendants(tree, "UnionOperator") if _named_parts(text, u)), None)
        if node is None:
            return text
        text = _label_union(text, node)
    raise KqlError(UNSUPPORTED, "unsupported operator: too many labelled unions in one query")


def _source_param(text: str, union: Any) -> Any | None:
    return next((p for p in syntax.children(union, "RelaxedQueryOperatorParameter")
                 if syntax.span(text, p).replace(" ", "").lower().startswith(("withsource=", "source="))), None)


def _as_name(text: str, part: Any) -> str | None:
    found = re.search(r"\|\s*as\s+(?:hint\.\w+\s*=\s*\w+\s+)*([A-Za-z_]\w*)\s*\)\s*$", syntax.span(text, part))
    return found.group(1) if found else None


def _named_parts(text: str, union: Any) -> bool:
    if _source_param(text, union) is None:
        return False
    return any(_as_name(text, p) for p in syntax.children(union, "UnionOperatorExpression"))


def _label_union(text: str, union: Any) -> str:
    param = _source_param(text, union)
    assert param is not None
    column = syntax.span(text, syntax.children(param)[-1]).strip()
    piped = syntax.kind(union.parentCtx) == "AfterPipeOperator"
    edits = [(*syntax.bounds(param), "")]
    for i, part in enumerate(syntax.children(union, "UnionOperatorExpression"), start=1 if piped else 0):
        written = syntax.span(text, part).strip()
        label = _as_name(text, part) or (written if written in TABLES else f"union_arg{i}")
        if written.startswith("(") and written.endswith(")"):
            written = written[1:-1]
        edits.append((*syntax.bounds(part), f"({written} | extend {column} = {syntax.string(label)})"))
    if piped:
        head = union.parentCtx.parentCtx.parentCtx
        kids = syntax.children(head)
        first = kids[0]
        written = syntax.span(text, first).strip()
        label = written if written in TABLES and kids[1] is union.parentCtx.parentCtx else "union_arg0"
        end = union.parentCtx.parentCtx.start.start
        edits.append((first.start.start, end, f"{text[first.start.start:end].rstrip()} | extend {column} = {syntax.string(label)} "))
    statement_end = syntax.bounds(union)[1]
    edits.append((statement_end, statement_end, f" | project-reorder {column}"))
    return syntax.apply(text, edits)


# --- as ----------------------------------------------------------------------------------------

def hoist_as(text: str) -> str:
    """Every `P | as X | rest` -> `let X = P; X | rest` (see module doc)."""
    for _ in range(_MAX_INSTANCES):
        tree = syntax.parse(text)
        node = syntax.first(tree, "AsOperator")
        if node is None:
            return text
        piped = next(a for a in syntax.ancestors(node) if syntax.kind(a) == "PipedOperator")
        pipe = piped.parentCtx
        names = [c for c in syntax.children(node) if syntax.kind(c).startswith("Identifier")]
        if not names:
            line, pos = position(text, node.start.start)
            raise KqlError(UNSUPPORTED, "unsupported operator 'as' without a name", line, pos)
        label = syntax.span(text, names[-1]).strip()
        head = text[pipe.start.start:piped.start.start].rstrip()
        statement = syntax.statement_of(pipe)
        edits = [(statement.start.start, statement.start.start, f"let {label} = {head};\n"),
                 (pipe.start.start, piped.stop.stop + 1, label)]
        text = syntax.apply(text, edits)
    raise KqlError(UNSUPPORTED, "unsupported operator: too many 'as' in one query")
