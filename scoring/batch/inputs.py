"""The job's input: the files under --input, split into mini-batches of --mini_batch_size files.

run() gets each file's full path; the output rows, the logs and the telemetry name a file by its
key, its path relative to the input folder, which is what a user recognises and what stays the
same when the folder moves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from scoring.batch.settings import JobSettingsError


@dataclass(frozen=True)
class MiniBatch:
    id: int
    files: tuple[str, ...]
    keys: tuple[str, ...]


def list_files(source: str) -> tuple[str, list[str]]:
    """(root, full paths of every file, sorted); a folder without files is an error."""
    if os.path.isfile(source):
        return os.path.dirname(source), [source]
    found = []
    for directory, subdirectories, names in os.walk(source):
        subdirectories.sort()
        found.extend(os.path.join(directory, name) for name in sorted(names))
    if not found:
        raise JobSettingsError(f"--input {source}: the folder has no files to score")
    return source, found


def mini_batches(root: str, files: list[str], size: int) -> list[MiniBatch]:
    batches = []
    for start in range(0, len(files), size):
        chunk = tuple(files[start:start + size])
        batches.append(MiniBatch(len(batches), chunk, tuple(os.path.relpath(path, root) for path in chunk)))
    return batches
