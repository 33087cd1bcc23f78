"""A union of tables whose same-named columns differ in type (dependencies.data is a string,
modelData.data dynamic) gives one column per type, `data_string` and `data_dynamic`, as Kusto's
union does; `search` and `union *` used to fail on a store holding a dependency whose data is not
JSON text (DuckDB's UNION BY NAME cast it to JSON). Against a real collector process."""

from __future__ import annotations

import time

import orjson
import pytest

SQL_TEXT = "SELECT * FROM t WHERE x = 'a'"


@pytest.fixture(scope="module")
def service(collector):
    created = collector.create_service("uniontypes")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    lines = [
        {"itemType": "dependency", "timestamp": stamp, "id": "d1", "name": "query", "type": "SQL",
         "target": "db", "data": SQL_TEXT, "success": True, "duration": 3.0, "operation_Id": "op7"},
        {"itemType": "modelData", "timestamp": stamp, "collection": "model_inputs", "rowIndex": 0,
         "data": {"feature": 1.5, "label": "cat"}, "operation_Id": "op7"},
        {"itemType": "modelData", "timestamp": stamp, "collection": "model_inputs", "rowIndex": 1,
         "data": {"feature": 2.5, "label": "dog"}, "operation_Id": "op8"},
    ]
    assert collector.import_rows(created["name"], [orjson.dumps(line) for line in lines])["imported"] == 3
    return created["name"]


def test_search_finds_the_dependency_and_the_model_rows(collector, service):
    rows = collector.query('search "op7" | project $table, data_string, data_dynamic | order by $table asc',
                           service)
    assert [r["$table"] for r in rows] == ["dependencies", "modelData"]
    assert rows[0]["data_string"] == SQL_TEXT and rows[0]["data_dynamic"] is None
    assert rows[1]["data_string"] is None and orjson.loads(rows[1]["data_dynamic"]) == {"feature": 1.5, "label": "cat"}


def test_union_star_types_each_column_as_its_table_does(collector, service):
    with collector.admin as client:
        response = client.post("/v1/apps/default/query", json={
            "query": "union * | where isnotempty(data_string) or isnotnull(data_dynamic) "
                     "| project itemType, data_string, data_dynamic, label = tostring(data_dynamic.label)",
            "service": service})
    assert response.status_code == 200, response.text
    table = response.json()["tables"][0]
    assert [(c["name"], c["type"]) for c in table["columns"]] == [
        ("itemType", "string"), ("data_string", "string"), ("data_dynamic", "dynamic"), ("label", "string")]
    rows = sorted(table["rows"], key=lambda r: (r[0], r[3] or ""))
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("dependency", SQL_TEXT, ""), ("modelData", None, "cat"), ("modelData", None, "dog")]


def test_each_table_alone_keeps_its_data_column(collector, service):
    assert collector.query("dependencies | project data", service) == [{"data": SQL_TEXT}]
    labels = collector.query("modelData | summarize by label = tostring(data.label) | order by label asc", service)
    assert labels == [{"label": "cat"}, {"label": "dog"}]


def test_an_inner_union_keeps_only_the_columns_of_one_type(collector, service):
    rows = collector.query("union kind=inner dependencies, modelData | getschema | project ColumnName", service)
    names = [r["ColumnName"] for r in rows]
    assert "operation_Id" in names and not any(n.startswith("data") for n in names)
