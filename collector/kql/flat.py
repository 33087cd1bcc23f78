"""Scoping a filter over one table without a subquery: the small query's bind time.

scope.apply puts each table in as a subquery (`(SELECT <public columns> FROM "traces" WHERE
<scope>) AS _s0`), under the translator's own `SELECT * FROM ... AS _s0 WHERE P`, often under a
`SELECT * FROM (...) AS _s1 LIMIT n`. DuckDB's optimizer merges all of that into one filtered
scan, so the rows are the same, but binding the layers (31 columns each) was ~0.3 ms of a 3 ms
query. When the translator's SQL reads a table as exactly

    SELECT * FROM "<SCOPE>"."T" AS _sN WHERE P      (P followed by `)`, the end, ORDER, LIMIT)

it is written here as `SELECT <public columns> FROM "T" AS _sN WHERE <scope> AND (P)`, which reads
the same rows of T with the same columns. Why that is safe and exact:

- Columns: the select list is the public columns, as the subquery's. P could still name a column
  that the subquery hid (`_service`, `_seq`) or DuckDB's `rowid`: the translator passes unknown
  names through, where the subquery form answered a binder error. Any SQL that mentions one of
  them anywhere is left to scope.apply. P holds no `SELECT` (a subquery could rebind names) and
  no `*` (a star could expand the hidden columns), or the table is left to scope.apply too.
- Rows: `<scope> AND (P)` keeps the rows the subquery kept that P keeps; a WHERE drops a NULL as
  it drops FALSE, so what P answers for a row of another service was never seen before either.
- `typeof(c) = 'JSON'` in P, with c a column of T (P has no subquery, so c is T's), is decided
  here by T's declared type: the translator's type dispatch `CASE WHEN typeof(c) = 'JSON' THEN A
  ELSE B END` becomes A or B, which DuckDB would otherwise fold on every run.
- A whole predicate `coalesce(X, FALSE)` is X under a WHERE (NULL and FALSE both drop the row).
- A whole query `SELECT * FROM (F) AS _sM [LIMIT n]` whose F is such a filter is `F [LIMIT n]`.

The plan is made once per SQL text (cached); each query only fills in its scope.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import duckdb

from collector.store.schema import INTERNAL_COLUMNS, TABLES

from . import scope as scoping

_HIDDEN = frozenset(name.lower() for name in (*INTERNAL_COLUMNS, "rowid"))
_ENDS = frozenset({"ORDER", "LIMIT", "OFFSET"})
_ANYWHERE = frozenset({"SELECT", "*"})
_AT_TOP = frozenset({",", "GROUP", "HAVING", "QUALIFY", "WINDOW", "UNION", "EXCEPT", "INTERSECT", "JOIN"})
_TYPE_TEST = ["CASE", "WHEN", "typeof", "(", None, ")", "=", "'JSON'", "THEN"]

Slot = tuple[str, str]
"""("source", table): the scoped subquery; ("table", table): the bare table; ("where", table):
the scope's conditions on it, each followed by AND."""


def apply(sql: str, scope: scoping.Scope, catalog: tuple[str, ...],
          spans: tuple[tuple[int, int, str], ...]) -> str:
    """*sql* with every placeholder table scoped (as scope.apply, flat where the module doc says)."""
    out = []
    for part in plan(sql, spans):
        if isinstance(part, str):
            out.append(part)
        elif part[0] == "source":
            out.append(scoping.source_sql(part[1], scope, catalog))
        elif part[0] == "table":
            out.append(scoping.table_sql(part[1], catalog))
        else:
            out.extend(f"{condition} AND " for condition in scoping.conditions(part[1], scope))
    return "".join(out)


@lru_cache(maxsize=512)
def plan(sql: str, spans: tuple[tuple[int, int, str], ...]) -> tuple[str | Slot, ...]:
    """*sql* as text and slots for the scope (see apply)."""
    return _Planner(sql, spans).plan() if spans else (sql,)


class _Planner:
    def __init__(self, sql: str, spans: tuple[tuple[int, int, str], ...]):
        tokens = duckdb.tokenize(sql)
        self.sql = sql
        self.spans = spans
        self.starts = [t[0] for t in tokens] + [len(sql)]
        self.texts = [sql[self.starts[i]:self.starts[i + 1]].strip() for i in range(len(tokens))]
        self.strings = {i for i, t in enumerate(tokens) if t[1] == duckdb.token_type.string_const}
        self.parts: list[str | Slot] = []

    def plan(self) -> tuple[str | Slot, ...]:
        at = {self.starts.index(start) if start in self.starts else -1: (table, end)
              for start, end, table in self.spans}
        if -1 in at or any(self._names_hidden(i) for i in range(len(self.texts))):
            return _plain(self.sql, self.spans)
        filters = {k: end for k in at if (end := self._filter_end(k)) is not None}
        first, last, tail = self._unwrapped(filters)
        self._render(first, last, at, filters)
        self.parts.append(tail)
        return _merged(self.parts)

    def _names_hidden(self, i: int) -> bool:
        text = self.texts[i]
        if i in self.strings:
            return False
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1].replace('""', '"')
        return text.lower() in _HIDDEN

    def _upper(self, i: int) -> str:
        return self.texts[i].upper() if 0 <= i < len(self.texts) and i not in self.strings else ""

    def _filter_end(self, k: int) -> int | None:
        """The token ending P when the placeholder at token *k* is read as the module doc's filter."""
        texts = self.texts
        if k < 3 or [self._upper(i) for i in range(k - 3, k)] != ["SELECT", "*", "FROM"]:
            return None
        if k > 3 and texts[k - 4] != "(":
            return None
        if self._upper(k + 3) != "AS" or not texts[k + 4].startswith("_s") or self._upper(k + 5) != "WHERE":
            return None
        depth = 0
        for i in range(k + 6, len(texts)):
            word = self._upper(i)
            if word in _ANYWHERE or (depth == 0 and word in _AT_TOP):
                return None
            if word == "(":
                depth += 1
            elif word == ")":
                depth -= 1
                if depth < 0:
                    return i if i > k + 6 else None
            elif depth == 0 and word in _ENDS:
                return i if i > k + 6 else None
        return len(texts) if len(texts) > k + 6 else None

    def _unwrapped(self, filters: dict[int, int]) -> tuple[int, int, str]:
        """The token range to render and the text after it: the whole SQL, or the inner filter of
        `SELECT * FROM (F) AS _sM [LIMIT n]`."""
        texts, n = self.texts, len(self.texts)
        whole = (0, n, "")
        if n < 9 or [self._upper(i) for i in range(4)] != ["SELECT", "*", "FROM", "("]:
            return whole
        k = 7  # SELECT * FROM ( SELECT * FROM <placeholder>
        close = filters.get(k)
        if close is None or texts[close] != ")" or self._upper(close + 1) != "AS" \
                or not texts[close + 2].startswith("_s"):
            return whole
        rest = texts[close + 3:]
        if rest and not (len(rest) == 2 and rest[0].upper() == "LIMIT" and rest[1].isdigit()):
            return whole
        return 4, close, (" LIMIT " + rest[1]) if rest else ""

    def _render(self, first: int, last: int, at: dict[int, tuple[str, int]], filters: dict[int, int]) -> None:
        cursor = self.starts[first]
        for k in sorted(i for i in at if first <= i < last):
            table, end = at[k]
            if k in filters:
                select = k - 3
                self.parts += [self.sql[cursor:self.starts[select]],
                               f"SELECT {scoping.public_columns(table)} FROM ", ("table", table),
                               f" AS {self.texts[k + 4]} WHERE ", ("where", table),
                               "(" + _Predicate(self, table).whole(k + 6, filters[k]) + ")"]
                cursor = self.starts[filters[k]] if filters[k] < len(self.texts) else len(self.sql)
                if filters[k] < len(self.texts):
                    self.parts.append(" ")
            else:
                self.parts += [self.sql[cursor:self.starts[k]], ("source", table)]
                cursor = end
        self.parts.append(self.sql[cursor:self.starts[last]] if last < len(self.texts) else self.sql[cursor:])


class _Predicate:
    """P's text with the type tests on T's columns decided (module doc)."""

    def __init__(self, planner: _Planner, table: str):
        self.p = planner
        self.types = {c.name.lower(): c.sql_type for c in TABLES[table].columns}

    def whole(self, lo: int, hi: int) -> str:
        """The text of tokens [lo, hi) as a whole WHERE predicate."""
        json_columns = []
        while True:
            inner = self._parenthesized(lo, hi) or self._coalesce_false(lo, hi)
            if inner is None and (inner := self._type_branch(lo, hi)) is not None:
                json_columns.append(self.p.texts[lo + 4])
            if inner is None:
                text = self.part(lo, hi)
                for column in json_columns:
                    text = self._json_as_text(text, column)
                return text
            lo, hi = inner

    def part(self, lo: int, hi: int) -> str:
        """The text of tokens [lo, hi), each decidable type test replaced by its branch."""
        out, cursor, i = [], self.p.starts[lo], lo
        while i < hi:
            branch = self._type_test(i)
            if branch is None:
                i += 1
                continue
            chosen, end = branch
            text = self._json_as_text(self.part(*chosen), self.p.texts[i + 4])
            out += [self.p.sql[cursor:self.p.starts[i]], "(", text, ")"]
            cursor = self.p.starts[end + 1]
            i = end + 1
        out.append(self.p.sql[cursor:self.p.starts[hi]].rstrip())
        return "".join(out)

    def _json_as_text(self, branch: str, column: str) -> str:
        """*branch* (the JSON branch of a type test on *column*, declared JSON) with the casts of the
        fast `contains` (fastpath.py) to VARCHAR left implicit: `contains()` and `ILIKE` take VARCHAR,
        and JSON is VARCHAR's alias, so DuckDB casts the same text; spelled out, each binds a cast
        (a tenth of the small query's planning). Only in fastpath's whole form, whose `'\\'` cannot
        be inside a string literal; elsewhere (`=`, `<>`) a JSON operand would make the other
        side JSON instead."""
        if self.types[scoping.unquote(column).lower()] != "JSON":
            return branch
        cast = f"CAST({column} AS VARCHAR)"
        for null_test in ("", f" AND {cast} <> 'null'"):  # fastpath's two forms, whole
            branch = branch.replace(f"CASE WHEN NOT contains({cast}, '\\'){null_test} THEN {cast} ILIKE ",
                                    f"CASE WHEN NOT contains({column}, '\\'){null_test} THEN {column} ILIKE ")
        return branch

    def _parenthesized(self, lo: int, hi: int) -> tuple[int, int] | None:
        if self.p.texts[lo] == "(" and self._closing(lo) == hi - 1:
            return lo + 1, hi - 1
        return None

    def _coalesce_false(self, lo: int, hi: int) -> tuple[int, int] | None:
        texts = self.p.texts
        if texts[lo].lower() != "coalesce" or texts[lo + 1] != "(" or self._closing(lo + 1) != hi - 1:
            return None
        if texts[hi - 2].upper() != "FALSE" or texts[hi - 3] != ",":
            return None
        if self._top_level(lo + 2, hi - 3, lambda i: texts[i] == ","):
            return None
        return lo + 2, hi - 3

    def _type_branch(self, lo: int, hi: int) -> tuple[int, int] | None:
        branch = self._type_test(lo)
        return branch[0] if branch is not None and branch[1] == hi - 1 else None

    def _type_test(self, i: int) -> tuple[tuple[int, int], int] | None:
        """For `CASE WHEN typeof(c) = 'JSON' THEN A ELSE B END` at token *i* with c a column of T:
        (A's or B's token range, the index of END)."""
        texts = self.p.texts
        if i + len(_TYPE_TEST) > len(texts):
            return None
        for j, expected in enumerate(_TYPE_TEST):
            text = texts[i + j]
            if expected is not None and (text if j in (2, 7) else text.upper()) != expected:
                return None
        column = scoping.unquote(texts[i + 4]).lower()
        if column not in self.types or (i + 4) in self.p.strings:
            return None
        then = i + len(_TYPE_TEST)
        otherwise = self._top_level(then, len(texts), lambda k: self.p._upper(k) == "ELSE")
        if otherwise is None:
            return None
        end = self._top_level(otherwise + 1, len(texts), lambda k: self.p._upper(k) == "END")
        if end is None:
            return None
        return ((then, otherwise) if self.types[column] == "JSON" else (otherwise + 1, end)), end

    def _closing(self, open_at: int) -> int | None:
        return self._top_level(open_at + 1, len(self.p.texts), lambda k: self.p.texts[k] == ")")

    def _top_level(self, lo: int, hi: int, wanted: Callable[[int], bool]) -> int | None:
        """The first token in [lo, hi) at this level (outside parentheses and nested CASEs) that
        is *wanted*; None if the level closes first."""
        depth = 0
        for k in range(lo, hi):
            word = self.p._upper(k)
            if depth == 0 and wanted(k):
                return k
            if word in ("(", "CASE"):
                depth += 1
            elif word in (")", "END"):
                depth -= 1
                if depth < 0:
                    return None
        return None


def _plain(sql: str, spans: tuple[tuple[int, int, str], ...]) -> tuple[str | Slot, ...]:
    parts: list[str | Slot] = []
    cursor = 0
    for start, end, table in spans:
        parts += [sql[cursor:start], ("source", table)]
        cursor = end
    parts.append(sql[cursor:])
    return _merged(parts)


def _merged(parts: list[str | Slot]) -> tuple[str | Slot, ...]:
    out: list[str | Slot] = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        elif part != "":
            out.append(part)
    return tuple(out)
