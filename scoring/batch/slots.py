"""The orchestrator's view of its workers: a slot per worker position, and the attempt it runs."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from scoring.batch import protocol
from scoring.batch.inputs import MiniBatch
from scoring.batch.layout import process_name


@dataclass
class Attempt:
    batch: MiniBatch
    number: int
    span_id: str
    began: float
    deadline: float


class Slot:
    """One worker position (processNNN); its process is replaced after a timeout or a crash."""

    def __init__(self, index: int):
        self.index = index
        self.name = process_name(index)
        self.process: subprocess.Popen | None = None
        self.fd: int | None = None
        self.reader = protocol.LineReader()
        self.ready = False
        self.init_deadline = 0.0
        self.attempt: Attempt | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None
