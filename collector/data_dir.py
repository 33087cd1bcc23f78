"""The data dir is private to the user who runs the collector: the folder 0700, every file in it 0600.

It holds the telemetry (`telemetry.duckdb`, its `.wal`, DuckDB's spill folder), the originals of
capped items (`blob/payloads/`), export staging and `admin.key`. Most of these files are created by
code that does not choose their mode (DuckDB itself, the payload spill, export sinks, the ingestion
workers, which inherit it), so the collector process sets its umask to 077 when it opens the data
dir: every file and folder it creates from then on is 0600/0700, wherever it is created. A data dir
made by an older version (0755, files 0644) is tightened when it is opened.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def open_private(data_dir: Path, files: tuple[str, ...] = (), folders: tuple[str, ...] = ()) -> Path:
    """Set the process umask to 077, create `data_dir` (0700) if needed, and take group and other
    permissions away from it and from the named `files` and `folders` inside it that exist already
    (the data dir's own mode is what keeps everything below it private; the files are tightened too
    so that a copy of the folder or a looser parent does not expose them)."""
    os.umask(PRIVATE_UMASK)
    data_dir = Path(data_dir)
    data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(data_dir, DIR_MODE)
    for name in folders:
        tighten(data_dir / name, DIR_MODE)
    for name in files:
        tighten(data_dir / name, FILE_MODE)
    return data_dir


def tighten(path: Path, mode: int) -> None:
    """Remove the permission bits `mode` does not grant from `path`, if it exists; a path owned by
    someone else (which cannot be changed) is logged, not fatal."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & ~mode:
        try:
            os.chmod(path, current & mode)
        except OSError as error:
            log.warning("%s is mode %o and could not be made private: %s", path, current, error.strerror)
