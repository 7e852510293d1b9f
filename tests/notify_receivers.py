"""Real HTTP receivers on 127.0.0.1 for the delivery tests, plus small config helpers.

A ``Receiver`` answers from a script (one reply per request, the last one repeated), records
every request, and can hang a request until released (timeouts) or run a hook before answering.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEADLINE = 60.0


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str | bytes = ""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # hold the request until the receiver is released or closed


HANG = Reply(hang=True)


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float
    answered_at: float = 0.0
    status: int = 0

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


Script = Sequence[Reply] | Callable[[Received, int], Reply]


class Receiver:
    """A threaded HTTP/1.1 server recording requests and answering from ``script``."""

    def __init__(
        self,
        script: Script = (Reply(200, "ok"),),
        *,
        path: str = "/hook",
        before_reply: Callable[[Received, Reply], None] | None = None,
    ) -> None:
        self.script = script
        self.path = path
        self.before_reply = before_reply
        self.requests: list[Received] = []
        self._cond = threading.Condition()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                parts = urlsplit(self.path)
                got = Received(
                    "POST",
                    parts.path,
                    parse_qs(parts.query),
                    dict(self.headers.items()),
                    body,
                    time.time(),
                )
                with receiver._cond:
                    index = len(receiver.requests)
                    receiver.requests.append(got)
                    receiver._cond.notify_all()
                reply = receiver._reply(got, index)
                if reply.hang:
                    receiver.release.wait(DEADLINE)
                    self.close_connection = True
                    return
                if receiver.before_reply is not None:
                    receiver.before_reply(got, reply)
                data = reply.body.encode() if isinstance(reply.body, str) else reply.body
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                with receiver._cond:
                    got.status = reply.status
                    got.answered_at = time.time()
                    receiver._cond.notify_all()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _reply(self, got: Received, index: int) -> Reply:
        if callable(self.script):
            return self.script(got, index)
        return self.script[min(index, len(self.script) - 1)]

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = DEADLINE
    ) -> list[Received]:
        """Block until ``predicate(requests)`` holds (or fail after ``timeout``)."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.requests), timeout):
                raise AssertionError(f"receiver: condition not met, got {len(self.requests)}")
            return list(self.requests)

    def answered(self, status: int = 200) -> list[Received]:
        with self._cond:
            return [r for r in self.requests if r.status == status]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port() -> int:
    """A port nothing listens on (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- configs --------------------------------------------------------------------------------
SYMBOL = """
[[symbols]]
symbol = "1810.HK"
name = "Xiaomi"
name_zh = "小米集团"
currency = "HKD"
timezone = "Asia/Hong_Kong"
shares = 25_105_000_000

[[rules]]
id = "hkd-1t"
symbol = "1810.HK"
threshold = 1_000_000_000_000
currency = "HKD"
notify_on = ["crossed_above", "crossed_below"]
"""

TAPE_HEADER = "time,symbol,price,currency,day_high,shares\n"


def write_tape(path: Path, prices: Sequence[float]) -> Path:
    """One row per day from 2025-02-03; 1e12 HKD is crossed at a price of ~39.83."""
    rows = [TAPE_HEADER]
    for day, price in enumerate(prices):
        rows.append(
            f"2025-02-{day + 3:02d}T16:00:00+08:00,1810.HK,{price},HKD,{price},25105000000\n"
        )
    path.write_text("".join(rows), encoding="utf-8")
    return path


# prices alternate around the HK$1 trillion line: baseline below, then 6 crossings
CROSSING_PRICES = (35.0, 41.0, 38.0, 42.0, 37.0, 43.0, 36.0)
CROSSINGS = 6


def write_config(path: Path, sinks: str, extra: str = "") -> Path:
    path.write_text(SYMBOL + extra + sinks, encoding="utf-8")
    return path


def sink_toml(sink_id: str, kind: str, **fields: object) -> str:
    lines = ["[[sinks]]", f'id = "{sink_id}"', f'type = "{kind}"']
    for key, value in fields.items():
        if isinstance(value, dict):
            pairs = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{key} = {{ {pairs} }}")
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def whsec(seed: str = "test") -> str:
    return "whsec_" + base64.b64encode(hashlib.sha256(seed.encode()).digest()).decode()


def dingtalk_expected_sign(secret: str, timestamp: str) -> str:
    """As DingTalk computes it (base64 of HMAC-SHA256(secret, "ts\\nsecret"))."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_expected_sign(secret: str, timestamp: str) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
