"""A real collector process with `--store clickhouse://...` (through INSIGHTS_STORE) against the
ClickHouse stand-in, fed by the real opencensus SDK: the rows land in ClickHouse, not in DuckDB."""

import logging

import pytest
from collector_process import CollectorProcess
from export.items import lines, mixed_items
from opencensus.ext.azure.log_exporter import AzureLogHandler
from opencensus.ext.azure.trace_exporter import AzureExporter
from opencensus.trace.samplers import AlwaysOnSampler
from opencensus.trace.tracer import Tracer
from store_helpers import connection, eventually, migrated_url
from typer.testing import CliRunner

from collector.store.clickhouse import tables
from collector.store.schema import TABLES
from insights.cli import app


def _count(client, table: str, service: str) -> int:
    return client.query(f"SELECT count() FROM {table} WHERE _service = {{s:String}}", parameters={"s": service}).result_rows[0][0]



@pytest.fixture(scope="module")
def store(clickhouse_server, tmp_path_factory):
    url = migrated_url(clickhouse_server, "collector")
    collector = CollectorProcess(tmp_path_factory.mktemp("ch-collector") / "data",
                                 env={"INSIGHTS_STORE": url, "INSIGHTS_STORE_PASSWORD": clickhouse_server.password,
                                      "INSIGHTS_COLLECTOR_ID": "7"}).start(timeout=60)
    yield collector, connection(clickhouse_server, url)
    collector.stop()


def test_store_opencensus_rows_land_in_clickhouse(store):
    collector, conn = store
    service = collector.create_service("ch-oc")
    logger = logging.getLogger(f"ch-{service['name']}")
    handler = AzureLogHandler(connection_string=service["connection_string"], enable_local_storage=False,
                              export_interval=0.2, enable_stats_metrics=False)
    logger.addHandler(handler)
    logger.warning("scored %s", 3, extra={"custom_dimensions": {"model": "resnet", "input": {"rows": 2}}})
    handler.flush()
    logger.removeHandler(handler)
    exporter = AzureExporter(connection_string=service["connection_string"], enable_local_storage=False,
                             export_interval=0.2)
    with Tracer(exporter=exporter, sampler=AlwaysOnSampler()).span(name="score"):
        pass

    client = conn.client()
    assert eventually(lambda: _count(client, "traces", service["name"]) == 1)
    row = client.query(
        "SELECT message, severityLevel, customDimensions, iKey, itemType, _seq FROM traces WHERE _service = {s:String}",
        parameters={"s": service["name"]}).named_results().__next__()
    assert row["message"] == "scored 3" and row["severityLevel"] == 2
    assert '"input": {"rows": 2}' in row["customDimensions"] or '"input":{"rows":2}' in row["customDimensions"]
    assert row["iKey"] == service["instrumentation_key"] and row["itemType"] == "trace"
    assert (row["_seq"] >> 9) & 0xFFF == 7  # the collector id INSIGHTS_COLLECTOR_ID gave
    assert eventually(lambda: _count(client, "requests", service["name"]) + _count(client, "dependencies", service["name"]) >= 1)
    # The counters (control state, in the data dir's DuckDB file this session) count what ClickHouse took.
    stored = sum(_count(client, table, service["name"]) for table in ("traces", "requests", "dependencies"))

    def accepted() -> int:
        with collector.admin as http:
            return http.get(f"/api/services/{service['name']}/stats").json()["accepted"]
    assert eventually(lambda: accepted() == stored)  # the counter commits right after the insert


def test_store_import_twice_stores_each_item_once(store):
    collector, conn = store
    service = collector.create_service("ch-import")["name"]
    items = lines(mixed_items(60))
    assert collector.import_rows(service, items)["imported"] == 60
    assert collector.import_rows(service, items)["imported"] == 0  # held already, asked of ClickHouse
    client = conn.client()
    assert sum(_count(client, table, service) for table in TABLES) == 60


def test_store_up_refuses_a_store_whose_schema_is_behind_or_a_password_in_the_url(clickhouse_server, tmp_path, monkeypatch):
    monkeypatch.setenv("INSIGHTS_STORE_PASSWORD", clickhouse_server.password)
    up = ["up", "--no-dashboard", "--data-dir", str(tmp_path / "data"), "--store"]
    behind = CliRunner().invoke(app, [*up, clickhouse_server.fresh_url("behind")])
    assert behind.exit_code == 1 and "insights store migrate" in behind.output
    secret = CliRunner().invoke(app, [*up, "clickhouse://insights:hunter2@127.0.0.1:1/insights"])
    assert secret.exit_code == 2
    assert "INSIGHTS_STORE_PASSWORD" in secret.output and "hunter2" not in secret.output


def test_store_collector_on_a_migrated_store_creates_no_table(store):
    """Every table the collector's features use was made by `insights store migrate` (tables.py):
    after the collector started and served, the store holds the registry's tables, no others."""
    collector, conn = store
    service = collector.create_service("ch-tables")["name"]
    with collector.admin as http:
        answer = http.post(f"/api/services/{service}/alert-rules", json={"name": "busy", "query": "requests",
                                                                         "threshold": 5})
        assert answer.status_code == 201, answer.text
        assert [rule["name"] for rule in http.get(f"/api/services/{service}/alert-rules").json()] == ["busy"]
    present = {row[0] for row in conn.client().query("SELECT name FROM system.tables WHERE database = {db:String}",
                                                     parameters={"db": conn.database}).result_rows}
    assert present == tables.table_names()
    assert tables.create_missing(conn) == []
