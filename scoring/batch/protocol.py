"""What the orchestrator and a worker say to each other: one JSON object per line.

Tasks go down the worker's stdin; answers come back on a pipe of their own (RESULT_FD), because the
worker's stdout and stderr belong to the user's script and go to its log file. Kinds of answer:

- `ready`   init() returned; the worker takes tasks.
- `fatal`   the script cannot be used (not loadable, no init/run, init() raised, run() returned
            something that is neither a DataFrame nor a list): the job stops, since every retry and
            every other worker would meet the same problem.
- `done`    a mini-batch's rows (already rendered as CSV text) and its timings.
- `failed`  run() raised: the error and its stack, for the logs; the orchestrator decides on a retry.
"""

from __future__ import annotations

import orjson

RESULT_FD = "INSIGHTS_BATCH_RESULT_FD"
SLOT_VAR = "INSIGHTS_BATCH_SLOT"

READY, FATAL, DONE, FAILED = "ready", "fatal", "done", "failed"


def encode(message: dict) -> bytes:
    return orjson.dumps(message) + b"\n"


class LineReader:
    """Turns the chunks read from a pipe into whole messages."""

    def __init__(self):
        self._partial = b""

    def feed(self, chunk: bytes) -> list[dict]:
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        return [orjson.loads(line) for line in lines if line]
