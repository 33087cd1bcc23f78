"""kill -9 at any moment loses nothing acknowledged: a real process, a loader, a kill, a restart, a count."""

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from collector_process import CollectorProcess
from loader import ITEMS_PER_BATCH

LOADER = Path(__file__).parent.parent / "loader.py"


@pytest.mark.parametrize("checkpoints", ["rare", "constant"])
def test_kill_9_during_load_loses_no_acknowledged_item(tmp_path, checkpoints):
    """With checkpoints "constant" (at every MB of WAL), the kill may also land in a checkpoint."""
    env = {"INSIGHTS_CHECKPOINT_WAL_BYTES": str(2**20)} if checkpoints == "constant" else {}
    collector = CollectorProcess(tmp_path / "data", env=env).start()
    service = collector.create_service("durable")
    acked_path = tmp_path / "acked.txt"
    loader = subprocess.Popen([sys.executable, str(LOADER), collector.url, service["instrumentation_key"],
                               "--seconds", "30", "--connections", "4", "--acked", str(acked_path)])
    _wait_for_lines(acked_path, 20)
    collector.kill()  # mid-load: requests are in flight and group commits under way
    loader.wait(timeout=60)
    acked = acked_path.read_text().split()
    assert len(acked) >= 20

    collector.start()  # recovers from the WAL
    collector.stop()
    with duckdb.connect(str(collector.data_dir / "telemetry.duckdb"), read_only=True) as con:
        stored = dict(con.execute(
            "SELECT operation_Id, count(*) FROM (SELECT operation_Id FROM traces UNION ALL SELECT operation_Id FROM requests "
            "UNION ALL SELECT operation_Id FROM dependencies UNION ALL SELECT operation_Id FROM exceptions "
            "UNION ALL SELECT operation_Id FROM customMetrics) GROUP BY ALL").fetchall())
        (accepted,) = con.execute("SELECT sum(value) FROM service_counters WHERE service = ? AND counter = 'accepted'",
                                  [service["name"]]).fetchone()
    missing = [batch for batch in acked if stored.get(batch) != ITEMS_PER_BATCH]
    assert missing == [], f"{len(missing)} acknowledged batches incomplete after kill -9"
    # Batches are all-or-nothing, and counters commit with their rows.
    assert all(count == ITEMS_PER_BATCH for count in stored.values())
    assert accepted == len(stored) * ITEMS_PER_BATCH


def _wait_for_lines(path: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().split()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the loader got no {count} acknowledgements in {timeout} s")
