"""A batch worker process: loads score.py, calls init() once, then run() on each mini-batch it is given.

Started by the orchestrator as `python -m scoring.batch.worker`, with the job's settings in the
environment, tasks on stdin, answers on the RESULT_FD pipe (protocol.py), and stdout/stderr going to
its `user/stdout/.../processNNN.stdout.txt`. It renders run()'s rows itself, so the orchestrator only
appends text; it never writes the output file, so a worker killed mid-write (a timeout) cannot leave
half a mini-batch behind to be duplicated by the retry. Ctrl-C and SIGTERM are the orchestrator's to
handle (it lets the mini-batch in flight finish, then closes stdin, which ends the worker).
"""

from __future__ import annotations

import contextlib
import faulthandler
import inspect
import logging
import os
import signal
import sys
import time
import traceback

import orjson

from scoring import modeldata
from scoring.batch import protocol, rows, telemetry
from scoring.batch.layout import Layout
from scoring.batch.settings import JobSettings
from scoring.capture import Capture
from scoring.user_script import ScriptError, UserScript

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class BatchScript(UserScript):
    """score.py as batch deployments call it: run(mini_batch), one argument, a list of paths."""

    def _analyze(self) -> None:
        try:
            inspect.signature(self.run).bind(["mini_batch"])
        except TypeError:
            raise ScriptError("run() must take one argument: the mini-batch, a list of file paths") from None
        except ValueError:  # a callable without a signature (a builtin): let the call decide
            pass


def _scope(capture: Capture | None, operation):
    return capture.scoped(operation) if capture is not None else contextlib.nullcontext()


def _calls(capture: Capture | None, operation_id: str, span_id: str):
    """Outgoing HTTP made in this scope becomes `dependencies` under the span (the wrapper's way)."""
    if capture is None:
        return contextlib.nullcontext()
    from scoring import dependencies  # imported by install_worker_capture already

    return dependencies.current(operation_id, span_id)


def _send(channel, message: dict) -> None:
    channel.write(protocol.encode(message))


def _start(settings: JobSettings, capture: Capture | None) -> BatchScript | str:
    """The loaded, initialised script, or the message that says why it cannot be used."""
    script = BatchScript(settings.entry_script)
    with _scope(capture, telemetry.job_operation(settings)), \
            _calls(capture, settings.operation_id, telemetry.new_span_id()):  # init()'s calls: under the job
        try:
            script.load()
        except ScriptError as error:
            return str(error)
        except BaseException as error:
            return _reported(capture, error, f"{os.path.basename(script.path)} failed to load")
        try:
            script.init()
        except BaseException as error:
            return _reported(capture, error, "init() raised")
    return script


def _reported(capture: Capture | None, error: BaseException, what: str) -> str:
    traceback.print_exc()
    if capture is not None:
        capture.exception(error, extra={"stage": what})
    return f"{what} {type(error).__name__}: {error}"


def run_one(script: BatchScript, task: dict, settings: JobSettings, capture: Capture | None) -> dict:
    """One attempt at one mini-batch, as the answer to send back."""
    answer = {"id": task["id"], "attempt": task["attempt"], "start": time.time()}
    began = time.perf_counter()
    with _scope(capture, telemetry.attempt_operation(settings, task["span"])), \
            _calls(capture, settings.operation_id, task["span"]):
        try:
            result = script.run(task["files"])
        except BaseException as error:  # SystemExit too: one mini-batch must not end the worker
            if capture is not None:
                capture.exception(error, extra={"mini_batch": str(task["id"]), "attempt": str(task["attempt"])})
            return {**answer, "kind": protocol.FAILED, "run_s": time.perf_counter() - began,
                    "error": f"{type(error).__name__}: {error}", "trace": _user_stack(error)}
    run_s = time.perf_counter() - began
    try:
        rendered = rows.render(result, task["files"], task["keys"])
    except rows.ResultError as error:
        return {**answer, "kind": protocol.FATAL, "error": str(error)}
    answer.update(kind=protocol.DONE, run_s=run_s, rows=rendered.text, count=rendered.count)
    if rendered.unkeyed:
        answer["unkeyed"] = True
    return answer


def _user_stack(error: BaseException) -> str:
    """The traceback from run() inward: the frame of ours that called it is noise to the user."""
    return "".join(traceback.format_exception(type(error), error, error.__traceback__.tb_next))


def serve(script: BatchScript, channel, settings: JobSettings, capture: Capture | None) -> None:
    for line in sys.stdin.buffer:
        answer = run_one(script, orjson.loads(line), settings, capture)
        _send(channel, answer)
        if answer["kind"] == protocol.FATAL:
            return


def _stack_on_timeout(settings: JobSettings) -> None:
    """The orchestrator sends SIGUSR1 before killing a worker whose run() timed out: every thread's
    stack goes to this process's user/error/ file, so the user sees where run() was stuck."""
    path = Layout(settings.output, settings.node).error_path(int(os.environ[protocol.SLOT_VAR]))
    faulthandler.register(signal.SIGUSR1, file=open(path, "a"), all_threads=True)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a group's SIGTERM too: in-flight mini-batches finish
    settings = JobSettings.from_env()
    _stack_on_timeout(settings)
    channel = os.fdopen(int(os.environ[protocol.RESULT_FD]), "wb", buffering=0)
    capture = telemetry.install_worker_capture(settings)
    model_data = modeldata.install(settings, capture)  # type: ignore[arg-type]  (it reads spool_dir only)
    logging.basicConfig(level=settings.logging_level, stream=sys.stdout, format=LOG_FORMAT)
    started = _start(settings, capture)
    try:
        if isinstance(started, str):
            _send(channel, {"kind": protocol.FATAL, "error": started})
            return
        _send(channel, {"kind": protocol.READY, "pid": os.getpid()})
        serve(started, channel, settings, capture)
    finally:
        sys.stdout.flush()
        if model_data is not None:
            model_data.close()
        if capture is not None:
            capture.queue.close()


if __name__ == "__main__":
    main()
