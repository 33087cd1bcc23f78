"""The simple conditions a live stream is filtered by: `duration > 500`, `resultCode == "500"`,
`success == false and name contains "score"`.

A condition is clauses joined by `and`; a clause is a column of the telemetry tables, an operator
(`==`, `!=`, `>`, `>=`, `<`, `<=`, `contains`) and a literal: a number, a quoted string, `true` or
`false`. It becomes Arrow compute calls on each accepted batch's columns, never text pasted into
anything. A table the condition's columns are not all in has no match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa
import pyarrow.compute as pc

from collector.store.schema import TABLES

LIVE_TABLES = ("requests", "dependencies", "exceptions", "traces")
MAX_LENGTH = 500
_KINDS = {column.name: column.kql_type for name in LIVE_TABLES for column in TABLES[name].columns}
_CLAUSE = re.compile(
    r'\s*(?P<column>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>==|!=|>=|<=|>|<|\bcontains\b)\s*'
    r'(?P<value>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|-?\d+(?:\.\d+)?|true|false)\s*$',
    re.IGNORECASE)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_NUMERIC = ("real", "int", "long")


class ConditionError(ValueError):
    """The condition cannot be read; the message says which part and why."""


@dataclass(frozen=True)
class Clause:
    column: str
    op: str
    value: object

    def mask(self, table: pa.Table) -> pa.ChunkedArray:
        column = table.column(self.column)
        if self.op == "contains":
            return pc.match_substring(column, str(self.value), ignore_case=True)
        return _COMPARE[self.op](column, pa.scalar(self.value))


_COMPARE = {"==": pc.equal, "!=": pc.not_equal, ">": pc.greater, ">=": pc.greater_equal, "<": pc.less,
            "<=": pc.less_equal}


@dataclass(frozen=True)
class Condition:
    text: str
    clauses: tuple[Clause, ...]

    @cached_property
    def columns(self) -> frozenset[str]:
        return frozenset(clause.column for clause in self.clauses)

    def mask(self, table: pa.Table) -> pa.ChunkedArray:
        """Which rows match (a null compares as no match). Compute kernels on the columns, not an
        Acero plan: a plan costs milliseconds to set up, and this runs for every batch."""
        mask = self.clauses[0].mask(table)
        for clause in self.clauses[1:]:
            mask = pc.and_kleene(mask, clause.mask(table))
        return pc.fill_null(mask, False)


FAILURES = Condition("failures", (Clause("success", "==", False),))
"""What a stream without a condition samples: failed requests and dependencies (exceptions are
always sampled)."""


def parse(text: str) -> Condition:
    """The condition `text` says; ConditionError naming the clause that is wrong."""
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"condition: at most {MAX_LENGTH} characters")
    clauses = []
    for clause in _AND.split(text.strip()):
        found = _CLAUSE.match(clause)
        if not found:
            raise ConditionError(f"condition: cannot read {clause.strip()!r}; write COLUMN OP VALUE, e.g. "
                                 "duration > 500 or resultCode == \"500\" (OP one of == != > >= < <= contains)")
        clauses.append(_clause(found["column"], found["op"].lower(), found["value"]))
    return Condition(text.strip(), tuple(clauses))


def _clause(column: str, op: str, raw: str) -> Clause:
    kind = _KINDS.get(column)
    if kind is None or kind == "dynamic":
        raise ConditionError(f"condition: unknown column {column!r}; use one of "
                             f"{', '.join(sorted(c for c, k in _KINDS.items() if k != 'dynamic'))}")
    value = _literal(column, kind, raw)
    if op == "contains" and kind != "string":
        raise ConditionError(f"condition: contains needs a string column, {column} is {kind}")
    if kind in ("bool", "string") and op not in ("==", "!=", "contains"):
        raise ConditionError(f"condition: {column} is {kind}: compare it with == or !=")
    return Clause(column, op, value)


def _literal(column: str, kind: str, raw: str) -> object:
    quoted = raw[:1] in ("'", '"')
    if kind in _NUMERIC:
        if quoted or raw.lower() in ("true", "false"):
            raise ConditionError(f"condition: {column} is a number, not {raw}")
        return float(raw)
    if kind == "bool":
        if raw.lower() not in ("true", "false"):
            raise ConditionError(f"condition: {column} is true or false, not {raw}")
        return raw.lower() == "true"
    if kind == "string":
        return re.sub(r"\\(.)", r"\1", raw[1:-1]) if quoted else raw
    raise ConditionError(f"condition: {column} ({kind}) cannot be compared")
