"""docker-compose.yml's `clickhouse` profile (a ClickHouse server, a one-shot migrate, two collectors and
a load balancer), checked as text: no container engine can run it here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer
import yaml

from collector.store.clickhouse.location import parse
from insights.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _profile() -> tuple[dict, dict]:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = {name: s for name, s in spec["services"].items() if "clickhouse" in s.get("profiles", [])}
    return spec, services


def _parse(args: list[str]):
    """The click context of `insights ...` as the CLI parses these arguments."""
    command = typer.main.get_command(app)
    args = args[1:] if args[0] == "insights" else args
    while args and args[0] in getattr(command, "commands", {}):
        command, args = command.commands[args[0]], args[1:]
    return command.make_context(command.name, list(args))


def test_scaleout_compose_profile_runs_two_collectors_on_one_clickhouse_behind_a_balancer():
    spec, services = _profile()
    assert set(services) == {"clickhouse", "store-migrate", "collector-1", "collector-2", "lb", "dashboard-scaleout"}
    # the profile's services start only when asked for; the default ones are untouched
    assert {"collector", "dashboard", "azurite"} <= set(spec["services"])
    assert all("profiles" not in spec["services"][name] for name in ("collector", "dashboard", "azurite"))

    migrate = services["store-migrate"]
    assert shlex.split(migrate["command"]) == ["insights", "store", "migrate"]
    assert migrate["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    location = parse(migrate["environment"]["INSIGHTS_STORE"], environ={})
    assert (location.host, location.port, location.user) == ("clickhouse", 8123, "insights")
    assert services["clickhouse"]["environment"]["CLICKHOUSE_USER"] == location.user

    collectors = [services["collector-1"], services["collector-2"]]
    for collector in collectors:
        up = _parse(shlex.split(collector["command"]))
        assert up.params["no_dashboard"] is True and up.params["host"] == "0.0.0.0" and up.params["port"] == 8080
        env = collector["environment"]
        assert env["INSIGHTS_STORE"] == migrate["environment"]["INSIGHTS_STORE"]  # one store
        assert env["INSIGHTS_STORE_PASSWORD"].startswith("${INSIGHTS_STORE_PASSWORD")  # never written here
        assert env["INSIGHTS_API_KEY"].startswith("${INSIGHTS_API_KEY")  # one admin key for all
        assert collector["depends_on"]["store-migrate"]["condition"] == "service_completed_successfully"
        assert "/healthz" in " ".join(collector["healthcheck"]["test"])
        assert "ports" not in collector  # reached through the balancer only
    assert {c["environment"]["INSIGHTS_COLLECTOR_ID"] for c in collectors} == {"1", "2"}  # distinct _seq ids
    assert len({c["volumes"][0].split(":")[0] for c in collectors}) == 2  # a data dir each

    lb = services["lb"]
    config = spec["configs"][lb["configs"][0]["source"]]["content"]
    upstream = re.findall(r"server (collector-\d):(\d+)", config)
    assert upstream == [("collector-1", "8080"), ("collector-2", "8080")]
    listen = re.search(r"listen (\d+);", config).group(1)
    assert lb["ports"] == [f"127.0.0.1:8090:{listen}"]
    assert "$$host" in config and "proxy_buffering off" in config
    dashboard = _parse(shlex.split(services["dashboard-scaleout"]["command"]))
    assert dashboard.params["collector"] == f"http://lb:{listen}"
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in spec["volumes"], (name, volume)
