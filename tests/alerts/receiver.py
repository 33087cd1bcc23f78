"""A webhook receiver PROCESS for the alert tests: it appends every POST it gets (headers and body) to
a JSON-lines file, answers 500 while a `fail` file exists beside it (a receiver that is down), and
takes as many seconds to answer as a `delay` file beside it says (a slow one).

Run: `python receiver.py PORT LOG_FILE`.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    port, log = int(sys.argv[1]), Path(sys.argv[2])
    fail, delay = log.with_name("fail"), log.with_name("delay")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if delay.exists():
                time.sleep(float(delay.read_text()))
            if fail.exists():
                self.send_response(500)
                self.end_headers()
                return
            with log.open("a") as out:
                out.write(json.dumps({"at": time.time(), "path": self.path, "headers": dict(self.headers),
                                      "body": body.decode()}) + "\n")
                out.flush()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
