"""The admin key: INSIGHTS_API_KEY when set (CollectorSettings.admin_key), else generated once and kept
in the data dir, a 0600 file in a 0700 folder (see data_dir.py).

The collector loads (or creates) it here; clients find it with collector.client.resolve_collector,
which reads it without ever creating one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from collector.data_dir import FILE_MODE, open_private

KEY_FILENAME = "admin.key"
ENV_VAR = "INSIGHTS_API_KEY"


def load_or_create(data_dir: Path, given: str | None = None) -> tuple[str, bool]:
    """(key, created): `given` (INSIGHTS_API_KEY, as CollectorSettings read it) when set, else the data
    dir's key; created is True the first time, when the key was just generated."""
    if given:
        return given, False
    path = open_private(Path(data_dir), files=(KEY_FILENAME,)) / KEY_FILENAME
    if path.exists():
        return path.read_text().strip(), False
    key = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key, True
