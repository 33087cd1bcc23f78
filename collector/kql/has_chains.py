"""`search "term"` as one regular expression per term instead of one per column.

`search` becomes `where (c1 has "v" or c2 has "v" or ...)` over every string and dynamic column of
every table it reads: about 130 `regexp_matches` calls over twelve tables, each a Unicode
case-insensitive pattern that DuckDB compiles while planning. Planning that SQL took ~5 s even
over empty tables (profiled: the rows are not the cost; one table's 30 patterns took 175 ms).

The translator writes each `c has "v"` as

    CASE WHEN typeof(c) = 'JSON' THEN coalesce(regexp_matches(coalesce(c ->> '$', ''), P), FALSE)
         ELSE coalesce(regexp_matches(c, P), FALSE) END

with P = `'(?i)(?:^|[^\\pL\\pN])' || regexp_escape('v') || '(?:$|[^\\pL\\pN])'` (no `(?i)` for
`has_cs`). A parenthesized `(A OR B)` of two such terms with the same P becomes the same match over
the columns' texts joined by a separator character that `v` does not hold:

    coalesce(regexp_matches(concat_ws(sep, text(c1), text(c2), ...), P), FALSE)

Equal, because a match of P in the joined text cannot cross a separator (v does not hold it, and
the boundary classes take one character), so it lies in one column's text, where the separator
before or after it stands for `^` or `$`; and every match in a column is one in the joined text.
A NULL column (no match alone) is left out by concat_ws; a NULL JSON value is '' as before. An
empty v is left alone (it matches an empty column but not a NULL one). Tested equal to the
translator's form in tests/kql/test_request_lookup.py.
"""

from __future__ import annotations

import re

_IDENT = r'"(?:[^"]|"")+"'
_NEEDLE = r"'(?:[^']|'')+'"
_PATTERN = (r"'(?:\(\?i\))?\(\?:\^\|\[\^\\pL\\pN\]\)' \|\| regexp_escape\(" + _NEEDLE
            + r"\) \|\| '\(\?:\$\|\[\^\\pL\\pN\]\)'")
_TERM = re.compile(
    r"CASE WHEN typeof\((?P<col>" + _IDENT + r")\) = 'JSON' THEN coalesce\(regexp_matches\(coalesce\((?P=col) ->> '\$', ''\), "
    r"(?P<pattern>" + _PATTERN + r")\), FALSE\) ELSE coalesce\(regexp_matches\((?P=col), (?P=pattern)\), FALSE\) END"
)
_MARK = re.compile(r"\x00(\d+)\x00")
_PAIR = re.compile(r"\(\x00(\d+)\x00 OR \x00(\d+)\x00\)")
_SEPARATORS = ("\x01", "\x02", "\x03", "\x04")


def fold(sql: str) -> str:
    """*sql* with each parenthesized OR of `has` terms on one pattern as one match (module doc)."""
    if "regexp_escape" not in sql or "\x00" in sql:
        return sql
    terms: list[tuple[str, list[str]]] = []

    def mark(match: re.Match) -> str:
        terms.append((match.group("pattern"), [match.group("col")]))
        return f"\x00{len(terms) - 1}\x00"

    marked = _TERM.sub(mark, sql)
    if len(terms) < 2:
        return sql
    while True:
        merged = _PAIR.sub(lambda m: _merge(terms, int(m.group(1)), int(m.group(2))), marked)
        if merged == marked:
            break
        marked = merged
    return _MARK.sub(lambda m: _render(*terms[int(m.group(1))]), marked)


def _merge(terms: list[tuple[str, list[str]]], left: int, right: int) -> str:
    (pattern, columns), (other, more) = terms[left], terms[right]
    if pattern != other or _separator(pattern) is None:
        return f"(\x00{left}\x00 OR \x00{right}\x00)"
    terms[left] = (pattern, columns + more)
    return f"\x00{left}\x00"


def _separator(pattern: str) -> str | None:
    needle = pattern[pattern.index("regexp_escape(") + len("regexp_escape("):]
    return next((s for s in _SEPARATORS if s not in needle), None)


def _render(pattern: str, columns: list[str]) -> str:
    if len(columns) == 1:
        (column,) = columns
        return (f"CASE WHEN typeof({column}) = 'JSON' THEN coalesce(regexp_matches(coalesce({column} ->> '$', ''), "
                f"{pattern}), FALSE) ELSE coalesce(regexp_matches({column}, {pattern}), FALSE) END")
    separator = _separator(pattern)
    assert separator is not None  # merged only with one (_merge)
    texts = ", ".join(f"CASE WHEN typeof({c}) = 'JSON' THEN coalesce({c} ->> '$', '') ELSE CAST({c} AS VARCHAR) END"
                      for c in columns)
    return f"coalesce(regexp_matches(concat_ws(chr({ord(separator)}), {texts}), {pattern}), FALSE)"
