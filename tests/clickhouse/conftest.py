import sys
from pathlib import Path

import clickhouse_connect
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from chdb_stand_in import start_server  # noqa: E402
from collector_process import free_port  # noqa: E402


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory):
    """One ClickHouse stand-in (tests/clickhouse/chdb_server.py: chdb behind ClickHouse's HTTP interface,
    because no ClickHouse server can run here) for the session, with a password. Yields a
    ClickHouseServer: `.url` is a store URL (`clickhouse://user@127.0.0.1:PORT/insights`), `.password`
    the password (INSIGHTS_STORE_PASSWORD), `.fresh_url()` a store URL on a database of its own,
    `.client()` a clickhouse-connect client."""
    server = start_server(tmp_path_factory.mktemp("clickhouse"), free_port())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client():
    """A clickhouse-connect client on chdb's in-memory engine: the lowering tests run the lowered SQL
    on it and hold the answer to DuckDB's for the same SQL."""
    chdb = clickhouse_connect.get_client(dsn="chdb://memory")
    yield chdb
    chdb.close()
