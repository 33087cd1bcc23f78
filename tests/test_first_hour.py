"""The first hour of a new user with the `insights` command line (issue 15): copyable connection
strings, the key found from any folder, one clear line instead of a traceback, idempotent import."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from collector_process import NO_PHONE_HOME, free_port


def _clean_env(**extra: str) -> dict:
    """The environment without any INSIGHTS_* variable, at 80 columns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSIGHTS_")}
    return {**env, **NO_PHONE_HOME, "COLUMNS": "80", **extra}


def _cli(*args: str, env: dict, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collector", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def _admin(collector, **extra: str) -> dict:
    return _clean_env(**{"INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key, **extra})


def test_the_export_line_is_whole_at_80_columns_and_evals_to_the_connection_string(collector):
    created = _cli("service", "create", "first-hour-cs", env=_admin(collector))
    assert created.returncode == 0, created.stderr
    (line,) = [line for line in created.stdout.splitlines() if line.startswith("export APPLICATIONINSIGHTS_")]
    evaluated = subprocess.run(["bash", "-c", f"{line}\nprintf %s \"$APPLICATIONINSIGHTS_CONNECTION_STRING\""],
                               capture_output=True, text=True, check=True).stdout
    expected = collector.client().get("/api/services/first-hour-cs",
                                      headers={"x-api-key": collector.admin_key}).json()["connection_string"]
    assert evaluated == expected and len(line) > 80
    assert shlex.split(line)[1] == f"APPLICATIONINSIGHTS_CONNECTION_STRING={expected}"
    # the table's lines hold the connection string whole too, and the list never cuts a key with "…"
    assert any(expected in line for line in created.stdout.splitlines() if line.startswith("connection_string"))
    listed = _cli("service", "list", env=_admin(collector)).stdout
    ikey_column = "".join(line.split("│")[3].strip() for line in listed.splitlines() if line.count("│") > 3)
    assert expected.split(";")[0].removeprefix("InstrumentationKey=") in ikey_column


def _up(data_dir: Path, port: int, env: dict, dashboard_port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "collector", "up", "--data-dir", str(data_dir), "--port", str(port),
                             "--dashboard-port", str(dashboard_port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _answers(url: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def test_up_writes_a_user_config_that_commands_find_from_any_folder(tmp_path):
    """`insights up` records its URL and key file (0600); a later command from another folder, with
    no INSIGHTS_* variable, finds the collector. A second `up` on the same data dir says in one line
    who holds it; a taken dashboard port is said, not announced as the dashboard."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir(), elsewhere.mkdir()
    env = _clean_env(HOME=str(home), XDG_CONFIG_HOME=str(home / "xdg"))
    port, data_dir = free_port(), tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        dashboard_port = taken.getsockname()[1]
        up = _up(data_dir, port, env, dashboard_port)
        try:
            assert _answers(f"http://127.0.0.1:{port}"), up.stdout.read() if up.poll() is not None else "no answer"
            config = home / "xdg" / "insights" / "config.json"
            assert config.stat().st_mode & 0o777 == 0o600
            values = json.loads(config.read_text())
            assert values == {"url": f"http://127.0.0.1:{port}", "key_file": str((data_dir / "admin.key").resolve())}
            assert (data_dir / "admin.key").read_text().strip() not in config.read_text()

            created = _cli("service", "create", "from-anywhere", env=env, cwd=elsewhere)
            assert created.returncode == 0, created.stderr
            listed = _cli("service", "list", env=env, cwd=elsewhere)
            assert listed.returncode == 0 and "from-anywhere" in listed.stdout, listed.stderr

            second = subprocess.run([sys.executable, "-m", "collector", "up", "--data-dir", str(data_dir), "--port",
                                     str(free_port()), "--no-dashboard"], env=env, capture_output=True, text=True,
                                    timeout=60)
            assert second.returncode == 1
            message = " ".join(second.stderr.split())
            assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) <= 3, second.stderr
            assert str(data_dir.resolve()) in message.replace(" ", "") or str(data_dir.resolve()) in message
            assert f"process {up.pid}" in message
        finally:
            up.terminate()
            output = up.communicate(timeout=30)[0]
    joined = " ".join(output.split())
    key = (data_dir / "admin.key").read_text().strip()
    assert any(key in line and "admin key" in line for line in output.splitlines()), output  # one line at 80 columns
    assert f"port {dashboard_port} is taken" in joined and f"dashboard on http://127.0.0.1:{dashboard_port}" not in joined


def test_a_missing_key_names_the_user_config_among_the_places_looked_at(collector, tmp_path):
    env = _clean_env(INSIGHTS_URL=collector.url, HOME=str(tmp_path), COLUMNS="1000")
    env.pop("XDG_CONFIG_HOME", None)
    result = _cli("service", "list", env=env, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert str(tmp_path / ".config" / "insights" / "config.json") in result.stderr


def test_import_of_a_missing_file_is_one_clear_line(collector, tmp_path):
    result = _cli("import", "--service", "whatever", str(tmp_path / "nope.blob"), env=_admin(collector))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no such file" in result.stderr and "nope.blob" in result.stderr


def test_importing_the_same_blob_twice_stores_each_item_once(collector, tmp_path):
    service = collector.create_service("idem")
    blob = tmp_path / "rows.blob"
    rows = [{"itemType": "trace", "timestamp": f"2026-11-23T16:53:{n:02d}Z", "message": f"m{n}", "itemId": f"id-{n}"}
            for n in range(5)]
    rows.append({"itemType": "request", "timestamp": "2026-11-23T16:54:00Z", "name": "POST /score", "duration": 1.0,
                 "success": True, "resultCode": "200", "itemId": "id-0"})  # the same id in another table is another item
    blob.write_text("\n".join(json.dumps(row) for row in [*rows, rows[1]]) + "\n")  # and one repeated in the body
    for _ in range(2):
        result = _cli("import", "--service", service["name"], str(blob), env=_admin(collector))
        assert result.returncode == 0, result.stderr
    traces = collector.query("traces | order by timestamp asc", service=service["name"])
    assert [row["itemId"] for row in traces] == [f"id-{n}" for n in range(5)]
    assert len(collector.query("requests", service=service["name"])) == 1


def test_csv_output_ends_lines_with_lf(collector):
    service = collector.create_service("csvlf")
    result = subprocess.run([sys.executable, "-m", "collector", "query", "print a = 1, b = 'x'", "--service",
                             service["name"], "--format", "csv"], env=_admin(collector), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"a,b\n1,x\n"


def test_help_keeps_option_names_whole_at_80_columns_without_bool():
    result = _cli("service", "update", "--help", env=_clean_env())
    assert result.returncode == 0
    assert "--enable-app-insights" in result.stdout and "--disable-app-insights" in result.stdout
    assert "<bool>" not in result.stdout and "…" not in result.stdout
    assert "<bool>" not in _cli("up", "--help", env=_clean_env()).stdout


def test_doctor_passes_a_good_setup_and_names_each_fault(collector):
    service = collector.create_service("doctor")
    good = _cli("doctor", env=_admin(collector))
    assert good.returncode == 0, good.stdout
    assert "key found (the key came from INSIGHTS_API_KEY)" in good.stdout and "FAIL" not in good.stdout
    assert "no acknowledged items set aside by the store" in good.stdout

    wrong_key = _cli("doctor", env=_admin(collector, INSIGHTS_API_KEY="not-the-key"))
    assert wrong_key.returncode == 1 and "the collector refuses the key" in wrong_key.stdout

    missing = _cli("doctor", "--service", "no-such-service", env=_admin(collector))
    assert missing.returncode == 1 and "no service named 'no-such-service'" in missing.stdout

    silent = _cli("doctor", "--service", service["name"], env=_admin(collector))
    assert silent.returncode == 1 and f"service '{service['name']}' exists" in silent.stdout
    assert "has reported lately" in silent.stdout

    phoning = {k: v for k, v in _admin(collector).items() if k != "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED"}
    unset = _cli("doctor", env=phoning)
    assert unset.returncode == 1
    assert "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED not set to true" in unset.stdout

    down = _cli("doctor", env=_admin(collector, INSIGHTS_URL=f"http://127.0.0.1:{free_port()}"))
    assert down.returncode == 1 and "collector not reachable" in down.stdout


def test_concurrent_imports_of_the_same_rows_store_each_item_once(collector):
    service = collector.create_service("idem-race")
    body = "\n".join(json.dumps({"itemType": "trace", "timestamp": "2026-11-23T16:53:00Z", "message": f"m{n}",
                                 "itemId": f"race-{n}"}) for n in range(2000)).encode()

    def post(_: int) -> int:
        with collector.client(headers={"x-api-key": collector.admin_key}) as client:
            return client.post(f"/api/services/{service['name']}/import", content=body, timeout=60).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(post, range(4))) == [200] * 4
    assert collector.query("traces | count", service=service["name"])[0]["Count"] == 2000
