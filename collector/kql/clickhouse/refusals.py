"""What the clickhouse store cannot answer: a clear 400 naming it, never different rows."""

from __future__ import annotations

from typing import NoReturn

from ..errors import UNSUPPORTED, KqlError

STORE = "the clickhouse store"

# DuckDB functions the translator emits that ClickHouse has no equivalent for.
_NO_EQUIVALENT = {
    "kql_compute": "series and digest functions (series_fir, series_decompose, tdigest...)",
    "kql_xxhash64": "hash()",
}


def refuse(what: str) -> NoReturn:
    raise KqlError(UNSUPPORTED, f"{what} is not supported on {STORE}")


def refuse_unsupported(sql: str) -> None:
    """Refuse SQL calling one of the UDFs with no ClickHouse equivalent (see _NO_EQUIVALENT)."""
    for name, what in _NO_EQUIVALENT.items():
        if name + "(" in sql:
            refuse(what)
