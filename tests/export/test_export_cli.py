"""`insights export configure|run|status` against a real collector (the typer app the CLI mounts)."""

from exported import folder_blobs, items_of
from items import lines, mixed_items
from typer.testing import CliRunner

from exporters.cli import export_app


def _invoke(exporting, *args):
    env = {"INSIGHTS_URL": exporting.url, "INSIGHTS_API_KEY": exporting.admin_key, "COLUMNS": "200"}
    return CliRunner().invoke(export_app, list(args), env=env)


def test_configure_run_status(exporting, tmp_path):
    service = exporting.create_service("exp-cli")
    name = service["name"]
    exporting.import_rows(name, lines(mixed_items(500, seed=51)))

    configured = _invoke(exporting, "configure", name, "--destination", str(tmp_path), "--types", "Requests,Messages",
                         "--disable", "--interval", "30")
    assert configured.exit_code == 0, configured.output
    assert "Requests, Messages" in configured.output

    ran = _invoke(exporting, "run", name)
    assert ran.exit_code == 0, ran.output
    assert len(items_of(folder_blobs(tmp_path))) == 168  # 84 requests + 84 traces of the 500 mixed items

    status = _invoke(exporting, "status", name)
    assert status.exit_code == 0, status.output
    assert name in status.output and "168" in status.output


def test_a_first_configure_turns_export_on(exporting, tmp_path):
    """An unconfigured service's settings say enabled: false (as its status does); configuring it
    without --disable still turns export on."""
    name = exporting.create_service("exp-cli-first")["name"]
    assert _invoke(exporting, "configure", name, "--destination", str(tmp_path)).exit_code == 0
    with exporting.admin as admin:
        assert admin.get(f"/api/services/{name}/export").json()["enabled"] is True
        assert admin.get(f"/api/services/{name}/export/status").json()["enabled"] is True


def test_configure_reports_the_bad_field(exporting):
    service = exporting.create_service("exp-cli-bad")
    result = _invoke(exporting, "configure", service["name"], "--types", "Requests,Pageviews")
    assert result.exit_code != 0
    assert "types: unknown type 'Pageviews'" in str(result.exception)


def test_run_of_a_failing_destination_exits_1(exporting):
    service = exporting.create_service("exp-cli-fail")
    exporting.import_rows(service["name"], lines(mixed_items(6, seed=52)))
    dead = "http://127.0.0.1:9/devstoreaccount1/c?sv=2021-08-06&sig=abc"
    assert _invoke(exporting, "configure", service["name"], "--destination", dead, "--disable").exit_code == 0
    result = _invoke(exporting, "run", service["name"])
    assert result.exit_code == 1
