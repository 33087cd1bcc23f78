"""Batch jobs run for real, with real worker processes, against the session's real collector."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from batch_jobs import SCRIPTS, Finished, make_input, batch_command  # noqa: E402


@pytest.fixture
def run_job(tmp_path, collector):
    """Run a job over `files` with score script `script`; extra flags as keyword arguments."""
    state = tmp_path / "state"
    state.mkdir()
    env = {"INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key, "BATCH_TEST_STATE": str(state),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    counter = iter(range(1000))

    def run(script: str, files: dict[str, str] | Path, output: Path | None = None, **flags) -> Finished:
        number = next(counter)
        source = files if isinstance(files, Path) else make_input(tmp_path / f"input{number}", files)
        output = output or tmp_path / f"output{number}"
        job = flags.pop("job_name", f"job-{tmp_path.name[-20:]}-{number}")
        arguments = ["run", "--entry_script", str(SCRIPTS / script), "--input", str(source), "--output", str(output),
                     "--job_name", job]
        flags.setdefault("resource_monitor_interval", 0)
        for name, value in flags.items():
            arguments += [f"--{name}", str(value)]
        done = batch_command(*arguments, env=env)
        return Finished(done.returncode, done.stdout, done.stderr, output, job)

    run.env = env
    return run


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
