"""`insights demo`: a newcomer's first look, in one command.

Starts, on a temporary data dir: the collector, a sample scikit-learn model (insights/sample/
score.py) served by `insights score` with App Insights on, a small feature service the model calls
(insights/sample/features.py, under `insights score` too as a service of its own: dependencies,
and a second node on the application map), the dashboard, and a traffic generator sending good, bad, slow and
failing requests — so every chart and table has something within a minute. Ctrl-C stops it all
and removes the temporary data.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import typer

from dashboard.launcher import answers, exit_with_parent, login_link, run_dashboard, stop_dashboard, wait_ready
from insights.demo_drift import jittered, shifted, start_monitor

SERVICE = "demo-model"
FEATURES_SERVICE = "demo-features"
SAMPLE = Path(__file__).with_name("sample") / "score.py"
FEATURES_SAMPLE = Path(__file__).with_name("sample") / "features.py"
REQUESTS_PER_SECOND = 6
GOOD = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [6.3, 2.5, 5.0, 1.9]]
# kind -> (weight, body): the mix the dashboard should show.
MIX = {
    "good": (70, lambda r: {"data": [jittered(r, GOOD)], "region": r.choice(["eu", "us", "apac"])}),
    "slow": (8, lambda r: {"data": [jittered(r, GOOD)], "slow": round(r.uniform(0.3, 1.2), 2)}),
    "bad": (12, lambda r: {"rows": [r.choice(GOOD)]}),
    "failing": (10, lambda r: {"data": [["abc", 3.0, 1.4, 0.2]]}),
}


def port_or_free(wanted: int) -> int:
    """`wanted` if nothing listens there, else any free port: a demo must start even beside a real install."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", wanted))
            return wanted
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]


def train_model(model_dir: Path) -> None:
    """A real model on scikit-learn's bundled iris data, saved where score.py's init() looks."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    model = LogisticRegression(max_iter=500).fit(iris.data, iris.target)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump({"model": model, "labels": list(iris.target_names)}, model_dir / "model.joblib")


class Traffic:
    """Sends the MIX to the scoring endpoint at about REQUESTS_PER_SECOND until stopped."""

    def __init__(self, scoring_url: str, seed: int | None = None):
        self.scoring_url = scoring_url
        self.random = random.Random(seed)
        self.stopped = threading.Event()
        self.sent: dict[str, int] = {kind: 0 for kind in MIX}
        self.thread = threading.Thread(target=self._loop, daemon=True, name="demo-traffic")
        self.started = time.monotonic()

    def pick(self) -> tuple[str, dict]:
        kind = self.random.choices(list(MIX), weights=[w for w, _ in MIX.values()])[0]
        return kind, shifted(MIX[kind][1](self.random), time.monotonic() - self.started)

    def _loop(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopped.is_set():
                kind, body = self.pick()
                try:
                    client.post(f"{self.scoring_url}/score", json=body)
                    self.sent[kind] += 1
                except httpx.HTTPError:
                    pass
                self.stopped.wait(self.random.expovariate(REQUESTS_PER_SECOND))

    def start(self) -> Traffic:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=15)


def wait_http(address: str, process: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    """Wait for a 200 from `address`; say which part failed (and why) if it never comes."""
    if answers(address, process, timeout):
        return
    if process.poll() is not None:
        raise RuntimeError(f"{what} exited with code {process.returncode}")
    raise RuntimeError(f"{what} did not answer at {address} within {timeout:.0f} s")


class Demo:
    """Every part of the demo, started in order and stopped in reverse."""

    def __init__(self, root: Path, collector_port: int, dashboard_port: int, scoring_port: int):
        self.root = root
        self.key = secrets.token_urlsafe(24)
        self.collector_url = f"http://127.0.0.1:{collector_port}"
        self.scoring_url = f"http://127.0.0.1:{scoring_port}"
        self.ports = {"collector": collector_port, "dashboard": dashboard_port, "scoring": scoring_port}
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.features_url = f"http://127.0.0.1:{port_or_free(scoring_port + 1)}"
        """The feature service score.py calls: features.py under `insights score`, service FEATURES_SERVICE."""
        self.traffic: Traffic | None = None
        self.login_link: str | None = None
        """The dashboard's one-click login link (single use, valid a few minutes)."""

    def _env(self) -> dict:
        return {**os.environ, "INSIGHTS_URL": self.collector_url, "INSIGHTS_API_KEY": self.key,
                "INSIGHTS_MONITOR_TICK_S": "5"}

    def _spawn(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "wb")
        # Own session: Ctrl-C reaches only the demo, which then stops the parts in order (the wrapper
        # flushes its telemetry before the collector goes); and each part dies with the demo.
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                                   start_new_session=True, preexec_fn=exit_with_parent if sys.platform == "linux" else None)
        self.processes.append((name, process))
        return process

    def start(self) -> None:
        collector = self._spawn("collector", [sys.executable, "-m", "collector", "up", "--no-dashboard", "--data-dir",
                                              str(self.root / "data"), "--port", str(self.ports["collector"])], self._env())
        wait_http(f"{self.collector_url}/healthz", collector, "the collector")
        for name in (SERVICE, FEATURES_SERVICE):
            httpx.post(f"{self.collector_url}/api/services", headers={"x-api-key": self.key},
                       json={"name": name, "enable_app_insights": True}, timeout=30).raise_for_status()
        train_model(self.root / "model")
        shutil.copy(SAMPLE, self.root / "score.py")
        shutil.copy(FEATURES_SAMPLE, self.root / "features.py")
        self._start_features()
        self._start_scoring()
        start_monitor(self.collector_url, self.key, SERVICE, GOOD)
        dashboard = run_dashboard(self.collector_url, self.ports["dashboard"], log_file=open(self.root / "dashboard.log", "wb"))
        self.processes.append(("dashboard", dashboard))
        if not wait_ready(self.ports["dashboard"], dashboard, timeout=60):
            raise RuntimeError(f"the dashboard did not start; see {self.root / 'dashboard.log'}")
        self.login_link = login_link(self.collector_url, self.key, self.ports["dashboard"])
        self.traffic = Traffic(self.scoring_url).start()

    def _start_features(self) -> None:
        port = self.features_url.rpartition(":")[2]
        features = self._spawn("features", [sys.executable, "-m", "scoring", "score", "--entry_script",
                                            str(self.root / "features.py"), "--port", port, "--host", "127.0.0.1",
                                            "--service", FEATURES_SERVICE, "--spool_dir",
                                            str(self.root / "features-spool")], self._env())
        wait_http(f"{self.features_url}/readyz", features, "the feature service (insights score)")

    def _start_scoring(self) -> None:
        env = {**self._env(), "FEATURE_STORE_URL": self.features_url}
        scoring = self._spawn("scoring", [sys.executable, "-m", "scoring", "score", "--entry_script", str(self.root / "score.py"),
                                          "--model_dir", str(self.root / "model"), "--port", str(self.ports["scoring"]),
                                          "--host", "127.0.0.1", "--service", SERVICE,
                                          "--spool_dir", str(self.root / "spool")], env)
        wait_http(f"{self.scoring_url}/readyz", scoring, "the scoring wrapper (insights score)")

    def stop(self) -> None:
        if self.traffic:
            self.traffic.stop()
        for name, process in reversed(self.processes):
            if name == "dashboard":
                stop_dashboard(process)
            elif process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def demo_command(
    port: int = typer.Option(8080, "--port", help="Collector port (another free one if taken)."),
    dashboard_port: int = typer.Option(8501, "--dashboard-port", help="Dashboard port (another free one if taken)."),
    scoring_port: int = typer.Option(5001, "--scoring-port", help="Scoring endpoint port (another free one if taken)."),
    keep: bool = typer.Option(False, "--keep", help="Keep the temporary data dir after Ctrl-C."),
) -> None:
    """Everything on a sample model, with traffic: collector, `insights score`, dashboard."""
    root = Path(tempfile.mkdtemp(prefix="insights-demo-"))
    demo = Demo(root, port_or_free(port), port_or_free(dashboard_port), port_or_free(scoring_port))
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    try:
        typer.echo("starting the collector, the sample model and the dashboard ...")
        demo.start()
        _announce(demo)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        typer.echo("\nstopping ...")
    except RuntimeError as error:
        typer.echo(f"error: {error} (logs in {root})", err=True)
        keep = True
        raise typer.Exit(1) from None
    finally:
        demo.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _interrupt(*_) -> None:
    """SIGTERM stops the demo as Ctrl-C does."""
    raise KeyboardInterrupt


def _announce(demo: Demo) -> None:
    typer.echo(f"\n  Dashboard:  {demo.login_link}   <- open this (logs you in once, within minutes;")
    typer.echo("              later, sign in with the admin key below)")
    typer.echo(f"  Scoring:    {demo.scoring_url}/score (service {SERVICE}, sample iris model)")
    typer.echo(f"  Collector:  {demo.collector_url} (admin key {demo.key})")
    typer.echo(f"  Data dir:   {demo.root}")
    typer.echo("\n  Traffic: good, bad (400), slow and failing (500) requests; charts fill within a minute.")
    typer.echo("  Model monitoring: inputs are collected; after 2 minutes sepal_length shifts, and drifts.")
    typer.echo(f"  Try: INSIGHTS_URL={demo.collector_url} INSIGHTS_API_KEY={demo.key} "
               f"insights query --service {SERVICE} 'requests | take 5'")
    typer.echo("\n  Ctrl-C stops everything.")
