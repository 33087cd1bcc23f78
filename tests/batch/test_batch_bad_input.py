"""Bad input gets a clear error naming the problem and a non-zero exit: before anything runs when
the command line shows it (exit 2), as soon as a worker meets it otherwise (exit 1)."""

from __future__ import annotations

import pytest
from batch_jobs import SCRIPTS, batch_command


def test_a_missing_entry_script(run_job, tmp_path):
    done = batch_command("run", "--entry_script", str(tmp_path / "nope.py"), "--input", str(SCRIPTS),
                         "--output", str(tmp_path / "out"))
    assert done.returncode == 2
    assert f"--entry_script {tmp_path / 'nope.py'}: no such file" in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_empty_input_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    done = batch_command("run", "--entry_script", str(SCRIPTS / "good_score.py"), "--input", str(tmp_path / "empty"),
                         "--output", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "the folder has no files to score" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_input(tmp_path):
    done = batch_command("run", "--entry_script", str(SCRIPTS / "good_score.py"), "--input", str(tmp_path / "nothing"),
                         "--output", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "no such file or folder" in done.stderr


def test_an_unknown_service(tmp_path, run_job):
    done = batch_command("run", "--entry_script", str(SCRIPTS / "good_score.py"), "--input", str(SCRIPTS),
                         "--output", str(tmp_path / "out"), "--service", "no-such-service", env=run_job.env)
    assert done.returncode == 2
    assert "--service no-such-service: 404" in done.stderr


@pytest.mark.parametrize("script, message", [
    ("no_init_score.py", "no_init_score.py does not define the init() function it needs"),
    ("init_fails_score.py", "init() raised FileNotFoundError: model.pkl not found"),
    ("bad_return_score.py", "run() returned dict: it must return a pandas DataFrame or a list"),
])
def test_a_script_that_cannot_work_stops_the_job_with_its_reason(run_job, script, message):
    finished = run_job(script, {f"f{i}.txt": "1" for i in range(30)}, workers=2, mini_batch_size=1)
    assert finished.code == 1
    assert message in finished.stderr
    overview = finished.log("job_progress_overview.txt")
    assert "Status: Failed" in overview and message in overview
    assert message in finished.log("user/error.txt")
    assert "Mini-batches processed: 0" in overview
