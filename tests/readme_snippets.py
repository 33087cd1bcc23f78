"""The README's code, as a user copies it: the fenced Python blocks marked `# tested: NAME`, and the
`export NAME=value` lines of the "Sending telemetry" section. Tests run them verbatim, in a child
Python under net_guard (no connection beyond the loopback), giving only the connection string, key
and URL through the environment variables the snippets read."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import net_guard

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(# tested: ([\w-]+)\n.*?)^```", re.M | re.S)
EXPORT = re.compile(r"^export ([A-Z_][A-Z0-9_]*)=(\S+)", re.M)


def snippets() -> dict[str, str]:
    """name -> the block's text, as the README has it."""
    return {name: text for text, name in BLOCK.findall(README.read_text())}


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def exports(title: str = "Sending telemetry") -> dict[str, str]:
    """The variables the section's first bash block (the Azure SDKs') tells users to export."""
    block = re.search(r"^```bash\n(.*?)^```", section(title), re.M | re.S)
    assert block, f"no bash block in README section {title!r}"
    return {name: value.strip("'\"") for name, value in EXPORT.findall(block.group(1)) if "<" not in value}


SDK_PREFIXES = ("APPLICATIONINSIGHTS_", "APPINSIGHTS_", "OTEL_", "INSIGHTS_")


def user_environment() -> dict[str, str]:
    """This process's environment without the SDK settings the test session sets for itself
    (conftest.py's NO_PHONE_HOME): a child gets only what the README says, and what a test adds."""
    return {name: value for name, value in os.environ.items() if not name.startswith(SDK_PREFIXES)}


def run(name: str, log: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the README's block `name` verbatim in a child Python under the guard, with `env` and no
    other SDK setting."""
    child = net_guard.environment(log, user_environment())
    child.update(env)
    return subprocess.run([sys.executable, "-c", snippets()[name]], env=child, capture_output=True, text=True,
                          timeout=timeout, cwd=log.parent)
