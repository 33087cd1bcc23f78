"""Deployments that fail each way the managed online endpoints report (ERR_1300, ERR_2100,
ERR_2200), with their logs, while the endpoint keeps serving from the healthy one; and the
telemetry each deployment sends (the endpoint as role, a Deployment dimension)."""

import subprocess
import sys
import time

import pytest
from conftest import SCRIPTS

from collector.client import DeploymentFailed


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


def test_each_failure_has_its_code_and_logs_and_the_endpoint_keeps_serving(served, tmp_path):
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
    deadline = time.monotonic() + 10
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

    shown = subprocess.run([sys.executable, "-m", "insights", "endpoint", "show", served.name],
                           capture_output=True, text=True, env=_cli_env(served))
    assert shown.returncode == 0, shown.stderr
    assert "ERR_2200" in shown.stdout and "ERR_2100" in shown.stdout and "ERR_1300" in shown.stdout


def test_deployment_telemetry_carries_the_endpoint_and_the_deployment(served, collector):
    for _ in range(5):
        served.invoke({"data": [1]})
    deadline = time.monotonic() + 15
    while True:
        rows = collector.query('requests | project cloud_RoleName, cloud_RoleInstance, '
                               'd = tostring(customDimensions.Deployment), c = tostring(customDimensions.Component)',
                               service=served.name)
        wrapper = [r for r in rows if r["c"] != "router"]
        router = [r for r in rows if r["c"] == "router"]
        if len(wrapper) >= 5 and len(router) >= 5:
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.3)
    assert {(r["cloud_RoleName"], r["d"]) for r in rows} == {(served.name, "blue")}
    assert {r["cloud_RoleInstance"] for r in router} == {"router"}
    traces = collector.query('traces | where tostring(customDimensions.Deployment) == "blue" | count', service=served.name)
    assert traces[0]["Count"] >= 1  # blue's init() print


def _cli_env(endpoint) -> dict:
    import os

    return {**os.environ, "INSIGHTS_URL": endpoint.workspace.url, "INSIGHTS_API_KEY": endpoint.workspace.connection.api_key}
