"""What the clickhouse store cannot answer: a clear 400 naming it, never different rows."""

from __future__ import annotations

from typing import NoReturn

from sqlglot import exp

from ..errors import UNSUPPORTED, KqlError

STORE = "the clickhouse store"

# DuckDB UDFs the translator emits; udfs.py lowers the uses it can reproduce exactly.
_NO_EQUIVALENT = {
    "kql_compute": "series and digest functions (series_fir, series_decompose, tdigest...)",
    "kql_xxhash64": "hash()",
}


def refuse(what: str) -> NoReturn:
    raise KqlError(UNSUPPORTED, f"{what} is not supported on {STORE}")


def refuse_leftovers(tree: exp.Expr) -> None:
    """Refuse a lowered tree still calling one of the UDFs (see _NO_EQUIVALENT): ClickHouse has no
    such function, and a query must not reach it."""
    for node in tree.find_all(exp.Anonymous):
        what = _NO_EQUIVALENT.get(node.name.lower())
        if what is not None:
            refuse(what)
