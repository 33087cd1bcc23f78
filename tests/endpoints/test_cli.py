"""`insights endpoint ...` as a user types it, against the real collector: create, a deployment,
the split in Azure's space-separated form, invoke with a request file, show, get-logs, keys, delete."""

import json
import uuid

from endpoint_scripts import SCRIPTS
from typer.testing import CliRunner

from insights.cli import app


def test_the_endpoint_commands_end_to_end(collector, tmp_path, monkeypatch):
    monkeypatch.setenv("INSIGHTS_URL", collector.url)
    monkeypatch.setenv("INSIGHTS_API_KEY", collector.admin_key)
    runner = CliRunner()
    name = f"cli-{uuid.uuid4().hex[:8]}"

    def insights(*args: str) -> str:
        result = runner.invoke(app, ["endpoint", *args])
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.output

    created = insights("create", name, "--rate-limit", "500")
    assert f"name: {name}" in created and "scoring_uri: http://127.0.0.1:" in created
    assert "deployment blue: Succeeded" in insights("deployment", "create", name, "--deployment", "blue",
                                                    "--entry_script", str(SCRIPTS / "blue_score.py"))
    assert "{'blue': 100}" in insights("update", name, "--traffic", "blue=100 ")
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"data": [1, 2]}))
    assert json.loads(insights("invoke", name, "--request-file", str(request))) == {"deployment": "blue", "result": [2, 4]}
    assert "Succeeded" in insights("show", name)
    assert "blue init" in insights("get-logs", name, "--deployment", "blue")
    keys = json.loads(insights("get-credentials", name))
    renewed = json.loads(insights("regenerate-keys", name, "--key-type", "primary"))
    assert renewed["primaryKey"] != keys["primaryKey"] and renewed["secondaryKey"] == keys["secondaryKey"]
    wrong = runner.invoke(app, ["endpoint", "update", name, "--traffic", "blue=90,green=10"])
    assert wrong.exit_code == 1 and "no deployment named green" in str(wrong.exception)
    assert f"deleted {name}" in insights("delete", name, "--yes")
    gone = runner.invoke(app, ["endpoint", "show", name])
    assert gone.exit_code == 1 and "no endpoint named" in str(gone.exception)
