"""The endpoints API refuses bad definitions with a 4xx naming what is wrong, and keys act only
within their powers."""

import uuid


def test_bad_definitions_and_keys(collector):
    name = f"api-{uuid.uuid4().hex[:8]}"
    with collector.admin as admin:
        created = admin.post("/api/endpoints", json={"name": name, "rate_limit": 50})
        assert created.status_code == 201, created.text
        try:
            _check(collector, admin, name, created.json())
        finally:
            assert admin.delete(f"/api/endpoints/{name}").status_code == 204
        assert admin.get(f"/api/endpoints/{name}").status_code == 404
        assert admin.get(f"/api/services/{name}").status_code == 404


def _check(collector, admin, name: str, created: dict) -> None:
    assert admin.post("/api/endpoints", json={"name": name}).status_code == 409
    assert admin.post("/api/endpoints", json={"name": "x"}).status_code == 400
    assert admin.post("/api/endpoints", json={"name": "other-name", "colour": "blue"}).status_code == 422
    taken = admin.post("/api/endpoints", json={"name": "other-name", "port": int(collector.url.rsplit(":", 1)[1])})
    assert taken.status_code == 409 and "in use" in taken.json()["detail"]
    script = "/no/such/score.py"
    put = admin.put(f"/api/endpoints/{name}/deployments/blue", json={"entry_script": script})
    assert put.status_code == 200 and put.json()["state"] == "Provisioning"
    relative = admin.put(f"/api/endpoints/{name}/deployments/green", json={"entry_script": "score.py"})
    assert relative.status_code == 400 and "entry_script" in relative.json()["detail"]
    for traffic, wrong in (("blue=90", "sum to 90"), ("green=100", "no deployment named green"),
                           ("blue=ninety", "not NAME=PERCENT"), ({"blue": 101}, "from 0 to 100")):
        answer = admin.patch(f"/api/endpoints/{name}", json={"traffic": traffic})
        assert answer.status_code == 400 and wrong in answer.json()["detail"], answer.text
    answer = admin.patch(f"/api/endpoints/{name}", json={"traffic": "blue=100", "mirror": "blue=10"})
    assert answer.status_code == 400 and "takes live traffic" in answer.json()["detail"]
    assert admin.patch(f"/api/endpoints/{name}", json={"traffic": "blue=100"}).json()["traffic"] == {"blue": 100}
    assert admin.delete(f"/api/endpoints/{name}/deployments/blue").status_code == 409  # it has traffic

    # the endpoint's service key reads it (no scoring keys shown), changes nothing; no key, nothing
    with collector.client({"x-api-key": created["service_api_key"]}) as reader:
        shown = reader.get(f"/api/endpoints/{name}", params={"keys": "true"}).json()
        assert shown["name"] == name and "primary_key" not in shown
        assert reader.patch(f"/api/endpoints/{name}", json={"traffic": "blue=100"}).status_code == 403
        assert reader.post(f"/api/endpoints/{name}/credentials").status_code == 403
    assert collector.http.get(f"/api/endpoints/{name}").status_code == 401
