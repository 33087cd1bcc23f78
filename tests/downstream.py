"""A local HTTP service standing for what score.py calls (a feature store, a model API): it answers
"ok" to every GET and remembers each call's path and `traceparent`, so tests can check that outgoing
calls became dependencies and carried the trace on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.calls.append((self.path, self.headers.get("traceparent")))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@contextmanager
def downstream_service() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """(base URL, the calls it has received so far)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.calls = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", server.calls
    finally:
        server.shutdown()
