"""What the ClickHouse store's tests share: a migrated fresh database on the stand-in
(chdb_server.py: no ClickHouse server can run here), a connection to it as a collector makes one,
and DuckDB SQL lowered and run on chdb's in-memory engine (the lowering tests)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace

from collector.kql.clickhouse.lowering import lower
from collector.kql.series_functions import _udf
from collector.store.clickhouse import tables
from collector.store.clickhouse.location import PASSWORD_ENV, ClickHouseConnection, parse
from collector.store.clickhouse.migrate import migrate
from collector.store.clickhouse.schema import database_statement


def lowered_rows(client, sql: str) -> list:
    """The rows of DuckDB *sql* lowered to ClickHouse SQL, run through *client* (conftest's `client`)."""
    lowered = lower(sql, {}, database="default", services=None)
    return client.query(lowered.sql, parameters=lowered.parameters, settings=lowered.settings).result_rows


def quoted(text: str) -> str:
    """*text* as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def udf_answers(client, name: str, options: list | None, series: list[str]) -> tuple[list, list]:
    """(ClickHouse's answers, the DuckDB kql_compute UDF's) of series function *name* with
    *options* over each of *series* (JSON texts), ClickHouse's through the whole lowering."""
    packed = "NULL" if options is None else \
        "CAST(json_array(" + ", ".join(f"CAST({quoted(json.dumps(o))} AS JSON)" for o in options) + ") AS VARCHAR)"
    selects = " UNION ALL ".join(f"SELECT {i} AS k, kql_compute('{name}', CAST(CAST({quoted(s)} AS JSON) AS VARCHAR), "
                                 f"{packed}) AS r" for i, s in enumerate(series))
    got = [r for _, r in sorted(lowered_rows(client, f"SELECT * FROM ({selects})"))]
    return got, [_udf(name, s, None if options is None else json.dumps(options)) for s in series]


def same_reals(a, b) -> bool:
    """Equal, reals to a relative 1e-9; a real and a long never match (1.0 is not 1)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_reals(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same_reals(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def store_env(server) -> dict:
    return {**os.environ, PASSWORD_ENV: server.password}


def insights(server, *args: str) -> subprocess.CompletedProcess:
    """Run the `insights` command line (this tree's) with the stand-in's password in the environment."""
    return subprocess.run([sys.executable, "-m", "collector", *args], env=store_env(server),
                          capture_output=True, text=True, timeout=300)


def migrated_url(server, prefix: str = "t") -> str:
    """A fresh store URL, migrated as `insights store migrate` does (in this process: the command
    line itself is tested in test_store_schema.py)."""
    url = server.fresh_url(prefix)
    location = parse(url, {PASSWORD_ENV: server.password})
    assert location is not None
    migrate(ClickHouseConnection(replace(location, database="default").client, location.database))
    return url


def with_state_tables(connection):
    """`connection` once its database holds the state tables (tables.py: what `insights store
    migrate` creates besides telemetry), for tests of a state module alone."""
    connection.client().command(database_statement(connection.database))
    tables.create_missing(connection)
    return connection


def connection(server, url: str) -> ClickHouseConnection:
    """The store's connection exactly as a collector makes it from its URL and password."""
    location = parse(url, {PASSWORD_ENV: server.password})
    assert location is not None
    return ClickHouseConnection.at(location)


def eventually(check, timeout: float = 60.0, interval: float = 0.2):
    """`check()`'s first true value, or its last value once `timeout` passed: what one collector (or
    store) wrote shows on another within their caches' few seconds, longer on loaded cores."""
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value
