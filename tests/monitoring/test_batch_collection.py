"""`insights batch run` hosting a score.py that uses the real azureml-ai-monitoring Collector: every
mini-batch's rows land in modelData under the job's operation_Id, sent before the job returns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).parent / "scripts"


def test_batch_job_collects_model_inputs(collector, tmp_path):
    service = collector.create_service("batch-mdc")["name"]
    source = tmp_path / "input"
    source.mkdir()
    for index in range(6):
        (source / f"f{index}.txt").write_text(str(index * 1.5))
    env = {**os.environ, "INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key,
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "scoring.batch", "run", "--entry_script", str(SCRIPTS / "mdc_batch_score.py"),
                           "--input", str(source), "--output", str(tmp_path / "out"), "--service", service,
                           "--mini_batch_size", "2", "--workers", "2", "--resource_monitor_interval", "0"],
                          capture_output=True, text=True, env=env, timeout=90)
    assert done.returncode == 0, done.stderr
    rows = collector.query('modelData | where collection == "model_inputs" | project f = tostring(data.file), '
                           'v = toreal(data.value), operation_Id', service)
    assert sorted(r["f"] for r in rows) == [f"f{i}.txt" for i in range(6)]
    requests = collector.query("requests | distinct operation_Id", service)
    assert {r["operation_Id"] for r in rows} == {r["operation_Id"] for r in requests}  # the job's operation
