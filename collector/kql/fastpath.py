"""Speed rewrites of the translator's SQL: each replaces one exact shape it emits with an
equivalent that DuckDB runs faster. Applied before the SQL is checked and scoped, so the checks
see the final text. Equivalence is tested in tests/kql/test_fastpath.py (both forms, same rows).

- `contains` on a dynamic column: the translator unwraps the JSON (`col ->> '$'`, a parse per row)
  before ILIKE. For a needle of word characters, `.` and `-`, a match can only fall inside one JSON
  token, so the stored JSON text answers the same, except where the text holds an escape
  sequence (`\\n` would match `n`) or is JSON `null` (no text at all): those keep the exact path
  (the `null` test only for a needle that is part of "null": no other matches the text `null`).
- `WHERE coalesce((p), FALSE)`: a WHERE drops a NULL row as it drops a FALSE one, so when the
  coalesce is the whole predicate it is `WHERE (p)`, which DuckDB can push into the scan as a
  plain comparison (twice as fast on `success == false`).
- `bin(datetime, span)`: the translator floors epoch seconds as doubles and converts back through
  TIMESTAMPTZ; `time_bucket` with the Unix epoch as origin is the same floor in integer
  microseconds, and several times faster.
- The LIKE pattern the translator builds at run time from a literal needle
  (`'%' || replace(replace(replace('x', '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'`) is
  computed here once, the same escaping done in Python: one constant instead of an expression
  tree DuckDB binds and folds on every run.
- The translator's linear chain of CTEs (`WITH _s0 AS (...), _s1 AS (SELECT * FROM _s0 ...)
  SELECT * FROM _s1`) becomes nested subqueries: each CTE read exactly once, from a FROM or JOIN,
  is written in place of that reference under its own name as alias, so every qualified column
  still resolves. Binding a CTE list costs DuckDB about a millisecond more than the same subqueries,
  which is most of a small query. Only a query with a single top-level WITH is touched (a nested
  WITH may reuse the names), and a CTE read twice stays a CTE.
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


_RUNTIME_LIKE = re.compile(
    r"'%' \|\| replace\(replace\(replace\((?P<needle>'(?:[^']|'')*'), '\\', '\\\\'\), "
    r"'%', '\\%'\), '_', '\\_'\) \|\| '%'"
)


def _fold_like(match: re.Match) -> str:
    needle = match.group("needle")[1:-1].replace("''", "'")
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "'" + ("%" + escaped + "%").replace("'", "''") + "'"


def _contains_json(match: re.Match) -> str:
    col, pattern = match.group("col"), match.group("pattern")
    text = f"CAST({col} AS VARCHAR)"
    # JSON null's text can only match a needle that is part of "null" (the rest never test it).
    not_null = f" AND {text} <> 'null'" if match.group("needle")[1:-1].lower() in "null" else ""
    return (f"(CASE WHEN NOT contains({text}, '\\'){not_null} THEN {text} ILIKE {pattern} "
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


# What may follow a table reference we inline (an alias of its own is `AS name`, kept as is).
_AFTER_SOURCE = {"AS", "WHERE", "GROUP", "ORDER", "LIMIT", "OFFSET", "QUALIFY", "HAVING", "WINDOW",
                 "UNION", "EXCEPT", "INTERSECT", ")", ",", "INNER", "LEFT", "RIGHT", "FULL",
                 "CROSS", "JOIN", "ANTI", "SEMI", "NATURAL", "ASOF", "POSITIONAL"}


def _flatten_ctes(sql: str) -> str:
    """Inline the CTEs read once (see the module doc); anything unexpected leaves *sql* as it is."""
    tokens = duckdb.tokenize(sql)
    starts = [t[0] for t in tokens] + [len(sql)]
    texts = [sql[starts[i]:starts[i + 1]].strip() for i in range(len(tokens))]
    if not texts or texts[0].upper() != "WITH" or sum(t.upper() == "WITH" for t in texts) != 1:
        return sql
    ctes: dict[str, tuple[int, int]] = {}  # name -> token range of its body
    order: list[str] = []
    i = 1
    while True:
        if i + 2 >= len(texts) or texts[i + 1].upper() != "AS" or texts[i + 2] != "(":
            return sql
        name, depth, j = texts[i], 0, i + 2
        for j in range(i + 2, len(texts)):
            depth += (texts[j] == "(") - (texts[j] == ")")
            if depth == 0:
                break
        if depth or name in ctes:
            return sql
        ctes[name] = (i + 3, j)
        order.append(name)
        i = j + 1
        if i < len(texts) and texts[i] == ",":
            i += 1
            continue
        break
    final = i
    uses = {name: [k for k in range(len(texts)) if texts[k] == name and not
                   (k + 1 < len(texts) and texts[k + 1].upper() == "AS" and k + 2 < len(texts)
                    and texts[k + 2] == "(")] for name in order}
    inline = {name for name, at in uses.items()
              if len(at) == 1 and texts[at[0] - 1].upper() in ("FROM", "JOIN")
              and (at[0] + 1 == len(texts) or texts[at[0] + 1].upper() in _AFTER_SOURCE)}
    if not inline:
        return sql

    def render(first: int, last: int) -> str:
        """Tokens [first, last) as text, each inlined CTE reference replaced by its body."""
        if last - first == 4 and texts[first + 3] in inline and \
                [t.upper() for t in texts[first:first + 3]] == ["SELECT", "*", "FROM"]:
            return render(*ctes[texts[first + 3]])  # `SELECT * FROM (B) AS _sN` is B
        out, cursor = [], starts[first]
        for k in range(first, last):
            if texts[k] in inline:
                lo, hi = ctes[texts[k]]
                if hi - lo == 6 and [t.upper() for t in texts[lo:lo + 3]] == ["SELECT", "*", "FROM"] \
                        and texts[lo + 4] == ".":
                    body = "".join(texts[lo + 3:hi])  # SELECT * FROM "schema"."table"
                else:
                    body = f"({render(lo, hi)})"
                aliased = k + 1 < len(texts) and texts[k + 1].upper() == "AS"
                out.append(sql[cursor:starts[k]])
                out.append(body if aliased else f"{body} AS {texts[k]}")
                cursor = starts[k] + len(texts[k])
        out.append(sql[cursor:starts[last] if last < len(tokens) else len(sql)])
        return "".join(out).strip()

    kept = [f"{name} AS ({render(*ctes[name])})" for name in order if name not in inline]
    body = render(final, len(tokens))
    return ("WITH " + ",\n     ".join(kept) + "\n" + body) if kept else body


def optimize(sql: str) -> str:
    """The translated *sql* with the shapes above replaced."""
    sql = _CONTAINS_JSON.sub(_contains_json, sql)
    sql = _BIN_DATETIME.sub(_bin_datetime, sql)
    sql = _RUNTIME_LIKE.sub(_fold_like, sql)
    return _flatten_ctes(_where_coalesce(sql))
