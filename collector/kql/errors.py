"""The one error a query can fail with, and the translation of every lower-level failure into it.

Users see these messages over HTTP, so each one names the problem and where it is in *their* text,
and none of them carries DuckDB's or the parser generator's wording: those describe the SQL we
generated, which the user never wrote, and would leak our internals.
"""

from __future__ import annotations

import re

import duckdb
import duckdb_kql

# Codes, as the query API reports them in `innererror.code`.
SYNTAX = "SyntaxError"
SEMANTIC = "SemanticError"
UNSUPPORTED = "UnsupportedError"
FORBIDDEN = "ForbiddenError"
TIMEOUT = "TimeoutError"
LIMIT = "LimitError"
EXECUTION = "ExecutionError"

LIMIT_MARKER = "kql-limit: "
"""Starts the message of an `error()` our SQL raises when a query reaches a limit of its budget
(generators.py): that message, and no other DuckDB text, is shown to the user."""


class KqlError(Exception):
    """A query that cannot be answered: what is wrong, and where (1-based line and column)."""

    def __init__(self, code: str, message: str, line: int | None = None, pos: int | None = None):
        self.code = code
        self.message = message
        self.line = line
        self.pos = pos
        super().__init__(message)

    def __str__(self) -> str:
        where = f" (line {self.line}, column {self.pos})" if self.line is not None else ""
        return self.message + where

    def at(self, text: str, needle: str | None) -> KqlError:
        """Locate this error at the first whole-word occurrence of *needle* in *text*."""
        if self.line is None and needle:
            self.line, self.pos = locate(text, needle)
        return self


def locate(text: str, needle: str) -> tuple[int | None, int | None]:
    """1-based (line, column) of *needle* as a whole word in *text*, or (None, None)."""
    match = re.search(r"(?<![\w$])" + re.escape(needle) + r"(?![\w])", text)
    if match is None:
        return None, None
    return position(text, match.start())


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


# --- from the translator --------------------------------------------------------------------

_UNSUPPORTED_KINDS = {"aggregate": "aggregation function", "function": "function", "source": "operator"}
_OPERATOR_NAMES = {
    "ProjectReorderOperator": "project-reorder",
    "SearchOperator": "search",
    "AsOperator": "as",
    "EvaluateOperator": "evaluate",
    "StringStarOperatorExpression": "'*' column wildcard",
    "ExternalDataExpression": "externaldata",
    "MakeSeriesOperator": "make-series",
    "SerializeOperator": "serialize",
    "ScanOperator": "scan",
    "FacetOperator": "facet",
    "ForkOperator": "fork",
    "PartitionOperator": "partition",
    "SampleOperator": "sample",
    "SampleDistinctOperator": "sample-distinct",
    "ReduceOperator": "reduce",
    "InvokeOperator": "invoke",
    "ConsumeOperator": "consume",
    "FindOperator": "find",
}


def _describe_construct(construct: str) -> str:
    kind, _, name = construct.partition(":")
    if kind == "let function":
        return f"unsupported operator: a let function returning a table ('{name}')"
    if name and kind in _UNSUPPORTED_KINDS:
        return f"unsupported {_UNSUPPORTED_KINDS[kind]} '{_OPERATOR_NAMES.get(name, name)}'"
    if kind in ("expression", "operator") and name:
        return f"unsupported expression '{_OPERATOR_NAMES.get(name, name)}'"
    readable = _OPERATOR_NAMES.get(construct, construct.removesuffix("Operator").lower())
    return f"unsupported operator '{readable}'"


def from_translator(exc: duckdb_kql.KqlError, text: str) -> KqlError:
    """Turn a duckdb-kql exception into ours, keeping its position when it has one."""
    if isinstance(exc, duckdb_kql.KqlSyntaxError):
        return from_syntax(exc, text)
    if isinstance(exc, duckdb_kql.KqlUnsupportedError):
        message = _describe_construct(exc.construct)
        if exc.span is not None:
            return KqlError(UNSUPPORTED, message, exc.span.line, exc.span.column + 1)
        needle = exc.construct.partition(":")[2] or None
        return KqlError(UNSUPPORTED, message).at(text, needle)
    if isinstance(exc, duckdb_kql.KqlSchemaError):
        return _from_schema(exc, text)
    return KqlError(SEMANTIC, "the query could not be translated")


def _from_schema(exc: duckdb_kql.KqlSchemaError, text: str) -> KqlError:
    name = str(exc.name).rpartition(".")[2]
    hint = exc.hint or ""
    if "unknown table" in hint:
        return KqlError(SEMANTIC, f"unknown table '{name}'").at(text, name)
    if "column" in hint:
        return KqlError(SEMANTIC, f"unknown column '{name}'").at(text, name)
    if "parameter" in hint:
        return KqlError(SEMANTIC, f"query parameter '{name}' has no value").at(text, name)
    return KqlError(SEMANTIC, f"cannot resolve '{name}'").at(text, name)


_TOKEN_ERROR = re.compile(r"token recognition error at: '(.*)'", re.S)
_MISMATCH = re.compile(r"(?:mismatched|extraneous) input '(.*?)'", re.S)
_NO_VIABLE = re.compile(r"no viable alternative at input '(.*)'", re.S)
_MISSING = re.compile(r"missing '?(.*?)'? at '(.*)'", re.S)


def from_syntax(exc: duckdb_kql.KqlSyntaxError, text: str) -> KqlError:
    """Name the first syntax problem in words a KQL user recognises."""
    if not exc.diagnostics:
        return KqlError(SYNTAX, "the query could not be parsed")
    first = exc.diagnostics[0]
    line, pos = first.span.line, first.span.column + 1
    msg = first.message
    if m := _TOKEN_ERROR.search(msg):
        bad = m.group(1)
        if bad[:1] in ("'", '"') or bad[:2] in ("@'", '@"', "h'", 'h"'):
            return KqlError(SYNTAX, "unterminated string literal", line, pos)
        return KqlError(SYNTAX, f"unexpected character {_clip(bad)!r}", line, pos)
    if any(d.message.startswith("token recognition error at: '\"") or
           d.message.startswith("token recognition error at: '''") for d in exc.diagnostics):
        d = next(d for d in exc.diagnostics if d.message.startswith("token recognition"))
        return KqlError(SYNTAX, "unterminated string literal", d.span.line, d.span.column + 1)
    if m := _MISMATCH.search(msg):
        token = m.group(1)
        if token == "<EOF>":
            return KqlError(SYNTAX, "the query ends too early", line, pos)
        return KqlError(SYNTAX, f"syntax error: unexpected {_clip(token)!r}", line, pos)
    if m := _MISSING.search(msg):
        return KqlError(SYNTAX, f"syntax error: expected {_clip(m.group(1))!r} before "
                        f"{_clip(m.group(2))!r}", line, pos)
    if m := _NO_VIABLE.search(msg):
        words = m.group(1).split()
        near = words[-1] if words else m.group(1)
        return KqlError(SYNTAX, f"syntax error near {_clip(near)!r}", line, pos)
    return KqlError(SYNTAX, "syntax error", line, pos)


def _clip(token: str, limit: int = 40) -> str:
    return token if len(token) <= limit else token[:limit] + "…"


# --- from DuckDB, at execution ----------------------------------------------------------------

_COLUMN_NOT_FOUND = re.compile(
    r'Referenced column "([^"]+)" not found'
    r'|Column "([^"]+)" referenced that exists in the SELECT clause'
    r'|does not have a column named "([^"]+)"'
)
_NO_FUNCTION = re.compile(r"No function matches the given name and argument types '([A-Za-z_0-9]+)\(")
_COMPARE = re.compile(r"Cannot compare values of type (\w+) and (?:type )?(\w+)")
_TYPE_NAMES = {"VARCHAR": "string", "BIGINT": "long", "INTEGER": "int", "DOUBLE": "real",
               "BOOLEAN": "bool", "TIMESTAMP": "datetime", "INTERVAL": "timespan", "JSON": "dynamic"}


def from_duckdb(exc: duckdb.Error, text: str) -> KqlError:
    """Map a DuckDB failure to a KQL-level explanation; DuckDB's own text never reaches the user."""
    raw = str(exc)
    if isinstance(exc, duckdb.InterruptException):
        return KqlError(TIMEOUT, "the query was cancelled: it ran longer than the time limit")
    if isinstance(exc, duckdb.OutOfMemoryException):
        return KqlError(LIMIT, "the query needs more memory than it is allowed")
    if isinstance(exc, duckdb.InvalidInputException) and LIMIT_MARKER in raw:
        return KqlError(LIMIT, raw.partition(LIMIT_MARKER)[2].strip())
    if m := _COLUMN_NOT_FOUND.search(raw):
        name = next(g for g in m.groups() if g)
        return KqlError(SEMANTIC, f"unknown column '{name}'").at(text, name)
    if m := _NO_FUNCTION.search(raw):
        fn = m.group(1)
        return KqlError(SEMANTIC, f"wrong argument type in a call to '{fn}'").at(text, fn)
    if m := _COMPARE.search(raw):
        a, b = (_TYPE_NAMES.get(t, t.lower()) for t in m.groups())
        return KqlError(SEMANTIC, f"wrong argument type: cannot compare {a} with {b}")
    if isinstance(exc, duckdb.BinderException):
        return KqlError(SEMANTIC, "wrong argument type or unknown name in the query")
    if isinstance(exc, (duckdb.ConversionException, duckdb.OutOfRangeException)):
        return KqlError(SEMANTIC, "a value could not be converted to the type the query needs")
    if isinstance(exc, duckdb.InvalidInputException) and "regex" in raw.lower():
        return KqlError(SEMANTIC, "invalid regular expression")
    if isinstance(exc, duckdb.InvalidInputException):
        return KqlError(SEMANTIC, "invalid argument value in the query")
    return KqlError(EXECUTION, "the query failed while running")
