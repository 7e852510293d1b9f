"""Webhook receiver that runs INSIDE the container as its own unit (see boot.sh).

Usage: python3 receiver.py PORT OUT.jsonl   (copied from the systemd-check recipe)

Appends one JSON line per request: receive time, method, path, headers and the body (base64,
so signatures can be checked over the exact bytes), and answers 200 "ok". Standard library
only: it runs on the container's /usr/bin/python3, outside the project's venv.
"""

import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, OUT = int(sys.argv[1]), sys.argv[2]
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _capture(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        record = {
            "received_at": time.time(),
            "method": self.command,
            "path": self.path,
            "headers": dict(self.headers.items()),
            "body_b64": base64.b64encode(body).decode(),
        }
        with LOCK, open(OUT, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_PUT = do_GET = _capture

    def log_message(self, *args: object) -> None:  # keep the journal for the unit under test
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
