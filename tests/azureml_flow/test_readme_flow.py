"""The README's "Coming from Azure ML" section run as a user would: its train.py, score.py and
deploy.py blocks written out verbatim, `python train.py` then `python deploy.py` in a child Python
under net_guard (no connection beyond the loopback), with only INSIGHTS_URL / INSIGHTS_API_KEY
given. One change: deploy.py's fixed port 8890 becomes a free one (tests share this machine)."""

from __future__ import annotations

import re
import subprocess
import sys

import net_guard
import readme_snippets
from collector_process import free_port

BLOCK = re.compile(r"^```python\n# (\w+\.py)[^\n]*\n(.*?)^```", re.M | re.S)


def test_the_readme_flow_runs_as_written(collector, tmp_path):
    blocks = {name: f"# {name}\n{body}" for name, body in BLOCK.findall(readme_snippets.section("Coming from Azure ML"))}
    assert set(blocks) == {"train.py", "score.py", "deploy.py"}
    port = free_port()
    assert "port=8890" in blocks["deploy.py"]
    blocks["deploy.py"] = blocks["deploy.py"].replace("port=8890", f"port={port}")
    for name, text in blocks.items():
        (tmp_path / name).write_text(text)
    log = tmp_path / "net.log"
    env = net_guard.environment(log, readme_snippets.user_environment())
    env.update({"INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key})
    for script in ("train.py", "deploy.py"):
        done = subprocess.run([sys.executable, script], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Local webservice is running at http://127.0.0.1:{port}/score" and lines[1] == str(port)
    first, second = (float(line.strip("[]")) for line in lines[2:4])
    assert 20 < first < 350 and first == second  # a diabetes progression, the same model twice
    assert "[insights] reloaded" in done.stdout and "[insights] scoring" in done.stdout
    assert net_guard.attempts(log) == []
