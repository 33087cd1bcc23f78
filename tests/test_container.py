"""The container deployment without a container engine (none here): what the image runs, and the compose
file kept true to the CLI. And the collector's API docs, which must work offline (in a container or not).

test_image_install_and_command runs the Dockerfile's own lines: its COPY list out of a read-only copy of
the source, its install (offline: a fresh virtual environment that reuses this one's dependencies, the
project itself built and installed from the copied files, not editable), then its CMD from another folder
once the copied source is gone, as the image does. It proves the COPY list is complete, the install
writes only into the image's own copy (never the read-only source), and the installed package starts and answers /healthz. It does not prove the
base image, `useradd`, pulling dependencies from PyPI, or Docker's volume and port plumbing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import sysconfig
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import yaml
from collector_process import NO_PHONE_HOME, free_port

ROOT = Path(__file__).resolve().parent.parent


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each line of the Dockerfile, comments and continuations handled."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def instruction(name: str) -> list[str]:
    return [arguments for keyword, arguments in dockerfile() if keyword == name]


def compose() -> dict:
    """The compose file with its default services only (those of a profile, such as `clickhouse`, start
    only when asked for: tests/clickhouse/test_scaleout_compose.py checks them)."""
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    spec["services"] = {name: service for name, service in spec["services"].items() if "profiles" not in service}
    spec["volumes"] = {name: volume for name, volume in spec["volumes"].items()
                       if any(name in " ".join(s.get("volumes", [])) for s in spec["services"].values())}
    return spec


def cli_command(*path: str):
    """The click command typer builds for `insights <path>`: the flags the CLI really takes."""
    import typer

    from insights.cli import app

    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def parse_cli(args: list[str]):
    """`args` (starting with 'insights') parsed by the CLI's own parser: unknown flags or bad values raise."""
    assert args[0] == "insights", args
    command = cli_command(args[1])
    return command.make_context(args[1], list(args[2:]))


def option(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


class Assets(HTMLParser):
    """Every URL a page loads: scripts, stylesheets, icons."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.urls.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"])


def test_docs_and_redoc_load_every_asset_from_the_collector_itself(collector):
    """/docs and /redoc (and what they load) come from the collector: FastAPI's defaults pointed at a
    CDN, a blank page offline."""
    pages = {}
    with collector.client() as client:
        for path in ("/docs", "/redoc"):
            page = client.get(path)
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            parser = Assets()
            parser.feed(page.text)
            # The page also names the spec it renders, in its inline script.
            spec = re.search(r"""(?:url|spec-url)['"]?\s*[:=]\s*['"]([^'"]+)""", page.text)
            assert spec and spec.group(1).endswith("/openapi.json"), page.text
            pages[path] = parser.urls + [spec.group(1)]
            assert any(url.endswith(".js") for url in parser.urls), page.text
            assert "https://" not in page.text and "http://" not in page.text.replace(collector.url, ""), page.text
        for path, urls in pages.items():
            for url in urls:
                absolute = urljoin(collector.url + path, url)
                assert urlsplit(absolute).netloc == urlsplit(collector.url).netloc, (path, url)
                asset = client.get(absolute)
                assert asset.status_code == 200 and len(asset.content) > 100, (path, url, asset.status_code)
        assert "/api/services" in json.dumps(client.get("/openapi.json").json()["paths"])


def test_compose_file_matches_the_cli_and_the_image():
    """Each service's command parses with the CLI's own flags; ports are published on 127.0.0.1 only
    and match what the command listens on; volumes are the named ones and the data dir is the volume;
    every service has a health check against its own port."""
    spec = compose()
    services = spec["services"]
    assert set(services) == {"collector", "dashboard", "azurite"}
    assert set(spec["volumes"]) == {"insights-data", "azurite-data"}
    cmd = json.loads(instruction("CMD")[-1])

    collector = services["collector"]
    collector_args = shlex.split(collector["command"]) if "command" in collector else cmd
    up = parse_cli(collector_args)
    assert up.params["no_dashboard"] is True  # the dashboard is a service of its own
    assert up.params["host"] == "0.0.0.0"  # inside the container; what is published is bound below
    assert str(up.params["data_dir"]) == collector["environment"]["INSIGHTS_DATA_DIR"] == "/data"
    assert collector["volumes"] == ["insights-data:/data"]
    assert instruction("VOLUME") == ["/data"]
    assert collector["ports"] == [f"127.0.0.1:{up.params['port']}:{up.params['port']}"]

    dashboard = services["dashboard"]
    board = parse_cli(shlex.split(dashboard["command"]))
    assert board.params["address"] == "0.0.0.0"
    assert board.params["collector"] == f"http://collector:{up.params['port']}"
    assert dashboard["ports"] == [f"127.0.0.1:{board.params['port']}:{board.params['port']}"]
    assert dashboard["depends_on"]["collector"]["condition"] == "service_healthy"
    assert dashboard["image"] == collector["image"] and dashboard["build"] == collector["build"] == "."

    azurite = services["azurite"]
    blob_port = int(option(azurite["command"].split(), "--blobPort"))
    assert option(azurite["command"].split(), "--blobHost") == "0.0.0.0"
    assert azurite["ports"] == [f"127.0.0.1:{blob_port}:{blob_port}"]
    assert azurite["volumes"] == ["azurite-data:/data"]

    expected_health = {"collector": f"http://127.0.0.1:{up.params['port']}/healthz",
                       "dashboard": f"http://127.0.0.1:{board.params['port']}/_stcore/health",
                       "azurite": f"connect({blob_port}, '127.0.0.1')"}
    for name, service in services.items():
        check = service["healthcheck"]
        assert check["test"][0] == "CMD" and expected_health[name] in " ".join(check["test"]), (name, check)
        assert check.get("interval") and check.get("retries"), (name, check)
        for port in service["ports"]:
            assert port.startswith("127.0.0.1:"), (name, port)
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in spec["volumes"], (name, volume)


def test_dockerfile_installs_at_build_time_as_a_non_root_user():
    runs = " && ".join(instruction("RUN"))
    assert "pip install" in runs and "-e " not in runs and "--editable" not in runs
    assert instruction("USER") and instruction("USER")[-1] not in ("root", "0")
    assert instruction("VOLUME") == ["/data"]
    assert "chown" in runs and "/data" in runs
    assert json.loads(instruction("CMD")[-1])[0] == "insights"  # an installed console script, not the source tree
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv*" in ignored and ".git" in ignored


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*")}


def test_image_install_and_command(tmp_path):
    """The Dockerfile's COPY, install and CMD, run as the image build and start would (see the module's
    docstring for what this does and does not prove)."""
    # The build context, as `docker build .` sends it: the working tree minus .dockerignore (here, only the
    # paths the COPY lines name), copied read-only.
    context = tmp_path / "context"
    ignore = shutil.ignore_patterns(*(line.strip().removeprefix("**/") for line in (ROOT / ".dockerignore").read_text().splitlines()
                                      if line.strip() and not line.startswith("#")))
    context.mkdir()
    for arguments in instruction("COPY"):
        for source in arguments.split()[:-1]:
            (shutil.copytree(ROOT / source, context / source, ignore=ignore) if (ROOT / source).is_dir()
             else shutil.copy2(ROOT / source, context / source))
    # The image's /src: exactly what the COPY lines put there.
    workdir = Path(instruction("WORKDIR")[0])
    assert workdir == Path("/src")
    src = tmp_path / "src"
    src.mkdir()
    for arguments in instruction("COPY"):
        *sources, destination = arguments.split()
        for source in sources:
            target = src / destination if destination not in ("./", ".") else src / source
            if destination.endswith("/"):
                target = src / destination / source
            (shutil.copytree if (context / source).is_dir() else shutil.copy2)(context / source, target)
    # The context is read-only (a mount, as the old compose file installed from); /src is the image's own
    # writable copy, where setuptools may write build/ and *.egg-info before `rm -rf /src`. (As root the
    # mode bits stop nothing: the snapshot below is the check.)
    for path in [context, *context.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _snapshot(context)

    # A fresh virtual environment: its own site-packages, which also sees this one's dependencies (a
    # path, not this environment's .pth files: the editable install of the project stays out of it).
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    install = [run for run in instruction("RUN") if "pip install" in run]
    assert install == ["pip install --no-cache-dir . && rm -rf /src"]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("INSIGHTS_", "PYTHON", "PIP_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    # Offline: no index, no build isolation (setuptools from this environment), the deps already there.
    subprocess.run([python, "-m", "pip", "install", "--no-cache-dir", "--no-index", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-q", "."], cwd=src, env=env, check=True, timeout=300)
    assert _snapshot(context) == before, "the install wrote into the build context"
    shutil.rmtree(src)  # `rm -rf /src`: what runs next must not need the source

    home = tmp_path / "home"
    home.mkdir()
    where = subprocess.run([python, "-c", "import collector, insights; print(collector.__file__); print(insights.__file__)"],
                           cwd=home, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(module).is_relative_to(site) for module in where), where

    # The CMD, with its listening address, port and data dir moved to this test's (127.0.0.1, a free port,
    # a temp dir); every other argument as written.
    command = json.loads(instruction("CMD")[-1])
    port = free_port()
    data = tmp_path / "data"
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    command[command.index("--data-dir") + 1] = str(data)
    command[0] = str(venv / "bin" / command[0])  # the console script the install made
    env.update(NO_PHONE_HOME, INSIGHTS_DATA_DIR=str(data), HOME=str(home))
    log = tmp_path / "collector.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=home, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code
            except httpx.TransportError:
                status = None
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, log.read_text()[-3000:]
        assert (data / "admin.key").exists()
        assert httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5).status_code == 200
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_compose_health_checks_tell_up_from_down(collector):
    """Each service's health check, run as written (its port moved to one on this machine): it passes
    against the collector itself (collector) or a server answering the checked path (dashboard, azurite),
    and fails with nothing listening."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/_stcore/health" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    stub = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    services = compose()["services"]
    live = {"collector": collector.port, "dashboard": stub.server_address[1], "azurite": stub.server_address[1]}
    container_ports = {"collector": 8080, "dashboard": 8501, "azurite": 10000}
    try:
        for name, service in services.items():
            test = service["healthcheck"]["test"][1:]
            interpreter = {"python": sys.executable, "node": shutil.which("node")}[test[0]]
            assert interpreter, f"{test[0]} is needed to run {name}'s health check"
            for port, healthy in ((live[name], True), (free_port(), False)):
                command = [interpreter] + [part.replace(str(container_ports[name]), str(port)) for part in test[1:]]
                assert any(str(port) in part for part in command), (name, command)
                result = subprocess.run(command, capture_output=True, timeout=30)
                assert (result.returncode == 0) == healthy, (name, port, healthy, result.stderr[-500:])
    finally:
        stub.shutdown()
