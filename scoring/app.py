"""The scoring endpoint as a bare ASGI app: azmlinfsrv's routes and headers, managed online
endpoint semantics, and one `requests` item per request with its true status and duration.

Bare ASGI rather than a framework because this is the hot path: a trivial run() should cost little
more than uvicorn itself. run() executes in a pool of `max_concurrent_requests` threads (one by
default, as azmlinfsrv's sync worker: user code need not be thread-safe); the event loop keeps
accepting meanwhile, so it can answer 429 when more than twice that many requests are pending, 408
when run() overruns the scoring timeout, and 503 while init() is still running.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import logging
import random
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor

import orjson

from scoring import aml, dependencies, swagger
from scoring.capture import Capture
from scoring.config import Settings
from scoring.envelopes import Operation
from scoring.sender import read_stats
from scoring.user_script import Call, InputError, UserScript

log = logging.getLogger("scoring")

SERVER_VERSION = b"insights-scoring/0.1.0"
RUN_FAILED = b"An unexpected error occurred in scoring script. Check the logs for more info."
INTERNAL_ERROR = b"An unexpected internal error occurred. Check the logs for more info."
_JSON = (b"content-type", b"application/json")
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_TRACKED = {"/score", "/swagger.json"}


class ScoringTimeout(TimeoutError):
    """Raised inside a run() that overran SCORING_TIMEOUT_MS, to stop it (as azmlinfsrv's SIGALRM does)."""


class Reply:
    """What goes back to the client."""

    __slots__ = ("status", "body", "headers", "failed", "exec_ms")

    def __init__(self, status: int, body: bytes, headers: list | None = None, failed: bool = False, exec_ms: float | None = None):
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else [_JSON]
        self.failed = failed
        self.exec_ms = exec_ms


def message_reply(status: int, message: str | bytes, failed: bool = False) -> Reply:
    text = message.decode() if isinstance(message, bytes) else message
    return Reply(status, orjson.dumps({"message": text}), failed=failed)


class ScoringApp:
    def __init__(self, settings: Settings, script: UserScript, capture: Capture | None, console_err, stats_path=None):
        self.settings = settings
        self.script = script
        self.capture = capture
        self.console_err = console_err
        self.stats_path = stats_path
        self.ready = False
        self.exit_code: int | None = None
        self.on_fatal = None
        self.pending = 0
        self.limit = 2 * settings.max_concurrent_requests
        self.timeout_s = settings.scoring_timeout_ms / 1000
        self.pool = ThreadPoolExecutor(settings.max_concurrent_requests, thread_name_prefix="run")
        self.cors = set(settings.cors_origins)
        self.init_operation = Operation(uuid.uuid4().hex, name="init")
        self.init_started = False
        self.model_data = None  # payload logging (scoring/modeldata.py), set by the worker

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if not self.init_started:
                    self.init_started = True
                    threading.Thread(target=self._init, name="init", daemon=True).start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.pool.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send):
        path = scope["path"]
        if path not in _TRACKED:
            await self._respond(send, self._untracked(scope, path), [])
            return
        started = time.time()
        clock = time.perf_counter()
        headers = _interesting_headers(scope["headers"])
        ids = _request_ids(headers)
        operation = _operation(headers, ids, f"{scope['method']} {path}")
        span_id = f"{random.getrandbits(64):016x}"
        extra = _id_headers(ids, headers)
        try:
            if "error" in ids:
                reply = message_reply(431, ids["error"])
            elif path == "/swagger.json":
                reply = self._swagger(scope)
            else:
                reply = await self._score(scope, receive, headers, operation, span_id)
        except Exception:  # a bug of ours: the client gets a 500, the server keeps serving
            log.exception("internal error while serving %s", path)
            reply = message_reply(500, INTERNAL_ERROR)
        await self._respond(send, reply, extra + self._cors(scope, headers))
        if self.capture is not None:
            guarded(self._track, scope, path, reply, operation, span_id, started, time.perf_counter() - clock, ids)

    # -- /score ----------------------------------------------------------------------------------

    async def _score(self, scope, receive, headers, operation, span_id) -> Reply:
        method = scope["method"]
        if method == "OPTIONS":
            return Reply(200, b"", [(b"content-type", b"text/html; charset=utf-8")])
        if method not in ("GET", "POST"):
            return message_reply(405, "The method is not allowed for the requested URL.")
        if not self.ready:
            return message_reply(503, "The service is starting: init() has not finished yet.")
        if self.pending >= self.limit:
            reply = message_reply(429, f"Too many requests: {self.pending} are pending, the limit is {self.limit} "
                                       f"(2 x max_concurrent_requests). Retry later.")
            reply.headers.append((b"connection", b"close"))  # the retry connects anew, maybe to a less busy worker
            return reply
        self.pending += 1
        try:
            body = await _read_body(receive, headers, self.settings.max_request_body_bytes)
            if body is None:
                reply = message_reply(413, f"The request body exceeds the limit of {self.settings.max_request_body_bytes} bytes.")
                reply.headers.append((b"connection", b"close"))  # the unread rest of the body spoils the connection
                return reply
            call = Call(method, scope["path"], scope["query_string"], _decoded_headers(scope["headers"]), body,
                        headers.get(b"host", b"").decode("latin-1"))
            reply = await self._run(call, operation, span_id)
            if self.model_data is not None:
                guarded(self.model_data.payloads, call.body, reply.body, operation)
            return reply
        finally:
            self.pending -= 1

    async def _run(self, call: Call, operation: Operation, span_id: str) -> Reply:
        job = RunJob(self, call, operation, span_id)
        future = self.pool.submit(job)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except TimeoutError:
            job.abandon()
            return message_reply(408, f"Scoring timeout after {self.settings.scoring_timeout_ms} ms", failed=True)

    # -- other routes ----------------------------------------------------------------------------

    def _untracked(self, scope, path: str) -> Reply:
        method = scope["method"]
        if path == "/" and method in ("GET", "HEAD"):
            return Reply(200, b"Healthy", [(b"content-type", b"text/html; charset=utf-8")])
        if path in ("/ready", "/readyz") and method in ("GET", "HEAD"):
            if self.ready:
                return Reply(200, b"Ready", [(b"content-type", b"text/plain; charset=utf-8")])
            return message_reply(503, "init() has not finished yet")
        if path == "/metrics" and method == "GET":
            return Reply(200, orjson.dumps(self.metrics()))
        if path in ("/", "/ready", "/readyz", "/metrics"):
            return message_reply(405, "The method is not allowed for the requested URL.")
        return message_reply(404, "The requested URL was not found on the server. "
                                  "If you entered the URL manually please check your spelling and try again.")

    def _swagger(self, scope) -> Reply:
        if scope["method"] != "GET":
            return message_reply(405, "The method is not allowed for the requested URL.")
        query = aml.Args(scope["query_string"].decode("latin-1"))
        try:
            document = swagger.document(self.script, self.settings, query.get("version"))
        except swagger.SwaggerError as error:
            return message_reply(404, str(error))
        return Reply(200, orjson.dumps(document))

    def metrics(self) -> dict:
        queue = self.capture.queue if self.capture else None
        stats = read_stats(self.stats_path) if self.stats_path else {}
        return {
            "ready": self.ready,
            "pending_requests": self.pending,
            "telemetry": {
                "queued": queue.queued if queue else 0,
                "captured": queue.accepted if queue else 0,
                "spooled": queue.spooled if queue else 0,
                "dropped_queue_full": queue.dropped if queue else 0,
                "withheld_switch_off": queue.withheld if queue else 0,
                "spool_write_failed": queue.failed if queue else 0,
                "sent": stats.get("sent", 0),
                "waiting_in_spool": stats.get("spool_items", 0),
                "dropped_spool_full": stats.get("dropped_spool_full", 0),
                "rejected_by_collector": stats.get("rejected", 0),
                "last_error": stats.get("last_error"),
            },
        }

    def _cors(self, scope, headers) -> list:
        origin = headers.get(b"origin")
        if not origin or not self.cors or not ("*" in self.cors or origin.decode("latin-1") in self.cors):
            return []
        out = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        if scope["method"] == "OPTIONS":
            out.append((b"access-control-allow-methods", b"GET, POST"))
            requested = headers.get(b"access-control-request-headers")
            if requested:
                out.append((b"access-control-allow-headers", requested))
        return out

    async def _respond(self, send, reply: Reply, extra: list) -> None:
        headers = reply.headers + extra
        headers.append((b"x-ms-run-function-failed", b"True" if reply.failed else b"False"))
        if reply.exec_ms is not None:
            headers.append((b"x-ms-run-fn-exec-ms", b"%.3f" % reply.exec_ms))
        headers.append((b"x-ms-server-version", SERVER_VERSION))
        headers.append((b"content-length", b"%d" % len(reply.body)))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    def _track(self, scope, path, reply: Reply, operation, span_id, started, duration, ids) -> None:
        properties = self.capture.identity.properties(operation, {"Client Request Id": ids.get("client", "")})
        if self.capture.log_response and path == "/score":
            properties["Response Value"] = reply.body.decode("utf-8", "replace")
        if any(name == b"x-insights-mirrored" for name, _ in scope["headers"]):
            properties["Mirrored"] = "true"  # a copy an online endpoint's router sent (endpoints/router.py)
        host = next((v for k, v in scope["headers"] if k == b"host"), b"localhost").decode("latin-1")
        query = scope["query_string"].decode("latin-1")
        url = f"http://{host}{path}" + (f"?{query}" if query else "")
        self.capture.request(operation, span_id=span_id, name=f"{scope['method']} {path}", url=url,
                             status=reply.status, start_s=started, duration_s=duration, properties=properties)

    # -- init ------------------------------------------------------------------------------------

    def init_before_serving(self) -> bool:
        """Load score.py and run init() now, before the server accepts connections (a worker that
        joins running ones: see scoring/load.py); whether init() succeeded."""
        self.init_started = True
        self._init()
        return self.ready

    def _init(self) -> None:
        """Load score.py and run init() off the event loop, so / and /ready answer meanwhile."""
        scope = self.capture.scoped(self.init_operation) if self.capture else _null_scope()
        with scope:
            try:
                self.script.load()
                log.info("Found user script at %s (input: %s)", self.script.path, self.script.mode)
                log.info("Invoking user's init function")
                self.script.init()
            except BaseException as error:
                self._init_failed(error)
                return
        log.info("Users's init has completed successfully")
        gc.freeze()  # the model and everything init() built: never rescanned by the cyclic GC
        self.ready = True

    def _init_failed(self, error: BaseException) -> None:
        self.console_err.write("init() failed, the server will exit:\n" + "".join(traceback.format_exception(error)))
        self.console_err.flush()
        if self.capture is not None:
            guarded(self.capture.exception, error, severity=4, extra={"phase": "init"})
        self.exit_code = 3
        if self.on_fatal:
            self.on_fatal(3)


class RunJob:
    """One run() call in a pool thread, with the request's context current in that thread."""

    def __init__(self, app: ScoringApp, call: Call, operation: Operation, span_id: str):
        self.app = app
        self.call = call
        self.operation = operation
        self.span_id = span_id
        self.thread_id: int | None = None
        self.abandoned = False
        self.lock = threading.Lock()

    def __call__(self) -> Reply:
        with self.lock:
            if self.abandoned:
                return message_reply(408, "abandoned")
            self.thread_id = threading.get_ident()
        try:
            return self._serve()
        except ScoringTimeout:
            return message_reply(408, "timeout")
        finally:
            with self.lock:
                self.thread_id = None

    def _serve(self) -> Reply:
        capture = self.app.capture
        if capture is None:
            return self._call()
        operation = Operation(self.operation.operation_id, self.span_id, self.operation.name, self.operation.request_id)
        with capture.scoped(operation), dependencies.current(self.operation.operation_id, self.span_id):
            return self._call()

    def _call(self) -> Reply:
        """Arguments, run(), and its result as a reply; in the request's scope."""
        try:
            kwargs = self.app.script.arguments(self.call)
        except InputError as error:
            return message_reply(error.status, str(error))
        started = time.perf_counter()
        try:
            result = self.app.script.run(**kwargs)
        except ScoringTimeout:
            raise
        except BaseException as error:
            self._report(error, "Encountered Exception while running run():")
            return message_reply(500, RUN_FAILED, failed=True)
        return self._reply(result, (time.perf_counter() - started) * 1000)

    def _reply(self, result, exec_ms: float) -> Reply:
        if isinstance(result, aml.AMLResponse):
            headers = [(b"content-type", result.content_type.encode("latin-1"))]
            headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in result.headers]
            return Reply(result.status_code, result.body, headers, failed=result.run_function_failed, exec_ms=exec_ms)
        try:
            body = orjson.dumps(result, option=_ORJSON_OPTIONS)
        except TypeError:
            try:
                body = json.dumps(result).encode()
            except (TypeError, ValueError) as error:
                self._report(error, "run() returned a value that cannot be turned into JSON:")
                return message_reply(500, INTERNAL_ERROR)
        return Reply(200, body, exec_ms=exec_ms)

    def _report(self, error: BaseException, headline: str) -> None:
        text = headline + "\n" + "".join(traceback.format_exception(error))
        self.app.console_err.write(text)
        self.app.console_err.flush()
        if self.app.capture is not None:
            guarded(self.app.capture.exception, error)

    def abandon(self) -> None:
        """The client got its 408: report where run() was, then stop it if it is still running."""
        with self.lock:
            self.abandoned = True
            thread_id = self.thread_id
        if thread_id is None:
            return
        frame = sys._current_frames().get(thread_id)
        stack = traceback.extract_stack(frame) if frame is not None else []
        error = ScoringTimeout(f"run() did not finish within SCORING_TIMEOUT_MS={self.app.settings.scoring_timeout_ms} ms")
        self.app.console_err.write(f"{error}; it was at:\n" + "".join(traceback.format_list(stack)))
        if self.app.capture is not None:
            with self.app.capture.scoped(Operation(self.operation.operation_id, self.span_id, self.operation.name,
                                                   self.operation.request_id)):
                guarded(self.app.capture.exception, error, frames=stack)
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(ScoringTimeout))


def guarded(record, *args, **kwargs) -> None:
    """Record telemetry; a failure to do so is logged, and never changes what the client gets."""
    try:
        record(*args, **kwargs)
    except Exception:
        log.exception("could not record telemetry")


class _null_scope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# -- request parsing helpers ---------------------------------------------------------------------

_INTERESTING = {b"x-request-id", b"x-ms-request-id", b"x-ms-client-request-id", b"traceparent", b"content-length",
                b"host", b"origin", b"access-control-request-headers", b"traceid"}


def _interesting_headers(raw) -> dict:
    return {name: value for name, value in raw if name in _INTERESTING}


def _decoded_headers(raw) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]


def _request_ids(headers: dict) -> dict:
    """azmlinfsrv's rules: x-request-id (or a new uuid4), the client id from x-ms-client-request-id
    or else the legacy x-ms-request-id; any of them over 100 characters is a 431."""
    ids = {}
    for header in (b"x-request-id", b"x-ms-client-request-id", b"x-ms-request-id"):
        value = headers.get(header)
        if value is not None and len(value) > 100:
            ids["error"] = f"{header.decode()} must not exceed 100 characters"
    request_id = headers.get(b"x-request-id")
    ids["request"] = request_id.decode("latin-1") if request_id else str(uuid.uuid4())
    client = headers.get(b"x-ms-client-request-id") or headers.get(b"x-ms-request-id")
    if client:
        ids["client"] = client.decode("latin-1")
    return ids


def _id_headers(ids: dict, headers: dict) -> list:
    request_id = ids["request"].encode("latin-1")
    out = [(b"x-request-id", request_id), (b"x-ms-request-id", ids["client"].encode("latin-1") if "client" in ids else request_id)]
    if "client" in ids:
        out.append((b"x-ms-client-request-id", ids["client"].encode("latin-1")))
    trace_id = headers.get(b"traceid")
    if trace_id:
        out.append((b"traceid", trace_id))
    return out


def _operation(headers: dict, ids: dict, name: str) -> Operation:
    """The incoming traceparent when there is one; else the request id when it is a UUID (so the
    operation id and the request id name the same thing); else a new trace id."""
    parent = None
    traceparent = headers.get(b"traceparent")
    operation_id = None
    if traceparent:
        parts = traceparent.decode("latin-1").strip().split("-")
        if len(parts) >= 4 and len(parts[1]) == 32 and len(parts[2]) == 16 and _hex(parts[1]) and _hex(parts[2]) \
                and parts[1] != "0" * 32:
            operation_id, parent = parts[1].lower(), parts[2].lower()
    if operation_id is None:
        try:
            operation_id = uuid.UUID(ids["request"]).hex
        except ValueError:
            operation_id = f"{random.getrandbits(128):032x}"
    return Operation(operation_id, parent, name, ids["request"])


def _hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


async def _read_body(receive, headers: dict, limit: int) -> bytes | None:
    """The whole body, or None when it exceeds the limit (checked on Content-Length first)."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if len(chunks) != 1 else chunks[0]
