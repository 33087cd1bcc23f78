import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "scoring"))  # wrapper_process.Wrapper
sys.path.insert(0, str(TESTS / "dashboard"))  # dashboard_harness: the real-browser stack
