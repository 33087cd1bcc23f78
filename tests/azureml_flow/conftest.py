import sys
from pathlib import Path

# The dashboard's browser harness (tests/dashboard/dashboard_harness.py), for the Scale events page test.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))
