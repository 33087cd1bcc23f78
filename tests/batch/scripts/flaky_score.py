"""Fails in ways the tests ask for, named in the files themselves:
`raise` in a file: run() raises ValueError naming it, every time;
`once` in a file: run() raises on the first attempt only (a marker under $BATCH_TEST_STATE);
`sleep N` in a file: run() sleeps N seconds on the first attempt (later attempts are quick);
`exit` in a file: the worker process exits (os._exit(7)) on the first attempt;
`short` in a file: the mini-batch returns one row fewer than it got (one failed item);
anything else: one row "name,length"."""

import os
import time


def init():
    print(f"init in {os.getpid()}")


def _first_time(name):
    marker = os.path.join(os.environ["BATCH_TEST_STATE"], name)
    if os.path.exists(marker):
        return False
    open(marker, "w").close()
    return True


def run(mini_batch):
    rows = []
    short = False
    for path in mini_batch:
        name = os.path.basename(path)
        text = open(path).read().strip()
        if text == "raise":
            raise ValueError(f"cannot score {name}")
        if text == "once" and _first_time(name):
            raise RuntimeError(f"transient failure on {name}")
        if text == "exit" and _first_time(name):
            os._exit(7)
        if text.startswith("sleep") and _first_time(name):
            time.sleep(float(text.split()[1]))
        short = short or text == "short"
        rows.append(f"{name},{len(text)}")
    return rows[:-1] if short else rows
