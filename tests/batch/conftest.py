"""Batch jobs run for real, with real worker processes, against the session's real collector."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from batch_jobs import SCRIPTS, Finished, batch_command, make_input, start_batch  # noqa: E402
from downstream import downstream_service  # noqa: E402


@pytest.fixture
def run_job(tmp_path, collector):
    """Run a job over `files` with score script `script`; extra flags as keyword arguments."""
    state = tmp_path / "state"
    state.mkdir()
    env = {"INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key, "BATCH_TEST_STATE": str(state),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    counter = iter(range(1000))

    def arguments(script: str, files: dict[str, str] | Path, output: Path | None, flags: dict) -> tuple[list, Path, str]:
        number = next(counter)
        source = files if isinstance(files, Path) else make_input(tmp_path / f"input{number}", files)
        output = output or tmp_path / f"output{number}"
        job = flags.pop("job_name", f"job-{tmp_path.name[-20:]}-{number}")
        found = ["run", "--entry_script", str(SCRIPTS / script), "--input", str(source), "--output", str(output),
                 "--job_name", job]
        flags.setdefault("resource_monitor_interval", 0)
        for name, value in flags.items():
            found += [f"--{name}", str(value)]
        return found, output, job

    def run(script: str, files: dict[str, str] | Path, output: Path | None = None, **flags) -> Finished:
        command, output, job = arguments(script, files, output, flags)
        done = batch_command(*command, env=env)
        return Finished(done.returncode, done.stdout, done.stderr, output, job)

    def start(script: str, files: dict[str, str] | Path, output: Path | None = None, **flags) -> Running:
        """The job in the background; `.finish()` waits for it."""
        command, output, job = arguments(script, files, output, flags)
        return Running(start_batch(*command, "--no-progress", env=env), output, job)

    run.env = env
    run.state = state
    run.start = start
    return run


class Running:
    def __init__(self, process, output: Path, job: str):
        self.process, self.output, self.job = process, output, job

    def finish(self, timeout: float = 60) -> Finished:
        stdout, stderr = self.process.communicate(timeout=timeout)
        return Finished(self.process.returncode, stdout, stderr, self.output, self.job)


TELEMETRY_JOB_FILES = {"a.txt": "fine", "b.txt": "once", "c.txt": "raise", "d.txt": "sleep 5", "e.txt": "fine"}


@pytest.fixture(scope="session")
def telemetry_job(collector, tmp_path_factory):
    """One job sending to a service, with every kind of outcome: successes, an error that a retry
    fixes, an error that stays (c.txt fails both its attempts), a timeout."""
    root = tmp_path_factory.mktemp("batch-telemetry")
    service = collector.create_service("batch")["name"]
    (root / "state").mkdir()
    env = {"INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key,
           "BATCH_TEST_STATE": str(root / "state"), "XDG_CACHE_HOME": str(root / "cache")}
    name = f"telemetry-{root.name}"
    done = batch_command("run", "--entry_script", str(SCRIPTS / "flaky_score.py"), "--input",
                         str(make_input(root / "input", TELEMETRY_JOB_FILES)), "--output", str(root / "out"),
                         "--service", service, "--mini_batch_size", "1", "--workers", "2", "--max_retries", "1",
                         "--timeout", "1.5", "--resource_monitor_interval", "0", "--job_name", name, env=env)
    assert done.returncode == 0, done.stderr
    return {"service": service, "name": name, "env": env, "root": root}


@pytest.fixture(scope="session")
def calling_job(collector, tmp_path_factory):
    """calls_score.py over three files in two mini-batches, calling a local HTTP server."""
    root = tmp_path_factory.mktemp("batch-calls")
    service = collector.create_service("calls")["name"]
    name = f"calls-{root.name}"
    source = make_input(root / "input", {"a.txt": "x", "b.txt": "x", "c.txt": "x"})
    with downstream_service() as (url, calls):
        env = {"INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key,
               "XDG_CACHE_HOME": str(root / "cache"), "BATCH_TEST_URL": url}
        done = batch_command("run", "--entry_script", str(SCRIPTS / "calls_score.py"), "--input", str(source),
                             "--output", str(root / "out"), "--service", service, "--mini_batch_size", "2",
                             "--workers", "1", "--resource_monitor_interval", "0", "--job_name", name, env=env)
    assert done.returncode == 0, done.stderr
    return {"service": service, "name": name, "port": int(url.rsplit(":", 1)[1]), "out": root / "out", "calls": calls}
