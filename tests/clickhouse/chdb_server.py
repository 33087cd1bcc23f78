"""A ClickHouse HTTP endpoint backed by chdb, for tests: it stands in for a ClickHouse server.

Why it exists: a real ClickHouse server cannot run on these machines (Debian's package is 18.16 from
2018, there is no container engine), but chdb-core is ClickHouse's engine in-process, and one process
may open a chdb database. Collectors in production reach ClickHouse over HTTP with clickhouse-connect;
to exercise that same client code path, and to let several collector *processes* share one store,
this process owns the chdb database and serves the subset of ClickHouse's HTTP interface that
clickhouse-connect 1.12 uses:

- the query in the POST body, in the ``query`` URL parameter, or both (parameter first, then body);
  multipart form fields ``query`` and ``param_*`` (the client's form encoding for long parameters);
- ``database``; typed parameters ``param_NAME`` for ``{NAME:Type}``; every other URL parameter that is
  not a transport option is a setting for that one request (``readonly=1``, ``max_execution_time``...);
- authentication by ``X-ClickHouse-User``/``X-ClickHouse-Key``, HTTP basic auth or ``user``/``password``
  parameters (one user, given on the command line; a wrong one answers code 516);
- ``default_format`` (TabSeparated otherwise); results in whatever format the query names, Native
  for the client's queries (chdb writes it);
- inserts with data: ``INSERT ... FORMAT X`` followed by a body (``insert_arrow`` sends Arrow,
  ``insert`` sends Native, chunked). The body is written to a file and inserted with ``FROM INFILE``,
  so ClickHouse's own input format reads it against the table's structure, as a server does;
- the ``X-ClickHouse-Summary``, ``X-ClickHouse-Query-Id``, ``X-ClickHouse-Timezone`` headers; errors
  as HTTP 500 with ClickHouse's ``Code: N. DB::Exception: ...`` text and ``X-ClickHouse-Exception-Code``,
  so the client raises its real ``DatabaseError``;
- ``/ping`` and ``/`` answering ``Ok.``.

Not served: HTTP compression (clients must pass ``compress=False``; a compressed body is refused with
an error), sessions (each request runs in a fresh chdb connection, so ``SET`` and temporary tables do
not outlive their request, as when no ``session_id`` is sent), progress headers, replication.

Requests are serialized under one lock: chdb is one engine per process, and serial execution is a
strict subset of what a server allows concurrently, so a test that passes here does not rely on any
server-side concurrency. Each request opens its own chdb connection on the shared database (~1 ms)
so that its settings (``readonly`` above all, which cannot be unset) die with it.

Usage: ``python tests/clickhouse/chdb_server.py --port P --path DIR [--user U --password W]``; it
prints ``listening on 127.0.0.1:P`` once it serves.
"""

from __future__ import annotations

import argparse
import base64
import email.parser
import email.policy
import hmac
import json
import re
import tempfile
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import chdb

TRANSPORT_PARAMS = frozenset(
    {
        "query", "database", "default_format", "user", "password", "query_id", "session_id",
        "session_timeout", "session_check", "compress", "decompress", "buffer_size", "quota_key",
        "wait_end_of_query", "send_progress_in_http_headers", "http_headers_progress_interval_ms",
        "cancel_http_readonly_queries_on_client_close", "enable_http_compression",
        "client_protocol_version", "role", "http_response_buffer_size",
    }
)
INSERT_WITH_DATA = re.compile(rb"^\s*(INSERT\s.*?)\bFORMAT\s+(\w+)[ \t]*(?:\r?\n|$)", re.IGNORECASE | re.DOTALL)
ERROR_CODE = re.compile(r"Code:\s*(\d+)\.")
AUTHENTICATION_FAILED = 516


@dataclass
class Request:
    """What one HTTP request asks of the engine, once parsed."""

    sql: bytes
    data: bytes | None
    database: str
    default_format: str
    settings: dict[str, str]
    params: dict[str, str]
    query_id: str


@dataclass
class Outcome:
    body: bytes
    summary: dict[str, str] = field(default_factory=dict)


class QueryError(Exception):
    """A ClickHouse exception: its code and its ``Code: N. DB::Exception:`` text."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class Engine:
    """One chdb database, executing one request at a time."""

    def __init__(self, path: Path, timezone_name: str) -> None:
        self.path = path
        self.spool = path / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.primary = chdb.connect(str(path / "data"))  # keeps the engine up between requests
        self.timezone = timezone_name

    def execute(self, request: Request) -> Outcome:
        with self.lock:
            conn = chdb.connect(str(self.path / "data"))
            try:
                return self._run(conn, request)
            finally:
                conn.close()

    def _run(self, conn: Any, request: Request) -> Outcome:
        self._call(conn, f"USE {quote_identifier(request.database)}", {}, "TabSeparated")
        if request.settings:
            assignments = ", ".join(f"{name} = {quote_literal(value)}" for name, value in request.settings.items())
            self._call(conn, f"SET {assignments}", {}, "TabSeparated")
        if request.data is not None:
            return self._insert(conn, request)
        result = self._call(conn, request.sql.decode(), request.params, request.default_format)
        return Outcome(result.bytes(), summary_of(result))

    def _insert(self, conn: Any, request: Request) -> Outcome:
        match = INSERT_WITH_DATA.match(request.sql)
        assert match is not None and request.data is not None
        if not request.data:
            return Outcome(b"", {"written_rows": "0", "written_bytes": "0"})
        spool = self.spool / f"{uuid.uuid4().hex}.data"
        spool.write_bytes(request.data)
        try:
            statement = f"{match.group(1).decode()} FROM INFILE {quote_literal(str(spool))} FORMAT {match.group(2).decode()}"
            result = self._call(conn, statement, request.params, "TabSeparated")
        finally:
            spool.unlink(missing_ok=True)
        return Outcome(b"", summary_of(result))

    @staticmethod
    def _call(conn: Any, sql: str, params: dict[str, str], fmt: str) -> Any:
        try:
            return conn._conn.query(sql, fmt, params=params)
        except RuntimeError as error:
            text = str(error).strip()
            code = ERROR_CODE.search(text)
            raise QueryError(int(code.group(1)) if code else 1002, text) from None


def summary_of(result: Any) -> dict[str, str]:
    """The fields of ClickHouse's X-ClickHouse-Summary that chdb reports."""
    return {
        "read_rows": str(result.rows_read()),
        "read_bytes": str(result.bytes_read()),
        "written_rows": str(result.rows_written()),
        "written_bytes": str(result.bytes_written()),
        "total_rows_to_read": "0",
        "result_rows": str(result.rows_read()),
        "result_bytes": str(len(result.bytes())),
        "elapsed_ns": str(int(result.elapsed() * 1e9)),
    }


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_request(url_params: dict[str, str], body: bytes, content_type: str) -> Request:
    """Split URL parameters and body into the statement, its data, settings and typed parameters."""
    params = dict(url_params)
    if content_type.startswith("multipart/form-data"):
        params.update(form_fields(body, content_type))
        body = b""
    sql = params.get("query", "").encode()
    data: bytes | None = None
    if sql and body:
        match = INSERT_WITH_DATA.match(sql)
        if match and not sql[match.end():].strip():
            data = body
        else:
            sql = sql + b"\n" + body
    elif body:
        sql = body
    if data is None:
        match = INSERT_WITH_DATA.match(sql)
        if match and sql[match.end():]:
            sql, data = sql[: match.end()], sql[match.end():]
    settings = {k: v for k, v in params.items() if k not in TRANSPORT_PARAMS and not k.startswith("param_")}
    return Request(
        sql=sql,
        data=data,
        database=params.get("database", "default"),
        default_format=params.get("default_format", "TabSeparated"),
        settings=settings,
        params={k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")},
        query_id=params.get("query_id") or str(uuid.uuid4()),
    )


def form_fields(body: bytes, content_type: str) -> dict[str, str]:
    """The text fields of a multipart/form-data body (the client's form-encoded query)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = part.get_payload(decode=True).decode()
    return fields


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine: Engine
    user: str
    password: str

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: tests read the collector's logs, not one line per query."""

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        self._serve(self._read_body())

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self, body: bytes) -> None:
        split = urllib.parse.urlsplit(self.path)
        if split.path in ("/ping", "/") and not split.query and not body:
            self._answer(200, b"Ok.\n", {})
            return
        url_params = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        if not self._authenticated(url_params):
            text = f"Code: {AUTHENTICATION_FAILED}. DB::Exception: {self._user(url_params)}: Authentication failed. (AUTHENTICATION_FAILED)"
            self._fail(401, QueryError(AUTHENTICATION_FAILED, text), "")
            return
        if self.headers.get("Content-Encoding", "identity") not in ("", "identity"):
            text = "Code: 1002. DB::Exception: compressed requests are not served by this test stand-in. (UNKNOWN_EXCEPTION)"
            self._fail(500, QueryError(1002, text), "")
            return
        request = parse_request(url_params, body, self.headers.get("Content-Type", ""))
        try:
            outcome = self.engine.execute(request)
        except QueryError as error:
            self._fail(500, error, request.query_id)
            return
        self._answer(200, outcome.body, {
            "X-ClickHouse-Summary": json.dumps(outcome.summary),
            "X-ClickHouse-Query-Id": request.query_id,
            "X-ClickHouse-Timezone": self.engine.timezone,
            "X-ClickHouse-Format": request.default_format,
        })

    def _user(self, url_params: dict[str, str]) -> str:
        return self._credentials(url_params)[0]

    def _credentials(self, url_params: dict[str, str]) -> tuple[str, str]:
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            return user, password
        if "X-ClickHouse-User" in self.headers:
            return self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
        return url_params.get("user", "default"), url_params.get("password", "")

    def _authenticated(self, url_params: dict[str, str]) -> bool:
        user, password = self._credentials(url_params)
        return hmac.compare_digest(user.encode(), self.user.encode()) and hmac.compare_digest(
            password.encode(), self.password.encode()
        )

    def _fail(self, status: int, error: QueryError, query_id: str) -> None:
        headers = {"X-ClickHouse-Exception-Code": str(error.code)}
        if query_id:
            headers["X-ClickHouse-Query-Id"] = query_id
        self._answer(status, (error.text + "\n").encode(), headers)

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8" if status != 200 else "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def serve(port: int, path: Path, user: str, password: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(path)
    engine = Engine(path, timezone_name="UTC")
    engine.timezone = engine.primary.query("SELECT timezone()", "TabSeparated").bytes().decode().strip()
    handler = type("BoundHandler", (Handler,), {"engine": engine, "user": user, "password": password})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", type=Path, required=True)
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    args = parser.parse_args()
    serve(args.port, args.path, args.user, args.password)


if __name__ == "__main__":
    main()
