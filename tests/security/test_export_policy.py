"""Where continuous export may go, and what its settings show (#14, item 12 and the export policy):
folders under the allowed roots only, https unless a flag allows plain http for a local emulator,
never a link-local address, and the destination's secrets masked in what the API returns, with a
PUT of the masked value keeping them."""

from __future__ import annotations

import pytest

from collector.settings import CollectorSettings
from exporters.settings import Destination, DestinationPolicy, SettingsError, parse_destination
from exporters.sinks import SinkError, policed_sinks

ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5"
CONNECTION = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
SAS = "https://acct.blob.core.windows.net/exports?sv=2021-08-06&sr=c&sp=rw&sig=c2lnbmF0dXJl"


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """A collector app with the default export policy (the test session's others allow pytest's
    temp folders and plain http for Azurite)."""
    from in_process import InProcessCollector

    collector = InProcessCollector(tmp_path_factory.mktemp("strict") / "data").start()
    yield collector
    collector.stop()


def put(collector, name: str, body: dict):
    with collector.admin as admin:
        return admin.put(f"/api/services/{name}/export", json={"enabled": False, **body})


def get(collector, name: str) -> dict:
    with collector.admin as admin:
        return admin.get(f"/api/services/{name}/export").json()


def refused(collector, name: str, destination: str, *words: str) -> None:
    container = {"container": "exports"} if "=" in destination and "://" not in destination.split("=")[0] else {}
    response = put(collector, name, {"destination": destination, **container})
    assert response.status_code == 400, (destination, response.text)
    assert response.json()["field"] == "destination"
    for word in words:
        assert word in response.json()["detail"], (destination, response.json())


def test_folders_outside_the_allowed_roots_are_refused(strict, tmp_path):
    name = strict.create_service("roots")["name"]
    data_dir = strict.data_dir
    escape = data_dir / f"escape-{name}"
    escape.symlink_to(tmp_path, target_is_directory=True)
    for outside in ("/etc/cron.d", str(tmp_path / "out"), f"{data_dir}/../elsewhere", str(escape / "x"),
                    f"file://{tmp_path}/out"):
        refused(strict, name, outside, "outside the folders exports may write to", "INSIGHTS_EXPORT_ROOTS")
    inside = put(strict, name, {"destination": str(data_dir / "exports")})
    assert inside.status_code == 200, inside.text
    assert put(strict, name, {}).status_code == 200  # the default, <data-dir>/blob


def test_plain_http_and_link_local_urls_are_refused(strict):
    name = strict.create_service("urls")["name"]
    for destination in ("http://acct.blob.core.windows.net/c?sig=abc",
                        "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=a2V5",
                        "UseDevelopmentStorage=true"):
        refused(strict, name, destination, "is not https", "INSIGHTS_EXPORT_ALLOW_HTTP")
    for metadata in ("https://169.254.169.254/c?sig=abc", "https://2852039166/c?sig=abc", "https://0xa9fea9fe/c?sig=abc",
                     "https://[::ffff:169.254.169.254]/c?sig=abc", "https://[fe80::1]/c?sig=abc", "https://0.0.0.0/c?sig=abc",
                     "BlobEndpoint=https://169.254.169.254/acct;SharedAccessSignature=sv=1&sig=abc"):
        refused(strict, name, metadata, "link-local, unspecified or multicast")
    for allowed in (SAS, CONNECTION):
        response = put(strict, name, {"destination": allowed, **({"container": "exports"} if allowed == CONNECTION else {})})
        assert response.status_code == 200, response.text


def test_the_flag_allows_http_for_a_local_emulator_and_never_link_local(tmp_path):
    settings = CollectorSettings.from_env(tmp_path / "data", environ={
        "INSIGHTS_EXPORT_ALLOW_HTTP": "true", "INSIGHTS_EXPORT_ROOTS": f"{tmp_path / 'a'}:{tmp_path / 'b'}"})
    assert settings.allowed_export_roots == (tmp_path / "data", tmp_path / "a", tmp_path / "b")
    policy = DestinationPolicy(settings.allowed_export_roots, settings.export_allow_http)
    policy.check(parse_destination("http://127.0.0.1:10000/devstoreaccount1/c?sig=abc", None))
    policy.check(parse_destination("UseDevelopmentStorage=true", "exports"))
    policy.check(parse_destination(str(tmp_path / "b" / "deeper"), None))
    with pytest.raises(SettingsError, match="link-local"):
        policy.check(parse_destination("http://169.254.169.254/c?sig=abc", None))
    with pytest.raises(SettingsError, match="outside"):
        policy.check(parse_destination(str(tmp_path / "c"), None))
    assert CollectorSettings.from_env(tmp_path, environ={}).allowed_export_roots == (tmp_path,)


def test_settings_stored_before_the_policy_fail_their_export_with_the_reason(strict, tmp_path):
    """Destinations stored by an older collector (or under roots since narrowed) are checked again
    on every pass: the run fails and says why, nothing is written."""
    import asyncio

    from exporters.settings import validate

    name = strict.create_service("stored")["name"]
    scheduler = strict.app.state.extensions["export"].scheduler
    asyncio.run(scheduler.configure(name, validate({"destination": str(tmp_path / "old"), "enabled": False})))
    with strict.admin as admin:
        run = admin.post(f"/api/services/{name}/export/run", params={"wait": "true"}).json()
    assert run["state"] == "failed" and "refused by the export policy" in run["error"], run
    assert not (tmp_path / "old").exists()
    factory = policed_sinks(DestinationPolicy((tmp_path,)))
    with pytest.raises(SinkError, match="link-local"):
        factory(Destination("sas", url="https://169.254.169.254/c?sig=abc"), tmp_path)


def test_export_secrets_are_masked_and_a_masked_put_keeps_them(strict):
    name = strict.create_service("masked")["name"]
    scheduler = strict.app.state.extensions["export"].scheduler

    answer = put(strict, name, {"destination": CONNECTION, "container": "exports"}).json()
    shown = get(strict, name)
    for view in (answer, shown):
        assert ACCOUNT_KEY not in str(view)
        assert view["destination"] == CONNECTION.replace(ACCOUNT_KEY, "****")

    kept = put(strict, name, {"destination": shown["destination"], "container": "exports", "interval_seconds": 7})
    assert kept.status_code == 200, kept.text
    assert scheduler.settings(name).destination == CONNECTION and scheduler.settings(name).interval_seconds == 7

    other_account = shown["destination"].replace("AccountName=acct", "AccountName=other")
    refused(strict, name, other_account, "masked secret")
    assert scheduler.settings(name).destination == CONNECTION

    assert put(strict, name, {"destination": SAS}).status_code == 200
    assert get(strict, name)["destination"] == SAS.replace("c2lnbmF0dXJl", "****")
    assert put(strict, name, {"destination": get(strict, name)["destination"]}).status_code == 200
    assert scheduler.settings(name).destination == SAS
