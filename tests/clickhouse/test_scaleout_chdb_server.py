"""The ClickHouse stand-in (chdb_server.py) answers clickhouse-connect as a ClickHouse server does:
the collectors' real client code path runs against it in every ClickHouse test."""

import datetime as dt

import clickhouse_connect
import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError


@pytest.fixture(scope="module")
def client(clickhouse_server):
    client = clickhouse_server.client()
    client.command("CREATE DATABASE IF NOT EXISTS standin")
    client.command(
        "CREATE TABLE IF NOT EXISTS standin.items (service LowCardinality(String), timestamp DateTime64(6, 'UTC'),"
        " itemId String, duration Float64, success Bool, dims Map(LowCardinality(String), String))"
        " ENGINE = MergeTree PARTITION BY toDate(timestamp) ORDER BY (service, timestamp)"
    )
    yield client
    client.close()


def test_scaleout_arrow_insert_then_query_and_query_arrow_read_it_back(client):
    when = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    table = pa.table({
        "service": ["a", "b"],
        "timestamp": pa.array([when, when + dt.timedelta(seconds=1)], pa.timestamp("us", tz="UTC")),
        "itemId": ["i1", "i2"],
        "duration": [1.5, 2.5],
        "success": [True, False],
        "dims": pa.array([[("k", "v")], []], pa.map_(pa.string(), pa.string())),
    })
    summary = client.insert_arrow("standin.items", table)
    assert summary.written_rows == 2

    result = client.query("SELECT itemId, timestamp, success, dims FROM standin.items WHERE service = {s:String}",
                          parameters={"s": "a"})
    assert result.result_rows == [("i1", when.replace(tzinfo=None), True, {"k": "v"})]  # UTC comes back naive
    arrow = client.query_arrow("SELECT service, duration FROM standin.items ORDER BY service")
    assert arrow.column("duration").to_pylist() == [1.5, 2.5]


def test_scaleout_command_and_per_request_settings(client):
    assert client.command("SELECT 40 + 2") == 42
    # a setting sent with one request applies to that request only, as on a server
    with pytest.raises(DatabaseError) as refused:
        client.command("INSERT INTO standin.items (service, itemId) VALUES ('c', 'x')", settings={"readonly": 1})
    assert "readonly" in str(refused.value).lower()
    client.command("INSERT INTO standin.items (service, itemId) VALUES ('c', 'x')")
    assert client.command("SELECT count() FROM standin.items WHERE service = 'c'") == 1
    assert client.query("SELECT 1", settings={"max_execution_time": 5}).result_rows == [(1,)]


def test_scaleout_errors_raise_the_clients_real_exception(client):
    with pytest.raises(DatabaseError) as missing:
        client.query("SELECT * FROM standin.nope")
    assert missing.value.code == 60  # UNKNOWN_TABLE, from X-ClickHouse-Exception-Code


def test_scaleout_a_wrong_password_is_refused(clickhouse_server):
    with pytest.raises(DatabaseError) as refused:
        clickhouse_connect.get_client(host=clickhouse_server.host, port=clickhouse_server.port,
                                      username=clickhouse_server.user, password="wrong", compress=False)
    assert refused.value.code == 516


def test_scaleout_native_insert_and_long_parameters(client):
    """client.insert sends Native (chunked); long bind parameters go as a multipart form."""
    client.insert("standin.items", [["n", "native-1"], ["n", "native-2"]], column_names=["service", "itemId"])
    long_id = "x" * 20000
    client.insert("standin.items", [["n", long_id]], column_names=["service", "itemId"])
    rows = client.query("SELECT count() FROM standin.items WHERE service = 'n' AND itemId IN ({ids:Array(String)})",
                        parameters={"ids": ["native-1", long_id]}).result_rows
    assert rows == [(2,)]
