"""How ingestion's pool workers start: spawned, importing only what preparing a body needs.

A spawned child re-imports the parent's main module first, the way multiprocessing keeps
`if __name__ == "__main__"` scripts working. Started by the `insights` script, that main module
imports the whole command line (typer, rich, the dashboard launcher, alerts, monitoring,
endpoints: ~1,900 modules, ~1.5 s and ~110 MB per worker), none of which a worker uses: it needs
`collector.ingest.prepare` and what that imports, which unpickling its first task loads anyway.
This context leaves the main module out of what a worker re-runs (bench/ingest.py --worker-start
measures both).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import context, popen_spawn_posix, spawn

_MAIN_KEYS = ("init_main_from_name", "init_main_from_path")
_patching = threading.Lock()


@contextmanager
def _without_main() -> Iterator[None]:
    """spawn.get_preparation_data, for the launch inside this block, without the main module.
    (Popen._launch reads it from the module at call time; the lock keeps two launches from
    restoring each other's.)"""
    with _patching:
        original = spawn.get_preparation_data

        def lean(name: str) -> dict:
            data = original(name)
            for key in _MAIN_KEYS:
                data.pop(key, None)
            return data

        spawn.get_preparation_data = lean
        try:
            yield
        finally:
            spawn.get_preparation_data = original


class _LeanPopen(popen_spawn_posix.Popen):
    def _launch(self, process_obj) -> None:
        with _without_main():
            super()._launch(process_obj)


class _LeanProcess(context.SpawnProcess):
    _start_method = "spawn"

    @staticmethod
    def _Popen(process_obj):  # noqa: N802 (multiprocessing's name)
        return _LeanPopen(process_obj)


class LeanSpawnContext(context.SpawnContext):
    """The spawn start method, without re-running the parent's main module in the child."""

    Process = _LeanProcess  # type: ignore[assignment]


LEAN_SPAWN = LeanSpawnContext()
