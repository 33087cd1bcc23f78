"""The input modes azmlinfsrv offers: @rawhttp with AMLRequest/AMLResponse (legacy import paths),
and inference-schema decorators with their 415/400 answers and /swagger.json."""

import httpx
import pytest
from wrapper_process import Wrapper


@pytest.fixture(scope="module")
def rawhttp(scoring_collector, tmp_path_factory):
    service = scoring_collector.create_service("rawhttp")
    wrapper = Wrapper("rawhttp_score.py", service, tmp_path_factory.mktemp("rawhttp") / "spool").start()
    yield wrapper
    wrapper.stop()


@pytest.fixture(scope="module")
def schema(scoring_collector, tmp_path_factory):
    service = scoring_collector.create_service("schema")
    wrapper = Wrapper("schema_score.py", service, tmp_path_factory.mktemp("schema") / "spool").start()
    yield wrapper
    wrapper.stop()


def test_rawhttp_passes_the_response_through(rawhttp):
    response = httpx.post(f"{rawhttp.url}/score", content=b"abc")
    assert response.status_code == 201
    assert response.content == b"cba"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers.get_list("x-custom") == ["a", "b"]
    assert response.headers["x-ms-run-function-failed"] == "False"
    assert httpx.get(f"{rawhttp.url}/score", params={"name": "ada"}).text == "hello ada"


def test_rawhttp_5xx_sets_run_function_failed(rawhttp):
    response = httpx.post(f"{rawhttp.url}/score", content=b"abc", headers={"x-overloaded": "1"})
    assert response.status_code == 503
    assert response.headers["x-ms-run-function-failed"] == "True"


def test_input_schema_arguments_and_errors(schema):
    ok = httpx.post(f"{schema.url}/score", json={"values": [1, 2], "scale": 3}, headers={"user-agent": "tests/1"})
    assert ok.status_code == 200
    assert ok.json() == {"scaled": [3, 6], "agent": "tests"}
    not_json = httpx.post(f"{schema.url}/score", content=b"{}", headers={"content-type": "text/plain"})
    assert not_json.status_code == 415
    assert not_json.json() == {"message": "Expects Content-Type to be application/json"}
    missing = httpx.post(f"{schema.url}/score", json={"values": [1]})
    assert missing.status_code == 400
    assert missing.json() == {"message": "A value is not provided for the 'scale' parameter."}
    not_object = httpx.post(f"{schema.url}/score", json=[1])
    assert not_object.json() == {"message": "POST body should be a JSON dictionary."}


def test_swagger_from_decorators(schema):
    document = httpx.get(f"{schema.url}/swagger.json").json()
    assert document["swagger"] == "2.0"
    assert {"values", "scale"} <= set(document["definitions"]["ServiceInput"]["properties"])
    assert httpx.get(f"{schema.url}/swagger.json", params={"version": "3"}).json()["openapi"].startswith("3.0")
    bad = httpx.get(f"{schema.url}/swagger.json", params={"version": "4"})
    assert bad.status_code == 404
    assert bad.json() == {"message": "Swagger version [4] is not valid. Supported versions: [2, 3, 3.1]."}
