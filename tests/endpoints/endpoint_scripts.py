"""Where the endpoint tests' score.py files are (a module of its own: every test folder has a
`conftest`, so a name imported from one may come from another)."""

from pathlib import Path

SCRIPTS = Path(__file__).parent / "scripts"
