"""Deployments that fail each way the managed online endpoints report (ERR_1300, ERR_2100,
ERR_2200), with their logs, while the endpoint keeps serving from the healthy one; and the
telemetry each deployment sends (the endpoint as role, a Deployment dimension)."""

import time

import pytest
from endpoint_scripts import SCRIPTS
from typer.testing import CliRunner

from collector.client import DeploymentFailed
from insights.cli import app


@pytest.fixture(scope="module")
def served(collector):
    import uuid

    from collector.client import OnlineEndpoint, Workspace

    endpoint = OnlineEndpoint.create(Workspace(collector.url, api_key=collector.admin_key),
                                     f"states-{uuid.uuid4().hex[:8]}", rate_limit=100_000)
    endpoint.create_deployment("blue", SCRIPTS / "blue_score.py")
    endpoint.update(traffic="blue=100")
    yield endpoint
    endpoint.delete()


def test_each_failure_has_its_code_and_logs_and_the_endpoint_keeps_serving(served, tmp_path, monkeypatch):
    failing = {"nomodel": (SCRIPTS / "blue_score.py", tmp_path / "no-such-model"),
               "nopkg": (SCRIPTS / "missing_package_score.py", None),
               "badinit": (SCRIPTS / "init_raises_score.py", None)}
    generations = {name: served.create_deployment(name, script, model_dir, wait=False)["generation"]
                   for name, (script, model_dir) in failing.items()}  # all three start at once
    failures = {}
    for name, generation in generations.items():
        with pytest.raises(DeploymentFailed) as failed:
            served.wait_for_deployment(name, 60, generation)
        failures[name] = failed.value
    assert "ERR_1300" in str(failures["nomodel"]) and "no-such-model" in str(failures["nomodel"])
    assert "ERR_2100" in str(failures["nopkg"])
    assert "No module named 'package_that_is_not_installed'" in failures["nopkg"].logs
    assert "ERR_2200" in str(failures["badinit"])

    assert "RuntimeError: model file is corrupt" in served.get_logs("badinit")
    assert "No module named 'package_that_is_not_installed'" in served.get_logs("nopkg", lines=50)
    deadline = time.monotonic() + 60  # each restart starts a wrapper process: seconds on loaded cores
    while served.deployments["badinit"]["restarts"] < 2:  # restarted after a back-off (1 s, then 2 s)
        assert time.monotonic() < deadline, served.deployments["badinit"]
        time.sleep(0.2)
    states = served.deployments
    assert states["blue"]["state"] == "Succeeded"
    assert {name: states[name]["error_code"] for name in ("nomodel", "nopkg", "badinit")} == {
        "nomodel": "ERR_1300", "nopkg": "ERR_2100", "badinit": "ERR_2200"}
    assert "model file is corrupt" in states["badinit"]["logs"]
    for _ in range(10):
        assert served.invoke({"data": [1]})["deployment"] == "blue"

    monkeypatch.setenv("INSIGHTS_URL", served.workspace.url)
    monkeypatch.setenv("INSIGHTS_API_KEY", served.workspace.connection.api_key)
    shown = CliRunner().invoke(app, ["endpoint", "show", served.name])
    assert shown.exit_code == 0, shown.output
    assert all(code in shown.output for code in ("ERR_1300", "ERR_2100", "ERR_2200", "model file is corrupt"))


def test_deployment_telemetry_carries_the_endpoint_and_the_deployment(served, collector):
    for _ in range(5):
        served.invoke({"data": [1]})
    deadline = time.monotonic() + 15
    while True:
        rows = collector.query('requests | project cloud_RoleName, cloud_RoleInstance, id, operation_Id, '
                               'operation_ParentId, d = tostring(customDimensions.Deployment), '
                               'c = tostring(customDimensions.Component)', service=served.name)
        wrapper = [r for r in rows if r["c"] != "router"]
        router = [r for r in rows if r["c"] == "router"]
        # each deployment request is a child of the router's request (one trace, through traceparent)
        spans = {(r["operation_Id"], r["id"]) for r in router}
        if len(wrapper) >= 5 and all((r["operation_Id"], r["operation_ParentId"]) in spans for r in wrapper):
            break
        assert time.monotonic() < deadline, (wrapper, router)
        time.sleep(0.3)
    assert {(r["cloud_RoleName"], r["d"]) for r in rows} == {(served.name, "blue")}
    assert {r["cloud_RoleInstance"] for r in router} == {"router"}
    traces = collector.query('traces | where tostring(customDimensions.Deployment) == "blue" | count', service=served.name)
    assert traces[0]["Count"] >= 1  # blue's init() print

