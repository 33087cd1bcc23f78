"""Operators duckdb-kql cannot translate, answered in SQL of our own between two translations.

A query `T | ops | make-series ... | rest` is cut at the operator: the text before it is
translated as any query (`T | ops`, with the statements before it, so its `let`s are in scope),
its columns are learned the way the schema bridges learn them (columns.py, on empty tables),
and the operator's handler builds SQL over it. That SQL becomes a CTE named `_kql_stageN`, a table
the translator is told about, and the text continues as `_kql_stageN | rest`. After the last cut
the text is translated once more and every `_kql_stageN` reference becomes the CTE's name.

The handlers only ever put into SQL what the translator rendered from the user's text, quoted
identifiers and numbers of their own; the composed SQL then passes the same read-only and scope
checks as any query (scope.py): CTE names start with `_`, the only names it lets through.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from . import syntax
from .errors import SEMANTIC, UNSUPPORTED, KqlError, position
from .scope import SCOPE

STAGE_PREFIX = "_kql_stage"
_MAX_STAGES = 24


@dataclass
class Stage:
    """One operator answered in our SQL: its CTE name, SQL (over earlier stages) and columns."""

    name: str
    sql: str
    columns: list[tuple[str, str]]


@dataclass
class Staging:
    """What a handler may use: translate KQL (stages so far in scope) and learn columns."""

    to_sql: Callable[[str, dict[str, list[str]]], Any]
    describe: Callable[[str, dict[str, Any]], list[tuple[str, str]]]
    stages: list[Stage] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    serialized: set[str] = field(default_factory=set)
    """The stages whose rows leave in a known order (window.py)."""

    def schema(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for stage in self.stages:
            names = [c for c, _ in stage.columns]
            out[stage.name] = names
            out[f"{SCOPE}.{stage.name}"] = names
        return out

    def sql(self, text: str) -> str:
        """*text* translated, with the stages so far as CTEs (a complete, checkable SELECT)."""
        result = self.to_sql(text, self.schema())
        if result.unbound:
            name = result.unbound[0]
            raise KqlError(SEMANTIC, f"query parameter '{name}' has no value").at(text, name)
        self.parameters.update(dict(result.parameters))
        return compose(str(result), self.stages)

    def columns(self, sql: str) -> list[tuple[str, str]]:
        return self.describe(sql, self.parameters)

    def add(self, sql: str, columns: list[tuple[str, str]] | None = None) -> str:
        """Make *sql* a stage of its own (a handler's intermediate step); its name, to pipe from."""
        stage = Stage(f"{STAGE_PREFIX}{len(self.stages) + 1}", sql, [])
        stage.columns = columns if columns is not None else self.columns(compose(f'SELECT * FROM "{stage.name}"', [*self.stages, stage]))
        self.stages.append(stage)
        return stage.name


@dataclass(frozen=True)
class Input:
    """The rows piped into a handled operator: as KQL (with the statements before it, so a
    handler can pipe more operators after it), as SQL, and their columns."""

    kql: str
    sql: str
    columns: list[tuple[str, str]]
    prelude: str = ""
    """The statements before the operator's (its `let`s), for KQL a handler writes itself."""


Handler = Callable[[Staging, Any, str, Input], str]
"""(staging, operator node, the whole text, its input) -> the operator's SQL."""

_HANDLERS: dict[str, list[tuple[Callable[[Any, str], bool], Handler]]] = {}


def handles(kind: str, wanted: Callable[[Any, str], bool] = lambda node, text: True
            ) -> Callable[[Handler], Handler]:
    """Register a handler for the parse-tree nodes of *kind* (`MakeSeriesOperator`) that
    *wanted* picks (e.g. only the `extend`s that call `prev()`)."""
    def register(fn: Handler) -> Handler:
        _HANDLERS.setdefault(kind, []).append((wanted, fn))
        return fn
    return register


def _handler(node: Any, text: str) -> Handler | None:
    for wanted, fn in _HANDLERS.get(syntax.kind(node), ()):
        if wanted(node, text):
            return fn
    return None


def translate(text: str, to_sql: Callable, describe: Callable) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of *text*, with every handled operator cut out (module doc)."""
    if STAGE_PREFIX in text:
        line, pos = position(text, text.index(STAGE_PREFIX))
        raise KqlError(SEMANTIC, f"names starting with '{STAGE_PREFIX}' are reserved", line, pos)
    staging = Staging(to_sql, describe)
    for _ in range(_MAX_STAGES):
        node = _first_handled(text)
        if node is None:
            return staging.sql(text), staging.parameters
        text = _cut(staging, node, text)
    raise KqlError(UNSUPPORTED, "too many make-series/window/plugin operators in one query")


_TRIGGERS = re.compile(r"make-series|serialize|mv-apply|top-nested|outer|row_|prev|next")
"""Words one of the handled operators needs (a cheap test before looking at the tree)."""


def _first_handled(text: str) -> Any | None:
    if not _TRIGGERS.search(text):
        return None
    tree = syntax.parse(text)
    return next((n for n in syntax.descendants(tree) if _handler(n, text) is not None), None)


def _cut(staging: Staging, node: Any, text: str) -> str:
    piped = next((a for a in syntax.ancestors(node) if syntax.kind(a) == "PipedOperator"), None)
    if piped is None:
        line, pos = position(text, node.start.start)
        raise KqlError(SEMANTIC, "this operator needs a table piped into it", line, pos)
    pipe = piped.parentCtx
    statement = syntax.statement_of(pipe)
    head = text[pipe.start.start:piped.start.start].rstrip()
    source = text[:statement.start.start] + head
    input_sql = staging.sql(source)
    handler = _handler(node, text)
    assert handler is not None
    sql = handler(staging, node, text, Input(source, input_sql, staging.columns(input_sql),
                                             text[:statement.start.start]))
    name = f"{STAGE_PREFIX}{len(staging.stages) + 1}"
    stage = Stage(name, sql, [])
    stage.columns = staging.columns(compose(f'SELECT * FROM "{name}"', [*staging.stages, stage]))
    staging.stages.append(stage)
    return syntax.apply(text, [(pipe.start.start, piped.stop.stop + 1, name)])


def compose(sql: str, stages: list[Stage]) -> str:
    """*sql* with stage references made CTE references and the stages defined before it."""
    if not stages:
        return sql
    names = {s.name for s in stages}
    sql = _local_references(sql, names)
    ctes = ",\n     ".join(f'"{s.name}" AS ({s.sql})' for s in stages)
    head = re.match(r"\s*WITH\s+", sql)
    if head and not re.match(r"\s*WITH\s+RECURSIVE\b", sql, re.IGNORECASE):
        return f"WITH {ctes},\n     {sql[head.end():]}"
    return f"WITH {ctes}\nSELECT * FROM ({sql})"


def _local_references(sql: str, names: set[str]) -> str:
    """`"<SCOPE>"."_kql_stage1"` -> `"_kql_stage1"`, found by DuckDB's tokenizer (never inside a literal)."""
    tokens = duckdb.tokenize(sql)
    scope = f'"{SCOPE}"'
    edits = []
    for i in range(len(tokens) - 2):
        start = tokens[i][0]
        if sql[start:start + len(scope)] != scope or sql[start + len(scope):start + len(scope) + 1] != ".":
            continue
        table_start = tokens[i + 2][0]
        match = re.match(r'"(' + STAGE_PREFIX + r'\d+)"', sql[table_start:])
        if match and match.group(1) in names:
            edits.append((start, table_start + match.end(), f'"{match.group(1)}"'))
    for start, end, replacement in sorted(edits, reverse=True):
        sql = sql[:start] + replacement + sql[end:]
    return sql


def quote(name: str) -> str:
    """A SQL identifier for *name*."""
    return '"' + name.replace('"', '""') + '"'
