"""A union of tables whose same-named columns differ in type: one column per name and type.

Kusto's (outer) `union` gives a column that appears with several types one column per type,
named `<name>_<type>` (its documentation: "the column name is suffixed with '_' followed by the
origin column type"). The translator knows names only and joins the branches with DuckDB's
`UNION ALL BY NAME`, which puts `dependencies.data` (string) and `modelData.data` (dynamic) in
one JSON column: casting a dependency's `SELECT * FROM t` to JSON fails, so `search "x"` and
`union *` failed on any store holding both. Here, after translation, each branch that reads a
table (`SELECT [<label> AS "<source>",] * FROM (SELECT * FROM "<SCOPE>"."T" [AS _sN])` or
`SELECT * FROM "<SCOPE>"."T"`) lists the table's columns with such a column renamed to
`<name>_<type>` (a plain select list, which the ClickHouse lowering reads too), and the
union's column list names the typed columns where the name was (kind=inner, which keeps the
columns common to every branch, drops it). Branches that are not a table are left as they were.

`search` looks in the typed columns like any other (columns.describe reads them from this SQL).
The lookup index plans on the query's text (lookup.plan), where `data_string has "x"` names no
table's column: `for_lookup` writes the base name back there, which narrows soundly, because a row
whose `data_string` holds a term is a row whose `data` holds it.
"""

from __future__ import annotations

import duckdb

from collector.store.schema import TABLES

from . import syntax
from .scope import SCOPE, unquote

_UNION = ["UNION", "ALL", "BY", "NAME"]
_PLACEHOLDER = '"' + SCOPE + '"'


def separate(sql: str) -> tuple[str, dict[str, str]]:
    """*sql* with the typed columns split (module doc), and {typed name: base name}."""
    if "UNION ALL BY NAME" not in sql:
        return sql, {}
    tokens = duckdb.tokenize(sql)
    starts = [t[0] for t in tokens] + [len(sql)]
    strings = {i for i, t in enumerate(tokens) if t[1] == duckdb.token_type.string_const}
    texts = [sql[starts[i]:starts[i + 1]].strip() for i in range(len(tokens))]
    words = ["" if i in strings else t.upper() for i, t in enumerate(texts)]
    edits: list[tuple[int, int, str]] = []
    renamed: dict[str, str] = {}
    for open_at, arms in _unions(words):
        tables = [_arm_table(texts, words, lo, hi) for lo, hi in arms]
        if None in tables:
            continue
        typed = _conflicts([t for t in tables if t is not None])
        if not typed:
            continue
        for (lo, _), table in zip(arms, tables, strict=True):
            star = lo + (1 if texts[lo + 1] == "*" else 5)
            listed = ", ".join(f'"{name}" AS "{name}_{kql}"' if name in typed else f'"{name}"'
                               for name, kql in _types(str(table)))
            edits.append((starts[star], starts[star] + 1, listed))
        renamed.update({f"{name}_{kql}": name for name, kinds in typed.items() for kql in kinds})
        edits += _keep_edits(texts, words, starts, open_at, typed, [str(t) for t in tables])
    for start, end, text in sorted(edits, reverse=True):
        sql = sql[:start] + text + sql[end:]
    return sql, renamed


def for_lookup(text: str, renamed: dict[str, str]) -> str:
    """*text* with each typed column name (a name node, never a literal) back to its base name."""
    if not renamed:
        return text
    try:
        tree = syntax.parse(text)
    except Exception:  # noqa: BLE001 - the lookup is an optimisation: no plan then
        return text
    edits = [(*syntax.bounds(node), syntax.name(renamed[syntax.name_text(node)]))
             for node in syntax.descendants(tree)
             if syntax.kind(node) in ("IdentifierName", "EscapedName") and syntax.name_text(node) in renamed]
    return syntax.apply(text, edits)


def _unions(words: list[str]):
    """(open, arms) of every parenthesized `A UNION ALL BY NAME B ...`: the token of its opening
    parenthesis and each arm's token range."""
    stack: list[int] = []
    found: dict[int, list[int]] = {}
    pairs: dict[int, int] = {}
    for i, word in enumerate(words):
        if word == "(":
            stack.append(i)
        elif word == ")" and stack:
            pairs[stack.pop()] = i
        elif words[i:i + 4] == _UNION and stack:
            found.setdefault(stack[-1], []).append(i)
    for open_at, unions in found.items():
        close_at = pairs.get(open_at)
        if close_at is None:
            continue
        bounds = [open_at + 1, *(u for u in unions), close_at]
        arms = [(bounds[0], bounds[1])] + [(u + 4, nxt) for u, nxt in zip(unions, bounds[2:], strict=True)]
        yield open_at, arms


def _arm_table(texts: list[str], words: list[str], lo: int, hi: int) -> str | None:
    """The table an arm reads whole, or None."""
    if words[lo] != "SELECT":
        return None
    if texts[lo + 1] == "*":
        at = lo + 2
    elif words[lo + 1] == "" and words[lo + 2] == "AS" and texts[lo + 4] == "," and texts[lo + 5] == "*":
        at = lo + 6  # withsource: SELECT '<label>' AS "<source>", * FROM
    else:
        return None
    if words[at] != "FROM":
        return None
    body = texts[at + 1:hi]
    if body[:1] == ["("] and body[-1:] == [")"]:
        body = body[1:-1]
        if [b.upper() for b in body[:3]] != ["SELECT", "*", "FROM"]:
            return None
        body = body[3:]
    if len(body) == 5 and body[3].upper() == "AS" and body[4].startswith("_s"):
        body = body[:3]
    if len(body) != 3 or body[0] != _PLACEHOLDER or body[1] != ".":
        return None
    table = unquote(body[2])
    return table if table in TABLES else None


def _types(table: str) -> list[tuple[str, str]]:
    return [(c.name, c.kql_type) for c in TABLES[table].columns]


def _conflicts(tables: list[str]) -> dict[str, list[str]]:
    """{name: its KQL types in order of first appearance} for the names with more than one."""
    seen: dict[str, list[str]] = {}
    for table in tables:
        for name, kql in _types(table):
            kinds = seen.setdefault(name, [])
            if kql not in kinds:
                kinds.append(kql)
    return {name: kinds for name, kinds in seen.items() if len(kinds) > 1}


def _keep_edits(texts: list[str], words: list[str], starts: list[int], open_at: int,
                typed: dict[str, list[str]], tables: list[str]) -> list[tuple[int, int, str]]:
    """The union's column list (`SELECT "a", "data", ... FROM (<union>)`) with each conflicting
    name replaced by its typed names, or dropped under kind=inner."""
    if words[open_at - 1] != "FROM":
        return []
    select = open_at - 2
    while select >= 0 and words[select] != "SELECT":
        select -= 1
    listed = [i for i in range(select + 1, open_at - 1) if texts[i] != ","]
    if select < 0 or any(texts[i] == "*" for i in listed):
        return []
    names = {unquote(texts[i]) for i in listed}
    every = {name for table in tables for name, _ in _types(table)}
    inner = bool(every - names - set(typed))
    edits = []
    for n, i in enumerate(listed):
        name = unquote(texts[i])
        if name not in typed:
            continue
        end = starts[i] + len(texts[i])
        if not inner:
            edits.append((starts[i], end, ", ".join(f'"{name}_{kql}"' for kql in typed[name])))
        elif n > 0:  # from the comma before it
            edits.append((starts[listed[n - 1]] + len(texts[listed[n - 1]]), end, ""))
        elif len(listed) > 1:  # up to the next name
            edits.append((starts[i], starts[listed[1]], ""))
    return edits
