"""The ClickHouse schema (collector/store/clickhouse/schema.py) and its migrations, executed by chdb
behind the stand-in. Cluster statements are parsed by ClickHouse (formatQuery) but not run: no
multi-node ClickHouse, nor Keeper, can run here."""

from dataclasses import replace

import pytest
from store_helpers import connection, insights, migrated_url

from collector.store.clickhouse import tables
from collector.store.clickhouse.location import PASSWORD_ENV, ClickHouseConnection, parse
from collector.store.clickhouse.migrate import MIGRATIONS, SchemaBehind, check_current, ledger_statement, migrate
from collector.store.clickhouse.schema import create_statements, delete_statement
from collector.store.schema import INTERNAL_COLUMNS, TABLES


@pytest.fixture(scope="module")
def migrated(clickhouse_server):
    url = migrated_url(clickhouse_server, "schema")
    return url, connection(clickhouse_server, url)


def _tables(conn) -> dict[str, str]:
    rows = conn.client().query("SELECT name, create_table_query FROM system.tables WHERE database = {db:String}",
                               parameters={"db": conn.database}).result_rows
    return dict(rows)


def test_store_schema_has_every_table_with_the_duckdb_columns(migrated):
    _, conn = migrated
    rows = conn.client().query("SELECT table, name, type FROM system.columns WHERE database = {db:String}",
                               parameters={"db": conn.database}).result_rows
    columns: dict[str, dict[str, str]] = {}
    for table, name, kind in rows:
        columns.setdefault(table, {})[name] = kind
    for table in TABLES.values():
        assert list(columns[table.name]) == table.column_names + list(INTERNAL_COLUMNS)
    requests = columns["requests"]
    assert requests["timestamp"] == "DateTime64(6, 'UTC')"
    assert requests["resultCode"] == "LowCardinality(Nullable(String))"
    assert requests["customDimensions"] == "Nullable(String)"
    assert requests["success"] == "Nullable(Bool)" and requests["duration"] == "Nullable(Float64)"
    assert requests["_service"] == "LowCardinality(String)" and requests["_seq"] == "Int64"


def test_store_schema_layout_and_skip_indexes(migrated):
    _, conn = migrated
    traces = _tables(conn)["traces"]
    assert "PARTITION BY toDate(timestamp)" in traces
    assert "ORDER BY (_service, toStartOfHour(timestamp), timestamp)" in traces
    for index in ("idx_operation_Id operation_Id TYPE bloom_filter", "idx_itemId itemId TYPE bloom_filter",
                  "idx_message_tokens lower(message) TYPE text", "idx_customDimensions_tokens lower(customDimensions) TYPE text"):
        assert index in traces
    assert "CODEC(Delta(8), ZSTD(1))" in traces


def test_store_text_index_serves_a_rare_token_lookup(migrated):
    _, conn = migrated
    client = conn.client()
    client.command(f"INSERT INTO {conn.database}.traces (timestamp, message, _service, _seq) "
                   "SELECT now64(6), concat('Scoring batch ', toString(number)), 'idx', number FROM numbers(50000)")
    plan = "\n".join(row[0] for row in client.query(
        f"EXPLAIN indexes = 1 SELECT count() FROM {conn.database}.traces "
        "WHERE _service = 'idx' AND hasToken(lower(message), '49999')").result_rows)
    assert "idx_message_tokens" in plan
    assert client.query(f"SELECT count() FROM {conn.database}.traces WHERE hasToken(lower(message), '49999')").result_rows == [(1,)]


def test_store_migrate_twice_changes_nothing_and_records_the_version(clickhouse_server):
    url = clickhouse_server.fresh_url("migrate")
    first = insights(clickhouse_server, "store", "migrate", "--store", url)
    assert first.returncode == 0 and "applied 1: telemetry tables" in first.stdout, first.stderr
    assert "applied 2: state tables" in first.stdout
    conn = connection(clickhouse_server, url)
    before = _tables(conn)
    assert set(before) == tables.table_names() >= set(TABLES) | {"_insights_migrations", "alert_rules", "live_share"}
    again = insights(clickhouse_server, "store", "migrate", "--store", url)
    assert again.returncode == 0 and "was up to date" in again.stdout
    assert _tables(conn) == before
    ledger = conn.client().query(f"SELECT version, name FROM {conn.database}._insights_migrations ORDER BY version").result_rows
    assert ledger == [(1, "telemetry tables"), (2, "state tables")]


def test_store_cluster_statements_are_valid_clickhouse(clickhouse_server):
    client = clickhouse_server.client()
    statements = create_statements("insights", cluster="scale")
    assert len(statements) == 1 + 2 * len(TABLES)
    for statement in statements:
        formatted = client.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows[0][0]
        assert "ON CLUSTER scale" in formatted
    for statement in tables.state_statements("insights", cluster="scale"):
        formatted = client.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows[0][0]
        assert "ON CLUSTER scale" in formatted and "ENGINE = Replicated" in formatted
    local, distributed = statements[1], statements[2]
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/insights/traces_local', '{replica}')" in local
    assert "ENGINE = Distributed(`scale`, `insights`, `traces_local`, cityHash64(coalesce(`operation_Id`, `itemId`, '')))" in distributed


def test_store_cluster_retention_and_insert_settings_are_clickhouse_s(clickhouse_server):
    client = clickhouse_server.client()
    for statement in (delete_statement("insights", "traces", "scale", "`_service` = 'a'"),
                      ledger_statement("insights", "scale")):
        formatted = client.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows[0][0]
        assert "ON CLUSTER scale" in formatted
    settings = ClickHouseConnection(lambda: None, "insights", cluster="scale").insert_settings
    known = {row[0] for row in client.query("SELECT name FROM system.settings WHERE name IN {names:Array(String)}",
                                            parameters={"names": list(settings)}).result_rows}
    assert known == set(settings) == {"async_insert", "distributed_foreground_insert", "insert_quorum",
                                      "insert_quorum_parallel"}


def test_store_migrate_upgrades_a_version_1_store_and_a_collector_refuses_it_until_then(clickhouse_server):
    """A store migrated by the release before the state tables were versioned (only version 1) is
    behind: collectors refuse it, and migrate applies version 2 alone."""
    url = clickhouse_server.fresh_url("upgrade")
    location = parse(url, {PASSWORD_ENV: clickhouse_server.password})
    assert location is not None
    migrate(ClickHouseConnection(replace(location, database="default").client, location.database), MIGRATIONS[:1])
    conn = connection(clickhouse_server, url)
    with pytest.raises(SchemaBehind, match="lacks schema version"):
        check_current(conn)
    upgraded = insights(clickhouse_server, "store", "migrate", "--store", url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "applied 2: state tables" in upgraded.stdout and "applied 1" not in upgraded.stdout
    assert set(_tables(conn)) == tables.table_names()
    check_current(conn)
