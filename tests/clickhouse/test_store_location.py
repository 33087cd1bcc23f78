"""Where the store is (--store / INSIGHTS_STORE): URLs parsed, bad ones refused with a message naming
what is wrong, the password taken only from INSIGHTS_STORE_PASSWORD."""

import pytest
from store_helpers import connection, migrated_url

from collector.settings import CollectorSettings
from collector.store.clickhouse.location import PASSWORD_ENV, StoreLocationError, parse


def test_store_location_parses_clickhouse_urls():
    location = parse("clickhouse://ingest@ch.internal:9000/telemetry", {PASSWORD_ENV: "s3cret"})
    assert (location.host, location.port, location.user, location.database) == ("ch.internal", 9000, "ingest", "telemetry")
    assert location.password == "s3cret" and not location.secure and location.cluster is None
    assert "s3cret" not in repr(location) and "s3cret" not in location.url
    tls = parse("clickhouses://ingest@ch.internal/telemetry?cluster=scale&compress=false", {})
    assert (tls.secure, tls.port, tls.cluster, tls.compress) == (True, 8443, "scale", "false")
    assert tls.url == "clickhouses://ingest@ch.internal:8443/telemetry?cluster=scale&compress=false"
    assert parse("clickhouse://ch/", {}).database == "insights" and parse("clickhouse://ch", {}).user == "default"


@pytest.mark.parametrize("value", [None, "", "duckdb", " DuckDB "])
def test_store_location_default_is_the_embedded_duckdb(value):
    assert parse(value, {}) is None


@pytest.mark.parametrize("value, message", [
    ("clickhouse://u:hunter2@ch/db", "INSIGHTS_STORE_PASSWORD"),
    ("postgres://u@ch/db", "expected clickhouse://"),
    ("clickhouse:///db", "no host"),
    ("clickhouse://u@ch:99999/db", "port"),
    ("clickhouse://u@ch/my-db", "not a plain name"),
    ("clickhouse://u@ch/db?secure=1", "unknown URL parameter 'secure'"),
    ("clickhouse://u@ch/db?cluster=a;b", "cluster"),
    ("clickhouse://u@ch/db?compress=maybe", "compress must be"),
])
def test_store_location_refuses_what_it_cannot_use(value, message):
    with pytest.raises(StoreLocationError, match=message) as caught:
        parse(value, {})
    assert "hunter2" not in str(caught.value)


def test_store_location_in_collector_settings(tmp_path):
    settings = CollectorSettings.from_env(tmp_path, environ={"INSIGHTS_STORE": "clickhouse://u@ch/db",
                                                             PASSWORD_ENV: "pw", "INSIGHTS_COLLECTOR_ID": "12"})
    assert settings.store is not None and settings.store.password == "pw" and settings.collector_id == 12
    assert CollectorSettings.from_env(tmp_path, environ={}).store is None
    with pytest.raises(ValueError, match="4095"):
        CollectorSettings.from_env(tmp_path, environ={"INSIGHTS_COLLECTOR_ID": "5000"})


def test_store_location_compression_follows_the_server(clickhouse_server):
    conn = connection(clickhouse_server, migrated_url(clickhouse_server, "compress"))
    location = parse(clickhouse_server.url, {PASSWORD_ENV: clickhouse_server.password})
    assert location.takes_compressed_bodies() is False  # the stand-in refuses compressed bodies
    assert conn.client().query("SELECT 1").result_rows == [(1,)]
