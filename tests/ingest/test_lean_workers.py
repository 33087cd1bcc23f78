"""Ingestion's pool workers, spawned from a program whose main module is the `insights` script (as
under `insights up`), import what preparing a body needs and not the command line, and prepare
bodies there as the collector does."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, json, os
from insights.cli import main  # what the `insights` console script runs first
if __name__ == "__main__":
    import gzip
    from concurrent.futures import ProcessPoolExecutor
    from pathlib import Path
    from collector.ingest.prepare import prepare_body, worker_init
    from collector.ingest.workers import LEAN_SPAWN
    body = gzip.compress(b'{"iKey": "k", "time": "2026-11-23T16:53:49Z", "data": {"baseType": "MessageData", "baseData": {"message": "m"}}}')
    with ProcessPoolExecutor(1, mp_context=LEAN_SPAWN, initializer=worker_init, initargs=(os.getpid(),)) as pool:
        modules = pool.submit(eval, "sorted(__import__('sys').modules)").result()
        prepared = pool.submit(prepare_body, body, "gzip", {"k": ("svc", True)}, Path(sys.argv[1])).result()
    print(json.dumps({"modules": modules, "accepted": prepared.accepted, "rows": prepared.tables["traces"].num_rows}))
"""


def test_workers_leave_the_command_line_out(tmp_path):
    script = tmp_path / "insights_entry.py"
    script.write_text(SCRIPT)
    output = subprocess.run([sys.executable, str(script), str(tmp_path / "blob")], capture_output=True, text=True,
                            check=True, timeout=120, cwd=tmp_path).stdout
    result = json.loads(output.strip().splitlines()[-1])
    assert result["accepted"] == 1 and result["rows"] == 1
    loaded = {name.split(".")[0] for name in result["modules"]}
    assert "collector" in loaded
    assert not loaded & {"insights", "typer", "rich", "dashboard", "alerts", "monitoring", "endpoints", "scoring", "streamlit"}
