"""The SDK around a wrapper: Workspace.from_config, Webservice.state and .scoring_uri from the
wrappers' heartbeats, deploy_configuration, and LocalWebservice running `insights score` for real."""

import json
import time

import pytest
from wrapper_process import SCRIPTS

from collector.api.wrappers import STALE_AFTER_S, Report, Reports
from collector.client import (
    DEFAULT_URL,
    ConfigError,
    DeploymentFailed,
    LocalWebservice,
    ScoringError,
    Webservice,
    Workspace,
    resolve_collector,
)


def _until(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_from_config_walks_up_then_falls_back_to_the_environment(scoring_collector, tmp_path, monkeypatch):
    monkeypatch.delenv("INSIGHTS_URL", raising=False)
    monkeypatch.delenv("INSIGHTS_API_KEY", raising=False)
    project = tmp_path / "project"
    (project / ".insights").mkdir(parents=True)
    (project / ".insights" / "config.json").write_text(json.dumps({"url": scoring_collector.url,
                                                                   "api_key": scoring_collector.admin_key}))
    (project / "src" / "deep").mkdir(parents=True)
    (project / "src" / "config.json").write_text(json.dumps({"subscription_id": "an Azure ML config"}))
    monkeypatch.chdir(project / "src" / "deep")
    found = Workspace.from_config()
    assert found.config_path == project / ".insights" / "config.json"
    assert found.url == scoring_collector.url and isinstance(found.webservices, dict)

    explicit = tmp_path / "elsewhere.json"
    explicit.write_text(json.dumps({"url": scoring_collector.url}))  # the key from the environment
    monkeypatch.setenv("INSIGHTS_API_KEY", scoring_collector.admin_key)
    assert isinstance(Workspace.from_config(explicit).webservices, dict)
    with pytest.raises(ConfigError, match="no config file"):
        Workspace.from_config(tmp_path / "missing")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="broken.json"):
        Workspace.from_config(tmp_path / "broken.json")

    monkeypatch.delenv("INSIGHTS_API_KEY")  # nothing but the environment's URL and the data dir's admin.key
    data_dir = tmp_path / "insights-data"
    data_dir.mkdir()
    (data_dir / "admin.key").write_text(scoring_collector.admin_key + "\n")
    monkeypatch.setenv("INSIGHTS_URL", scoring_collector.url)
    monkeypatch.setenv("INSIGHTS_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    from_environment = Workspace.from_config()
    assert from_environment.config_path is None and isinstance(from_environment.webservices, dict)


def test_resolve_collector_takes_each_value_from_the_first_place_that_has_it(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "admin.key").write_text("from-file\n")
    key_file = str((data_dir / "admin.key").resolve())
    config = data_dir / "config.json"
    config.write_text(json.dumps({"url": "http://config:1/", "api_key": "from-config"}))
    environ = {"INSIGHTS_URL": "http://env:2/", "INSIGHTS_API_KEY": "from-env", "INSIGHTS_DATA_DIR": str(data_dir)}

    explicit = resolve_collector("http://arg:3/", "from-arg", config=config, environ=environ)
    assert (explicit.url, explicit.api_key, explicit.source) == ("http://arg:3", "from-arg", "the api_key argument")
    from_config = resolve_collector(config=config, environ=environ)  # a config file asked for beats the environment
    assert (from_config.url, from_config.api_key, from_config.source) == ("http://config:1", "from-config", str(config))
    assert from_config.config_path == config and from_config.looked_at == (str(config),)
    from_env = resolve_collector(environ=environ)  # no config file unless asked for
    assert (from_env.url, from_env.api_key, from_env.source) == ("http://env:2", "from-env", "INSIGHTS_API_KEY")
    assert from_env.key_hint() == "the key came from INSIGHTS_API_KEY"
    from_file = resolve_collector(environ={"INSIGHTS_API_KEY": "", "INSIGHTS_DATA_DIR": str(data_dir)})
    assert (from_file.url, from_file.api_key, from_file.source) == (DEFAULT_URL, "from-file", key_file)
    assert from_file.looked_at == ("INSIGHTS_API_KEY", key_file)

    nowhere = resolve_collector(environ={"INSIGHTS_DATA_DIR": str(tmp_path / "none")})
    assert nowhere.api_key is None and nowhere.source is None
    assert nowhere.key_hint() == f"no key: looked at INSIGHTS_API_KEY, {(tmp_path / 'none' / 'admin.key').resolve()}"
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    searched = resolve_collector(config=True, environ={})
    assert searched.config_path is None and "INSIGHTS_API_KEY" in searched.looked_at
    assert searched.looked_at[0].startswith(".insights/config.json or config.json in ")
    assert searched.looked_at[-1] == str((tmp_path / "empty" / "insights-data" / "admin.key").resolve())


def test_deploy_configuration_is_a_config_object():
    config = Webservice.deploy_configuration(enable_app_insights=False, port=5055, worker_count=2, scoring_timeout_ms=500)
    assert (config.enable_app_insights, config.port, config.worker_count) == (False, 5055, 2)
    assert config.arguments()[:4] == ["--host", "127.0.0.1", "--worker_count", "2"]
    assert config.environment()["SCORING_TIMEOUT_MS"] == "500"
    with pytest.raises(ConfigError, match="colour"):
        Webservice.deploy_configuration(colour="blue")


def test_local_webservice_runs_scores_logs_reports_and_stops(scoring_collector, tmp_path):
    workspace = Workspace(scoring_collector.url, api_key=scoring_collector.admin_key)
    name = f"local-{time.monotonic_ns() % 10**8}"
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.txt").write_text("v7")
    config = LocalWebservice.deploy_configuration(enable_app_insights=True, scoring_timeout_ms=5000)
    service = LocalWebservice.deploy(workspace, name, SCRIPTS / "model_score.py", model_dir=model_dir,
                                     deployment_config=config, spool_dir=tmp_path / "spool")
    try:
        assert service.state == "Healthy"
        assert service.run({"x": 1}) == {"model": "v7", "input": '{"x": 1}'}
        assert service.run('{"raw": true}')["input"] == '{"raw": true}'
        remote = Webservice(workspace, name)
        assert _until(lambda: remote.state == "Healthy"), remote.wrapper_state()
        assert remote.scoring_uri == service.scoring_uri == f"http://127.0.0.1:{service.port}/score"
        assert _until(lambda: "loaded model v7" in service.get_logs(lines=50)), service.get_logs()
    finally:
        service.delete()
    assert service.exit_code == 0 and service.state == "Stopped"  # a clean stop is no failure
    after = Webservice(workspace, name).wrapper_state()
    assert after["state"] == "Stopped" and "stopped" in after["detail"], after
    assert after["instances"][0]["reported_state"] == "Stopped"
    with pytest.raises(ScoringError):
        service.run({"x": 1})


def test_local_webservice_that_cannot_start_says_why(scoring_collector, tmp_path):
    workspace = Workspace(scoring_collector.url, api_key=scoring_collector.admin_key)
    with pytest.raises(DeploymentFailed) as failure:
        LocalWebservice.deploy(workspace, f"broken-{time.monotonic_ns() % 10**8}", SCRIPTS / "crash_score.py",
                               spool_dir=tmp_path / "spool", timeout=30)
    assert "exited with code 3" in str(failure.value)
    assert "FileNotFoundError: model file /nowhere/model.pkl is missing" in failure.value.logs


def test_service_without_a_wrapper_is_unknown(scoring_collector):
    service = scoring_collector.create_service("never-ran")
    remote = Webservice(Workspace(scoring_collector.url, api_key=service["api_key"]), service["name"])
    assert (remote.state, remote.scoring_uri) == ("Unknown", None)


def test_state_is_never_guessed():
    reports = Reports()
    uri = "http://host:5001/score"
    reports.add("svc", Report(instance="a:5001", state="Unhealthy", detail="init() has not finished", scoring_uri=uri), now=0)
    assert reports.state("svc", now=1)["state"] == "Unhealthy"
    reports.add("svc", Report(instance="a:5001", state="Healthy", scoring_uri=uri), now=2)
    assert reports.state("svc", now=3)["state"] == "Healthy"
    silent = reports.state("svc", now=3 + STALE_AFTER_S)
    assert silent["state"] == "Unknown" and "no report" in silent["detail"] and silent["scoring_uri"] == uri
    reports.add("svc", Report(instance="b:5001", state="Healthy", scoring_uri="http://b:5001/score"), now=20)
    assert reports.state("svc", now=21)["scoring_uri"] == "http://b:5001/score"  # the healthy one
    reports.add("svc", Report(instance="b:5001", state="Stopped", detail="exit code 0", exit_code=0), now=22)
    stopped = reports.state("svc", now=23)
    assert stopped["state"] == "Unknown"  # a is silent: it may still run
    reports.add("svc", Report(instance="a:5001", state="Stopped", detail="exit code 0"), now=24)  # an older wrapper
    stopped = reports.state("svc", now=25)
    assert stopped["state"] == "Stopped" and "stopped" in stopped["detail"], stopped
    assert reports.state("svc", now=25 + STALE_AFTER_S)["state"] == "Stopped"  # a clean stop stays true
    reports.add("svc", Report(instance="b:5001", state="Stopped", detail="exit code 3", exit_code=3), now=26)
    crashed = reports.state("svc", now=27)
    assert crashed["state"] == "Unhealthy" and "exit code 3" in crashed["detail"], crashed
    assert reports.state("other", now=0)["state"] == "Unknown"
