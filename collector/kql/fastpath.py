"""Speed rewrites of the translator's SQL: each replaces one exact shape it emits with an
equivalent that DuckDB runs faster. Applied before the SQL is checked and scoped, so the checks
see the final text. Equivalence is tested in tests/kql/test_fastpath.py (both forms, same rows).

- `contains` on a dynamic column: the translator unwraps the JSON (`col ->> '$'`, a parse per row)
  before ILIKE. For a needle of word characters, `.` and `-`, a match can only fall inside one JSON
  token, so the stored JSON text answers the same, except where the text holds an escape
  sequence (`\\n` would match `n`) or is JSON `null` (no text at all): those keep the exact path.
- `WHERE coalesce((p), FALSE)`: a WHERE drops a NULL row as it drops a FALSE one, so when the
  coalesce is the whole predicate it is `WHERE (p)`, which DuckDB can push into the scan as a
  plain comparison (twice as fast on `success == false`).
- `bin(datetime, span)`: the translator floors epoch seconds as doubles and converts back through
  TIMESTAMPTZ; `time_bucket` with the Unix epoch as origin is the same floor in integer
  microseconds, and several times faster.
"""

from __future__ import annotations

import re

import duckdb

_IDENT = r'"(?:[^"]|"")+"'
_SAFE_NEEDLE = r"'[A-Za-z0-9_.\-]+'"
_LIKE_PATTERN = (
    r"'%' \|\| replace\(replace\(replace\((?P<needle>" + _SAFE_NEEDLE + r"), '\\', '\\\\'\), "
    r"'%', '\\%'\), '_', '\\_'\) \|\| '%' ESCAPE '\\'"
)
_CONTAINS_JSON = re.compile(
    r"coalesce\((?P<col>" + _IDENT + r") ->> '\$', ''\) ILIKE (?P<pattern>" + _LIKE_PATTERN + r")"
)
_BIN_DATETIME = re.compile(
    r"to_timestamp\(floor\(epoch\((?P<col>" + _IDENT + r")\) / epoch\(INTERVAL '(?P<span>[1-9][0-9]*(?:ms|s|m|h|d))'\)\)"
    r" \* epoch\(INTERVAL '(?P=span)'\)\) AT TIME ZONE 'UTC'"
)


def _contains_json(match: re.Match) -> str:
    col, pattern = match.group("col"), match.group("pattern")
    text = f"CAST({col} AS VARCHAR)"
    return (f"(CASE WHEN NOT contains({text}, '\\') AND {text} <> 'null' THEN {text} ILIKE {pattern} "
            f"ELSE coalesce({col} ->> '$', '') ILIKE {pattern} END)")


def _bin_datetime(match: re.Match) -> str:
    return (f"time_bucket(INTERVAL '{match.group('span')}', {match.group('col')}, "
            "TIMESTAMP '1970-01-01 00:00:00')")


# What may follow a WHERE predicate that is the whole predicate.
_AFTER_PREDICATE = {")", "GROUP", "ORDER", "LIMIT", "QUALIFY", "HAVING", "WINDOW", "UNION", ""}


def _where_coalesce(sql: str) -> str:
    """`WHERE coalesce((p), FALSE)` -> `WHERE (p)`, found with DuckDB's tokenizer (see above)."""
    tokens = duckdb.tokenize(sql)
    starts = [t[0] for t in tokens] + [len(sql)]
    texts = [sql[starts[i]:starts[i + 1]].strip() for i in range(len(tokens))] + [""]
    edits = []
    for i in range(len(tokens) - 3):
        if texts[i].upper() != "WHERE" or texts[i + 1].lower() != "coalesce" or texts[i + 2] != "(":
            continue
        depth, comma, close = 0, None, None
        for j in range(i + 2, len(tokens)):
            if texts[j] == "(":
                depth += 1
            elif texts[j] == ")":
                depth -= 1
                if depth == 0:
                    close = j
                    break
            elif texts[j] == "," and depth == 1:
                comma = j if comma is None else -1
        if close is None or comma in (None, -1) or close != comma + 2 or texts[comma + 1].upper() != "FALSE":
            continue
        if texts[close + 1].upper() not in _AFTER_PREDICATE:
            continue
        edits.append((starts[i + 1], starts[close + 1], sql[starts[i + 3]:starts[comma]].strip()))
    for start, end, predicate in reversed(edits):
        sql = sql[:start] + predicate + " " + sql[end:]
    return sql


def optimize(sql: str) -> str:
    """The translated *sql* with the shapes above replaced."""
    sql = _CONTAINS_JSON.sub(_contains_json, sql)
    sql = _BIN_DATETIME.sub(_bin_datetime, sql)
    return _where_coalesce(sql)
