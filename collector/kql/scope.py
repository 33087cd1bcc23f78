"""Service scoping and the read-only guarantee, enforced on the SQL the translator produced.

The translator is told that every table lives in a placeholder database (`SCOPE`), so each table
reference in its output reads `"<SCOPE>"."traces"`. Before anything runs we parse that SQL with
DuckDB's own parser (`json_serialize_sql`, which refuses anything but SELECT) and walk the tree:
every table reference must be a placeholder table we know, or a CTE of the query itself; every
table function must be one the translator legitimately emits; no function may reach files,
sequences or the catalog. Only then is each placeholder reference, located with DuckDB's own
tokenizer (so text inside string literals is never touched), replaced by a subquery that selects
the public columns of the real table, restricted to the caller's services and the time window.
The query's own text is never trusted to do the filtering.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import duckdb
import orjson

from collector.store.schema import SERVICE_COLUMN, TABLES

from .errors import EXECUTION, FORBIDDEN, SEMANTIC, KqlError
from .timespan import Window

SCOPE = "__kql_scope__"

# Table functions the translator emits (mv-expand, range, string splitting). Everything else,
# e.g. read_csv, query(), duckdb_tables(), is refused.
_TABLE_FUNCTIONS = frozenset({"unnest", "generate_series", "range"})
# Scalar functions that could reach outside the rows in scope or change state.
_DENIED_FUNCTIONS = frozenset({
    "query", "query_table", "nextval", "currval", "setseed", "getenv", "glob", "sniff_csv",
    "json_execute_serialized_sql", "json_deserialize_sql", "load_extension", "current_setting",
    "getvariable", "make_timestamp_from_file", "checkpoint", "force_checkpoint",
})
_DENIED_PREFIXES = ("read_", "duckdb_", "pragma_", "parquet_", "iceberg_", "delta_", "sqlite_",
                    "postgres_", "mysql_", "icu_", "json_execute")
_TABLE_REF_TYPES = frozenset({"BASE_TABLE", "SUBQUERY", "JOIN", "TABLE_FUNCTION",
                              "EXPRESSION_LIST", "EMPTY", "EMPTY_FROM", "SHOW_REF"})

_local = threading.local()


def _inspector() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB per thread: parsing needs no data, so it never touches the store."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(":memory:")
    return con


class UnknownTable(KqlError):
    """A table the query names that is neither ours nor its own `let`; located by the caller."""

    def __init__(self, name: str):
        super().__init__(SEMANTIC, f"unknown table '{name}'")
        self.name = name


@dataclass(frozen=True)
class Scope:
    """What a query may see: the services (None = all) and the time window (None = all time)."""

    services: Sequence[str] | None
    window: Window | None = None
    narrowing: Mapping[str, str] | None = None
    """Per table, a condition on its rows that cannot change the answer (lookup.narrowing)."""


def referenced_tables(sql: str) -> list[str]:
    """Check the translated *sql* is one safe SELECT; return the placeholder tables it reads.

    Raises KqlError for an unknown table (SEMANTIC) and for anything outside the read-only
    surface (FORBIDDEN).
    """
    con = _inspector()
    try:
        statements = con.extract_statements(sql)
        # orjson: the tree is ~50x the SQL's size, and a wide query's SQL is megabytes.
        tree = orjson.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    except duckdb.Error:
        raise KqlError(EXECUTION, "the query could not be compiled") from None
    if len(statements) != 1 or str(statements[0].type) != "StatementType.SELECT" or tree.get("error"):
        raise KqlError(FORBIDDEN, "only read-only queries are allowed")
    if len(tree.get("statements", ())) != 1:
        raise KqlError(FORBIDDEN, "only one query statement is allowed")
    nodes = list(_nodes(tree))  # walked once, read twice
    ctes = set(_cte_names(nodes))
    tables: list[str] = []
    for node in nodes:
        if "class" in node and node.get("class") == "FUNCTION":
            _check_function(node.get("function_name", ""))
        elif "sample" in node and "type" in node and "alias" in node:
            _check_table_ref(node, ctes, tables)
    return tables


def _nodes(value: object) -> Iterable[dict]:
    """Every dict in the serialized tree, depth first."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _cte_names(nodes: list[dict]) -> Iterable[str]:
    for node in nodes:
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map", ()):
                yield entry["key"]


def _check_function(name: str) -> None:
    lowered = name.lower()
    if lowered in _DENIED_FUNCTIONS or lowered.startswith(_DENIED_PREFIXES):
        raise KqlError(FORBIDDEN, "the query uses a function that is not allowed here")


def _check_table_ref(node: dict, ctes: set[str], tables: list[str]) -> None:
    kind = node["type"]
    if kind not in _TABLE_REF_TYPES:
        raise KqlError(FORBIDDEN, "the query reads a source that is not allowed here")
    if kind == "TABLE_FUNCTION":
        name = (node.get("function") or {}).get("function_name", "").lower()
        if name not in _TABLE_FUNCTIONS:
            raise KqlError(FORBIDDEN, "the query reads a source that is not allowed here")
    elif kind == "SHOW_REF":
        if node.get("table_name") or node.get("query") is None:
            raise KqlError(FORBIDDEN, "the query reads a source that is not allowed here")
    elif kind == "BASE_TABLE":
        name, schema = node.get("table_name", ""), node.get("schema_name", "")
        catalog = node.get("catalog_name", "")
        # The translator names its CTEs `_s0`, `_l0_x`...; no table a user must not see starts with
        # `_`, so a name that merely collides with a CTE elsewhere in the tree cannot open one.
        if not schema and not catalog and name in ctes and name.startswith("_"):
            return
        if schema == SCOPE and not catalog and name in TABLES:
            tables.append(name)
            return
        raise UnknownTable(name)


def apply(sql: str, scope: Scope, catalog: tuple[str, ...],
          spans: tuple[tuple[int, int, str], ...] | None = None) -> str:
    """Replace each placeholder table reference with its scoped subquery (see module doc);
    *spans* are `placeholders(sql)` when the caller has them already (from the compile sandbox)."""
    out: list[str] = []
    cursor = 0
    for start, end, table in placeholders(sql) if spans is None else spans:
        out.append(sql[cursor:start])
        out.append(source_sql(table, scope, catalog))
        cursor = end
    out.append(sql[cursor:])
    return "".join(out)


@lru_cache(maxsize=512)
def placeholders(sql: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, table) of every placeholder reference in a checked *sql*; cached per SQL text."""
    expected = referenced_tables(sql)
    tokens = duckdb.tokenize(sql)
    found = []
    for i in range(len(tokens) - 2):
        if _token_text(sql, tokens, i) != _quote(SCOPE):
            continue
        if _token_text(sql, tokens, i + 1) != "." or tokens[i + 2][1] != tokens[i][1]:
            continue
        table = unquote(_token_text(sql, tokens, i + 2))
        if table in TABLES:
            found.append((tokens[i][0], tokens[i + 2][0] + len(_token_text(sql, tokens, i + 2)), table))
    if len(found) != len(expected):
        # The tokenizer and the parser disagree about the text: refuse rather than guess.
        raise KqlError(EXECUTION, "the query could not be scoped")
    return tuple(found)


def source_sql(table: str, scope: Scope, catalog: tuple[str, ...]) -> str:
    """The rows of *table* this scope may read, with the public columns only."""
    where = conditions(table, scope)
    filtered = f" WHERE {' AND '.join(where)}" if where else ""
    return f"(SELECT {public_columns(table)} FROM {table_sql(table, catalog)}{filtered})"


def conditions(table: str, scope: Scope) -> list[str]:
    """What a row of *table* must satisfy to be in *scope*: its services, window and narrowing."""
    where = []
    if scope.services is not None:
        listed = ", ".join(_literal(s) for s in scope.services)
        where.append(f"{_quote(SERVICE_COLUMN)} IN ({listed})" if listed else "FALSE")
    if scope.window is not None:
        where.append(f'"timestamp" BETWEEN {_timestamp(scope.window.start)} '
                     f"AND {_timestamp(scope.window.end)}")
    if scope.narrowing and table in scope.narrowing:
        where.append(scope.narrowing[table])
    return where


@lru_cache(maxsize=64)
def public_columns(table: str) -> str:
    """The select list of *table*'s public columns, quoted."""
    return ", ".join(_quote(c) for c in TABLES[table].column_names)


def table_sql(table: str, catalog: tuple[str, ...]) -> str:
    """The stored table's name, qualified by *catalog* (bare: see engine)."""
    return ".".join(_quote(part) for part in (*catalog, table))


def _token_text(sql: str, tokens: list, i: int) -> str:
    start = tokens[i][0]
    stop = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
    return sql[start:stop].rstrip()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def unquote(token: str) -> str:
    """An identifier token's name (a quoted one unescaped)."""
    if len(token) >= 2 and token[0] == token[-1] == '"':
        return token[1:-1].replace('""', '"')
    return token


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _timestamp(value) -> str:
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
