"""Running batch jobs for real in tests: `python -m scoring.batch` as a user would run `insights batch`."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SCRIPTS = Path(__file__).parent / "scripts"


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str
    output: Path
    job: str

    @property
    def logs(self) -> Path:
        return self.output / "logs"

    def log(self, relative: str) -> str:
        return (self.logs / relative).read_text()

    def one(self, pattern: str) -> Path:
        """The single file under logs/ that matches `pattern` (the node's folder name varies)."""
        found = sorted(self.logs.glob(pattern))
        assert len(found) == 1, f"{pattern}: {found}"
        return found[0]


def make_input(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def batch_command(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scoring.batch", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def start_batch(*args: str, env: dict | None = None) -> subprocess.Popen:
    """A job running in the background, in a process group of its own (its workers with it), as a
    terminal or a container runtime would start it: the test can signal the whole group."""
    return subprocess.Popen([sys.executable, "-m", "scoring.batch", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
                            start_new_session=True)
