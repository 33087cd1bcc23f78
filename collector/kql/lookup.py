"""Finding one request: which terms a query's rows must hold, so that the lookup index
(collector/store/lookup_index.py) can narrow each table to the rows that hold one of them.

A query qualifies when it is one statement that reads tables only as its source (a table, a
`union` of tables or of `*`, which is also what `search` becomes) and filters them first:
`<source> | where P | ...`. P yields terms when every row that satisfies it must hold one of them:

    col == "v", col =~ "v", col in ("v", ...), col has "v", col has_cs "v"   a term of v
    dyn["k"] == "v", dyn.k == "v", dyn.k in (...)                         a term of v
    A and B                                                                A's or B's (the fewer)
    A or B                                                                 A's and B's together

where `col` is a string or dynamic column of the source tables. Anything else yields none, and
the query runs as it would have. The engine then narrows each source table to the `_seq`s the
index lists for the terms and evaluates the query unchanged, so the answer is the full scan's as
long as every row that satisfies P holds the term in the index. Why it does:

- A term is a maximal run of ASCII letters and digits of the value (MIN_TERM long, with a digit,
  not starting with STOP_ZEROS zeros: the index keeps none of those, so a value with no other
  term is not narrowed),
  bounded in the value by ASCII punctuation or space (or the value's ends). A row matching
  `has "v"` holds v between characters that are neither letters nor numbers, and a row matching
  `==`/`=~` holds all of v; either way the run is a maximal run of the row's text, whose
  lowercased form the index holds. Case: `has` is RE2's case-insensitive match, under which only
  `ſ` and the Kelvin sign fold to ASCII letters, and the index folds both (as `=~`'s `lower`).
- A value inside a dynamic column (`dyn.k == "v"`) is held JSON-escaped in the text the index
  reads, where a control character becomes `\\n` or `\\u0001`: its letters would join the term,
  so for those the term must be bounded by printable ASCII. `has` on a path is not narrowed.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb

from collector.store.lookup_index import INDEXED, MIN_TERM, STOP_ZEROS, Candidates, candidates
from collector.store.schema import SEQ_COLUMN, TABLES

from . import syntax
from .errors import KqlError
from .scope import Scope

_RUN = re.compile(r"[A-Za-z0-9]+")
MAX_CANDIDATES = 20_000
_TEXT_OPERATORS = frozenset({"has", "has_cs", "=~", "=="})
_VALUE_OPERATORS = frozenset({"=~", "=="})
_OPERATIONS = frozenset({"LogicalAndOperation", "LogicalOrOperation"})
_PATH_STEPS = frozenset({"FunctionCallOrPathPathOperation", "FunctionCallOrPathElementOperation"})
_NAMES = frozenset({"IdentifierName", "EscapedName"})
_TABLE_FUNCTIONS = frozenset({"table", "database", "cluster", "materialize", "view"})


@dataclass(frozen=True)
class Lookup:
    """Every row of `tables` (the query's sources, each once) that can reach the answer holds
    one of `terms` (lowercase, as the index spells them)."""

    tables: tuple[str, ...]
    terms: tuple[str, ...]


def plan(text: str) -> Lookup | None:
    """The lookup *text* allows (see the module doc), or None."""
    try:
        tree = syntax.parse(text)
    except KqlError:
        return None
    statements = [s for q in syntax.children(tree, "Query") for s in syntax.children(q, "Statement")]
    if len(statements) != 1:
        return None
    pipe = syntax.first(statements[0], "PipeExpression")
    if pipe is None or syntax.kind(statements[0].getChild(0)) != "QueryStatement":
        return None
    parts = syntax.children(pipe)
    if len(parts) < 2 or syntax.kind(parts[1]) != "PipedOperator":
        return None
    source = _sources(text, parts[0])
    where = _collapse(syntax.children(parts[1])[0])
    if source is None or syntax.kind(where) != "WhereOperator":
        return None
    if _reads_tables(text, parts[1:]):
        return None
    tables, hidden = source
    condition = syntax.children(where)[-1]
    terms = _terms(text, condition, tables, hidden)
    return Lookup(tuple(tables), tuple(sorted(terms))) if terms else None


def _reads_tables(text: str, operators: list[Any]) -> bool:
    """Whether the operators name any table (a join, a subquery, `table()`...): those reads must
    not be narrowed, so such a query is left as it is."""
    for operator in operators:
        for node in syntax.descendants(operator):
            if syntax.kind(node) in _NAMES:
                name = syntax.name_text(node)
                if name in TABLES or name.lower() in _TABLE_FUNCTIONS:
                    return True
    return False


def _collapse(node: Any) -> Any:
    """Down through the wrappers that span exactly what their one child spans."""
    while True:
        kids = syntax.children(node)
        if len(kids) != 1 or not syntax.same_span(kids[0], node):
            return node
        node = kids[0]


def _sources(text: str, node: Any) -> tuple[list[str], str | None] | None:
    """The tables the source reads (and the `withsource` column it adds), or None."""
    node = _collapse(node)
    if syntax.kind(node) == "IdentifierName":
        name = syntax.name_text(node)
        return ([name], None) if name in TABLES else None
    if syntax.kind(node) != "UnionOperator":
        return None
    tables: list[str] = []
    hidden = None
    for child in syntax.children(node):
        kind = syntax.kind(child)
        if kind == "RelaxedQueryOperatorParameter":
            key, _, value = syntax.span(text, child).partition("=")
            if key.strip().lower() == "withsource":
                hidden = value.strip()
            continue
        child = _collapse(child)
        if syntax.kind(child) == "IdentifierName" and syntax.name_text(child) in TABLES:
            tables.append(syntax.name_text(child))
        elif syntax.kind(child) == "WildcardedName":
            pattern = syntax.span(text, child).strip()
            tables.extend(t for t in TABLES if fnmatch.fnmatchcase(t, pattern))
        else:
            return None
    return (tables, hidden) if tables and len(set(tables)) == len(tables) else None


def _terms(text: str, node: Any, tables: list[str], hidden: str | None) -> set[str] | None:
    node = _collapse(node)
    kind = syntax.kind(node)
    if kind == "ParenthesizedExpression":
        return _terms(text, syntax.children(node)[0], tables, hidden)
    if kind in ("LogicalAndExpression", "LogicalOrExpression"):
        operands = [syntax.children(part)[0] if syntax.kind(part) in _OPERATIONS else part
                    for part in syntax.children(node)]
        found = [_terms(text, operand, tables, hidden) for operand in operands]
        if kind == "LogicalAndExpression":
            known = [terms for terms in found if terms]
            return min(known, key=len) if known else None
        if any(not terms for terms in found):
            return None
        return set().union(*found)  # type: ignore[arg-type]
    if kind in ("EqualityExpression", "StringBinaryOperatorExpression"):
        return _comparison(text, node, tables, hidden)
    return None


def _comparison(text: str, node: Any, tables: list[str], hidden: str | None) -> set[str] | None:
    kids = syntax.children(node)
    if len(kids) != 2:
        return None
    column = _column(text, kids[0], tables, hidden)
    operation = kids[1]
    op_kind = syntax.kind(operation)
    if column is None:
        return None
    whole, _ = column
    if op_kind == "StringBinaryOperation":
        operator = syntax.span(text, syntax.children(operation)[0]).strip()
        allowed = _TEXT_OPERATORS if whole else _VALUE_OPERATORS
        values = [_literal(syntax.children(operation)[1])] if operator in allowed else [None]
    elif op_kind == "EqualsEqualityExpression" and syntax.tokens(operation) == ["=="]:
        values = [_literal(syntax.children(operation)[0])]
    elif op_kind == "ListEqualityExpression" and syntax.tokens(operation)[:1] == ["in"]:
        values = [_literal(item) for item in syntax.children(operation)]
    else:
        return None
    terms = set()
    for value in values:
        term = None if value is None else best_term(value, escaped=not whole)
        if term is None:
            return None
        terms.add(term)
    return terms or None


def _column(text: str, node: Any, tables: list[str], hidden: str | None) -> tuple[bool, str] | None:
    """(True, name) for a string or dynamic column itself, (False, name) for a value inside a
    dynamic column; None for anything else."""
    node = _collapse(node)
    path = syntax.kind(node) == "FunctionCallOrPathPathExpression"
    root = _collapse(syntax.children(node)[0]) if path else node
    if syntax.kind(root) not in _NAMES:
        return None
    name = syntax.name_text(root)
    types = {c.kql_type for t in tables for c in TABLES[t].columns if c.name == name}
    if name == hidden or not types:
        return None
    if path:
        if types != {"dynamic"} or any(syntax.kind(_collapse(c)) not in _PATH_STEPS
                                        for c in syntax.children(node)[1:]):
            return None
        return False, name
    return (True, name) if types <= {"string", "dynamic"} else None


def _literal(node: Any) -> str | None:
    node = _collapse(node)
    return syntax.string_value(node) if syntax.kind(node) == "StringLiteralExpression" else None


def best_term(value: str, escaped: bool = False) -> str | None:
    """The term of *value* the index is asked for (see the module doc): of the runs that qualify,
    the one with the most distinct characters (the least likely to be shared: an item id's
    counter part is mostly zeros), then the longest. *escaped*: the value sits JSON-escaped."""
    best = None
    for run in _RUN.finditer(value):
        term = run.group(0)
        if len(term) < MIN_TERM or not any(ch.isdigit() for ch in term) or term.startswith("0" * STOP_ZEROS):
            continue
        if not (_bounds(value, run.start() - 1, escaped) and _bounds(value, run.end(), escaped)):
            continue
        rank = (len(set(term.lower())), len(term))
        if best is None or rank > best[0]:
            best = (rank, term.lower())
    return best[1] if best else None


def _bounds(value: str, index: int, escaped: bool) -> bool:
    """Whether the character at *index* (outside the value: its end) ends a term for sure."""
    if index < 0 or index >= len(value):
        return True
    code = ord(value[index])
    return code < 128 and not value[index].isalnum() and (not escaped or 32 <= code < 127)


@contextmanager
def one_snapshot(con: duckdb.DuckDBPyConnection, lookup: Lookup | None) -> Iterator[None]:
    """The index probe and the query in one read transaction, so that both see the same rows
    (a row committed in between would be in the query's snapshot but not in the candidates)."""
    if lookup is None:
        yield
        return
    try:
        con.execute("BEGIN TRANSACTION")
    except duckdb.TransactionException:  # the caller's transaction holds both already
        yield
        return
    try:
        yield
    finally:
        try:
            con.execute("ROLLBACK")  # it only read
        except duckdb.Error:  # e.g. after an interrupt: the query's own error is the one to report
            pass


def narrowed(scope: Scope, con: duckdb.DuckDBPyConnection, lookup: Lookup | None,
             placeholders: tuple[tuple[int, int, str], ...]) -> Scope:
    """*scope* with each source table narrowed to the `_seq`s the index lists for the lookup's
    terms, written into the SQL as constants (a table with none reads nothing, and DuckDB drops
    it while planning), when the SQL reads exactly the lookup's tables (the translator may read a
    union twice) and the store keeps the index (a bare DuckDB file runs the query as it is). A
    table with more than MAX_CANDIDATES is read whole: the term is not one request's."""
    if lookup is None or {table for _, _, table in placeholders} != set(lookup.tables):
        return scope
    try:
        found = candidates(con, list(lookup.tables), list(lookup.terms))
    except duckdb.CatalogException:
        return scope
    if found is None:
        return scope
    narrowing = {}
    for table in lookup.tables:
        if table not in INDEXED:
            continue
        listed = found.seqs.get(table, [])
        if len(listed) <= MAX_CANDIDATES:
            narrowing[table] = _rows_of(listed, found)
    return Scope(scope.services, scope.window, narrowing)


def _rows_of(listed: list[int], found: Candidates) -> str:
    """The predicate on `_seq` of the candidate rows: those listed, and those the reader could
    not see the entries of (lookup_index.candidates)."""
    parts = [f'"{SEQ_COLUMN}" IN ({", ".join(str(int(s)) for s in listed)})'] if listed else []
    if found.unindexed_after is not None:
        unindexed = f'"{SEQ_COLUMN}" > {int(found.unindexed_after)}'
        if found.unindexed_through is not None:
            unindexed += f' AND "{SEQ_COLUMN}" <= {int(found.unindexed_through)}'
        parts.append(unindexed)
    if len(parts) > 1:
        return "((" + ") OR (".join(parts) + "))"  # one condition of those scope.conditions ANDs
    return parts[0] if parts else "FALSE"
