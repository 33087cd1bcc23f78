"""Export settings over HTTP: round trip, defaults, and a 400 naming the field for each mistake."""

import pytest


def test_defaults_before_any_put(app_collector):
    service = app_collector.create_service("exp-defaults")
    with app_collector.admin as client:
        settings = client.get(f"/api/services/{service['name']}/export").json()
    assert settings["configured"] is False
    assert settings["types"] == ["Requests", "Messages", "Exceptions", "Rdd", "Event", "Metrics"]
    assert settings["interval_seconds"] == 60
    assert settings["destination"] is None  # the collector's <data-dir>/blob/


def test_put_then_get_round_trips(app_collector, tmp_path):
    service = app_collector.create_service("exp-settings")
    body = {"destination": f"file://{tmp_path}/out", "types": ["messages", "Requests"], "interval_seconds": 5,
            "enabled": False, "retention_days": 30}
    with app_collector.admin as client:
        put = client.put(f"/api/services/{service['name']}/export", json=body)
        got = client.get(f"/api/services/{service['name']}/export").json()
    assert put.status_code == 200, put.text
    assert got["configured"] is True
    assert got["types"] == ["Messages", "Requests"]  # case-insensitive, normalised
    assert (got["destination"], got["interval_seconds"], got["enabled"], got["retention_days"]) == (
        f"file://{tmp_path}/out", 5, False, 30)


CONNECTION = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"destination": "https://acct.blob.core.windows.net/exports"}, "destination"),  # no SAS token
        ({"destination": "https://acct.blob.core.windows.net/?sv=1&sig=x"}, "destination"),  # no container
        ({"destination": "ftp://example/folder"}, "destination"),
        ({"destination": "relative/folder"}, "destination"),
        ({"destination": "AccountName=devstoreaccount1"}, "destination"),  # no key
        ({"destination": CONNECTION}, "container"),  # connection string without container
        ({"destination": CONNECTION, "container": "Bad_Name"}, "container"),
        ({"destination": "/tmp/x", "container": "exports"}, "container"),
        ({"types": ["Requests", "Pageviews"]}, "types"),
        ({"types": []}, "types"),
        ({"types": "Requests"}, "types"),
        ({"interval_seconds": 0.5}, "interval_seconds"),
        ({"interval_seconds": "soon"}, "interval_seconds"),
        ({"enabled": "yes"}, "enabled"),
        ({"retention_days": 0}, "retention_days"),
        ({"max_items_per_blob": 0}, "max_items_per_blob"),
        ({"destinaton": "/tmp/x"}, "destinaton"),  # a typo is not silently ignored
        ([1, 2], "body"),
    ],
)
def test_invalid_settings_are_400_naming_the_field(app_collector, body, field):
    service = app_collector.create_service("exp-invalid")
    with app_collector.admin as client:
        response = client.put(f"/api/services/{service['name']}/export", json=body)
        unchanged = client.get(f"/api/services/{service['name']}/export").json()
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert response.json()["detail"].startswith(f"{field}: ")
    assert unchanged["configured"] is False


def test_body_that_is_not_json_is_400(app_collector):
    service = app_collector.create_service("exp-notjson")
    with app_collector.admin as client:
        response = client.put(f"/api/services/{service['name']}/export", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["field"] == "body"


def test_unknown_service_is_404_and_keys_are_checked(app_collector):
    with app_collector.admin as client:
        assert client.get("/api/services/no-such-service/export").status_code == 404
        assert client.put("/api/services/no-such-service/export", json={}).status_code == 404
        assert client.post("/api/services/no-such-service/export/run").status_code == 404
    service = app_collector.create_service("exp-auth")
    with app_collector.client({"x-api-key": service["api_key"]}) as as_service:
        assert as_service.get(f"/api/services/{service['name']}/export").status_code == 403
    assert app_collector.http.get("/api/export/status").status_code == 401
