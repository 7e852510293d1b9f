"""The hand-written fakes of the test suite, in one place: a clock, a price source, a
dispatcher, a local HTTP receiver and a NOTIFY_SOCKET listener.

The fake Yahoo Finance (a ``curl_cffi`` session) lives in ``yahoo_fake.py``: the benchmarks
use it too. Configs and tapes for the delivery tests are in ``delivery_setup.py``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from monitor.core.valuation import Observation
from monitor.ports import DeliveryStats, PollResult, SourceFailure, SourceGauges

DEADLINE = 60.0
HKT = ZoneInfo("Asia/Hong_Kong")


def at(day: str, hhmm: str) -> datetime:
    """Wall-clock time in Hong Kong, e.g. ``at("2025-02-10", "16:05")``."""
    return datetime.fromisoformat(f"{day}T{hhmm}:00").replace(tzinfo=HKT)


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds have passed; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the clock ------------------------------------------------------------------------------
class FakeClock:
    """A clock the test sets and advances; ``now()`` is always timezone-aware.

    Stopped by default: ``now()`` is ``when`` until the test moves it. After ``run()`` it
    moves on in real time from ``when`` (strictly increasing times for the real scheduler).
    """

    def __init__(self, start: datetime | float, tz: tzinfo = UTC) -> None:
        if isinstance(start, datetime):
            if start.tzinfo is None:
                raise ValueError("FakeClock wants a timezone-aware datetime")
            self._when = start
        else:
            self._when = datetime.fromtimestamp(start, tz)
        self._running_since: float | None = None

    @property
    def when(self) -> datetime:
        return self.now()

    @when.setter
    def when(self, value: datetime) -> None:
        if value.tzinfo is None:
            raise ValueError("FakeClock wants a timezone-aware datetime")
        self._when = value
        if self._running_since is not None:
            self._running_since = time.monotonic()

    def advance(self, seconds: float) -> datetime:
        self.when = self.now() + timedelta(seconds=seconds)
        return self._when

    def run(self) -> FakeClock:
        self._running_since = time.monotonic()
        return self

    def now(self) -> datetime:
        if self._running_since is None:
            return self._when
        return self._when + timedelta(seconds=time.monotonic() - self._running_since)

    def timestamp(self) -> float:
        return self.now().timestamp()


# -- the source and the dispatcher ----------------------------------------------------------
class FakeSource:
    """Answers each poll with one quote per symbol at ``price``, or as ``mode`` says.

    Modes: ``"ok"``; ``"fail"`` (every symbol failed, nothing raised); ``"stale"`` (every
    symbol stale); ``"raise"`` (the poll raises). ``script`` gives the modes of the first
    polls, one each, before ``mode`` applies. ``calls`` holds the time of each poll;
    ``max_active`` the most polls that ever ran at once (``delay`` makes each one slow).
    """

    def __init__(
        self,
        price: float | str | Decimal = 40,
        *,
        mode: str = "ok",
        script: Sequence[str] = (),
        delay: float = 0.0,
        quote_source: str = "tape",
    ) -> None:
        self.price = Decimal(str(price))
        self.mode = mode
        self.script = list(script)
        self.delay = delay
        self.quote_source = quote_source
        self.calls: list[datetime] = []
        # what a live source learns between sources, for the metrics
        self.fx_disagreement: dict[str, Decimal] = {}
        self.shares_gap: dict[str, Decimal] = {}
        self.exhausted = False
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def poll(self, symbols: Sequence[str], now: datetime) -> PollResult:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            mode = self.script.pop(0) if self.script else self.mode
        try:
            self.calls.append(now)
            if self.delay:
                time.sleep(self.delay)
            if mode == "raise":
                raise RuntimeError("source exploded")
            if mode == "fail":
                failures = [
                    SourceFailure("yahoo", s, "network", "connection refused") for s in symbols
                ]
                return PollResult(failures=failures)
            if mode == "stale":
                return PollResult(stale=list(symbols))
            assert mode == "ok", mode
            return PollResult(
                observations=[
                    Observation(now, s, self.price, "HKD", source=self.quote_source)
                    for s in symbols
                ]
            )
        finally:
            with self._lock:
                self.active -= 1

    def refresh_offhours(self, now: datetime) -> PollResult:
        return PollResult()

    def refresh_ranking(self, now: datetime) -> PollResult:
        return PollResult()

    def verify_symbols(self, now: datetime) -> None:
        return None

    def gauges(self) -> SourceGauges:
        return SourceGauges(dict(self.fx_disagreement), dict(self.shares_gap))


class FakeDispatcher:
    """Delivers nothing; counts the delivery passes."""

    def __init__(self) -> None:
        self.passes = 0

    def deliver_due(self, now: float) -> DeliveryStats:
        self.passes += 1
        return DeliveryStats()

    def close(self) -> None:
        return None


# -- the HTTP receiver ----------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str | bytes = ""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # hold the request until the receiver is released or closed
    # hostile answers: ``stream`` filler bytes after ``body``, written ``chunk`` bytes at a
    # time with ``drip`` seconds between chunks (never held in memory)
    stream: int = 0
    chunk: int = 65536
    drip: float = 0.0


HANG = Reply(hang=True)


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float
    reply: Reply | None = None  # what the script chose, before it is sent
    answered_at: float = 0.0
    status: int = 0  # the status sent, once the answer is written
    sent: int = 0  # bytes of the body written before the client went away

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


Script = Sequence[Reply] | Callable[[Received, int], Reply]


class Receiver:
    """A threaded HTTP/1.1 server on 127.0.0.1 recording every GET and POST and answering
    from ``script``: replies in order (the last one repeated), or a callable of the request
    and its index. A ``HANG`` reply holds the request until ``release`` is set or the
    receiver closes; ``before_reply`` runs just before an answer is written."""

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

            def do_GET(self) -> None:
                receiver._handle(self, "GET")

            def do_POST(self) -> None:
                receiver._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        parts = urlsplit(handler.path)
        got = Received(
            method,
            parts.path,
            parse_qs(parts.query),
            dict(handler.headers.items()),
            body,
            time.time(),
        )
        with self._cond:
            index = len(self.requests)
            self.requests.append(got)
            reply = got.reply = self._reply(got, index)
            self._cond.notify_all()
        if reply.hang:
            self.release.wait(DEADLINE)
            handler.close_connection = True
            return
        if self.before_reply is not None:
            self.before_reply(got, reply)
        data = reply.body.encode() if isinstance(reply.body, str) else reply.body
        handler.send_response(reply.status)
        for key, value in reply.headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data) + reply.stream))
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()
        got.sent = len(data)
        if reply.stream and not self._stream(handler, got, reply):
            return
        with self._cond:
            got.status = reply.status
            got.answered_at = time.time()
            self._cond.notify_all()

    def _stream(self, handler: BaseHTTPRequestHandler, got: Received, reply: Reply) -> bool:
        """Write ``reply.stream`` filler bytes; False when the client hung up first."""
        block = b"x" * reply.chunk
        left = reply.stream
        try:
            while left > 0 and not self.release.is_set():
                piece = block[: min(left, reply.chunk)]
                handler.wfile.write(piece)
                handler.wfile.flush()
                got.sent += len(piece)
                left -= len(piece)
                if reply.drip:
                    time.sleep(reply.drip)
        except OSError:
            handler.close_connection = True
            with self._cond:
                self._cond.notify_all()
            return False
        return left <= 0

    def _reply(self, got: Received, index: int) -> Reply:
        if callable(self.script):
            return self.script(got, index)
        return self.script[min(index, len(self.script) - 1)]

    def wait_for(
        self, until: int | Callable[[list[Received]], bool], timeout: float = DEADLINE
    ) -> list[Received]:
        """Block until ``until`` requests came (or ``until(requests)`` holds); fail after
        ``timeout``."""

        def done() -> bool:
            return len(self.requests) >= until if isinstance(until, int) else until(self.requests)

        with self._cond:
            if not self._cond.wait_for(done, timeout):
                raise AssertionError(f"receiver: condition not met, got {len(self.requests)}")
            return list(self.requests)

    def answered(self, status: int = 200) -> list[Received]:
        """The requests answered with ``status`` (the answer written)."""
        with self._cond:
            return [r for r in self.requests if r.status == status]

    def accepted(self) -> list[Received]:
        """The requests the script gave a 2xx reply, in arrival order."""
        with self._cond:
            return [r for r in self.requests if r.reply is not None and 200 <= r.reply.status < 300]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def standard_webhooks_consumer(secret: str) -> Callable[[Received, int], Reply]:
    """A script answering as a Standard Webhooks consumer: 200 when the signature verifies
    with the ``standardwebhooks`` library (an independent implementation), else 401."""
    hook = Webhook(secret)

    def answer(got: Received, index: int) -> Reply:
        try:
            hook.verify(got.body, got.headers)
        except WebhookVerificationError:
            return Reply(401, "bad signature")
        return Reply(200, "ok")

    return answer


# -- systemd's NOTIFY_SOCKET ----------------------------------------------------------------
class NotifyListener:
    """A datagram socket in the abstract namespace, collecting sd_notify messages."""

    def __init__(self) -> None:
        self.name = f"mcap-test-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return "@" + self.name

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append(data.decode())

    def fields(self) -> list[str]:
        return [f for m in list(self.messages) for f in m.split("\n")]

    def seen(self, field: str) -> bool:
        return field in self.fields()

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.sock.close()
