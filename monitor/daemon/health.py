"""``/healthz`` (JSON, 503 when unhealthy), ``/metrics`` and the status page (``/``,
``/api/status``) on a small local HTTP server.

The scheduler's jobs write into ``HealthState``; the server threads only read snapshots of
it, so a scrape never touches the database or waits for a poll. The status page reads its
own read-only connection (``status_page.api``), once per poll; the probes never need a token,
the page and /api/* do off loopback (``status_page.access``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

from monitor.core.quote_policy import DEGRADED_KINDS
from monitor.daemon.metrics import Metrics
from monitor.daemon.status_page.access import COOKIE, Access, query_token
from monitor.daemon.status_page.page import csp, render_page
from monitor.errors import ConfigError
from monitor.ports import PollResult

log = structlog.get_logger("mcap.health")

SymbolStatus = Literal["unknown", "ok", "failing", "stale", "degraded"]


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464`` for IPv6) into its parts, or ``ConfigError``."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(
            f"invalid health.listen {value!r}",
            "health.listen",
            'use "host:port", e.g. "127.0.0.1:9464"',
        )
    return host, int(port)


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


@dataclass
class SymbolHealth:
    status: SymbolStatus = "unknown"
    last_success: float | None = None
    last_attempt: float | None = None
    source: str = ""
    error: str = ""


class HealthState:
    """What /healthz reports; every method is thread-safe."""

    def __init__(self, symbols: Iterable[str], heartbeat_max_age: float) -> None:
        self._lock = threading.Lock()
        self.heartbeat_max_age = heartbeat_max_age
        self._symbols = {s: SymbolHealth() for s in symbols}
        self._heartbeat: float | None = None
        self._outbox: dict[str, int] = {"pending": 0, "delivered": 0, "dead": 0}
        self._blocked: dict[str, str] = {}
        self._in_session = False
        self._jobs_failing: dict[str, str] = {}
        self._summary = ""
        self._sources: dict[str, dict[str, Any]] = {}
        self._role: dict[str, Any] = {"role": "leader", "leader": "", "epoch": 0}

    def set_symbols(self, symbols: Iterable[str]) -> None:
        with self._lock:
            self._symbols = {s: self._symbols.get(s, SymbolHealth()) for s in symbols}

    def record_poll(self, now: float, polled: Iterable[str], result: PollResult) -> None:
        """A poll's outcome per symbol: ok, failing (with why) or stale."""
        got = {o.symbol: o.source for o in result.observations}
        degraded = {f.subject: f for f in result.failures if f.kind in DEGRADED_KINDS}
        failed = {f.subject: f for f in result.failures if f.kind not in DEGRADED_KINDS}
        stale = set(result.stale)
        with self._lock:
            self._blocked = dict(result.blocked_pairs)
            for source in set(got.values()):
                self._sources.setdefault(source, {})["last_success"] = now
            for f in result.failures:
                entry_src = self._sources.setdefault(f.source, {})
                entry_src["last_failure"] = now
                entry_src["last_error"] = f"{f.subject}: {f.kind}: {f.message}"
            for symbol in polled:
                entry = self._symbols.setdefault(symbol, SymbolHealth())
                entry.last_attempt = now
                if symbol in degraded:
                    # sources disagree / share count mismatch: degraded, not failing
                    d = degraded[symbol]
                    entry.status, entry.error = "degraded", f"{d.kind}: {d.message}"
                    if symbol in got:
                        entry.last_success, entry.source = now, got[symbol]
                elif symbol in got:
                    entry.status, entry.error = "ok", ""
                    entry.last_success = now
                    entry.source = got[symbol]
                elif symbol in failed:
                    f = failed[symbol]
                    entry.status, entry.source, entry.error = "failing", f.source, f.message
                elif symbol in stale:
                    entry.status, entry.error = "stale", "quote older than max_quote_age"

    def record_poll_error(self, now: float, polled: Iterable[str], message: str) -> None:
        with self._lock:
            for symbol in polled:
                entry = self._symbols.setdefault(symbol, SymbolHealth())
                entry.last_attempt = now
                entry.status, entry.source, entry.error = "failing", "daemon", message

    def record_job(self, job: str, error: str | None) -> None:
        with self._lock:
            if error is None:
                self._jobs_failing.pop(job, None)
            else:
                self._jobs_failing[job] = error

    def heartbeat(self, now: float) -> None:
        with self._lock:
            self._heartbeat = now

    def set_outbox(self, counts: dict[str, int]) -> None:
        with self._lock:
            self._outbox = dict(counts)

    def set_session(self, in_session: bool) -> None:
        with self._lock:
            self._in_session = in_session

    def set_role(self, role: dict[str, Any]) -> None:
        """``role``, ``leader``, ``epoch``... of this instance (``daemon.roles``)."""
        with self._lock:
            self._role = dict(role)

    def set_summary(self, text: str) -> None:
        with self._lock:
            self._summary = text

    def snapshot(self, now: float) -> tuple[bool, dict[str, Any]]:
        """(healthy, the JSON body)."""
        with self._lock:
            problems: list[str] = []
            warnings: list[str] = []
            beat = self._heartbeat
            if beat is None or now - beat > self.heartbeat_max_age:
                problems.append("scheduler heartbeat missing")
            symbols: dict[str, Any] = {}
            for name, entry in self._symbols.items():
                item = asdict(entry)
                item["last_success"] = _iso(entry.last_success)
                item["last_attempt"] = _iso(entry.last_attempt)
                item["stale"] = entry.status == "stale"
                symbols[name] = item
                if entry.status in ("failing", "stale"):
                    problems.append(f"{name}: {entry.status}")
                elif entry.status == "degraded":
                    warnings.append(f"{name}: {entry.error}")
            for pair, why in self._blocked.items():
                problems.append(f"FX {pair} blocked: {why}")
            for job, error in self._jobs_failing.items():
                problems.append(f"job {job} failing: {error}")
            body: dict[str, Any] = {
                "status": "unhealthy" if problems else "degraded" if warnings else "ok",
                "problems": problems,
                "warnings": warnings,
                "summary": self._summary,
                **self._role,
                "in_session": self._in_session,
                "scheduler_heartbeat": _iso(beat),
                "symbols": symbols,
                "sources": {
                    name: {
                        "last_success": _iso(v.get("last_success")),
                        "last_failure": _iso(v.get("last_failure")),
                        "last_error": v.get("last_error", ""),
                    }
                    for name, v in self._sources.items()
                },
                "fx_blocked": dict(self._blocked),
                "deliveries": {
                    "pending": self._outbox.get("pending", 0),
                    "dead": self._outbox.get("dead", 0),
                },
            }
        return not problems, body


class StatusSource(Protocol):
    """The status page's data (``status_page.api.StatusProvider``)."""

    def document(self) -> tuple[dict[str, Any], bytes]: ...
    def close(self) -> None: ...


class HealthServer:
    """``ThreadingHTTPServer`` for /healthz, /metrics and the status page in a daemon thread."""

    def __init__(
        self,
        listen: tuple[str, int],
        state: HealthState,
        metrics: Metrics,
        clock: Callable[[], float],
        *,
        status: StatusSource | None = None,
        access: Access | None = None,
    ) -> None:
        gate = access or Access.for_listen(listen[0], None)
        self.status = status
        handler = _handler(state, metrics, clock, status, gate)
        self.server = ThreadingHTTPServer(listen, handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=2)
        if self.status is not None:
            self.status.close()


def _handler(
    state: HealthState,
    metrics: Metrics,
    clock: Callable[[], float],
    status: StatusSource | None,
    access: Access,
) -> type[BaseHTTPRequestHandler]:
    page_routes = ("/", "/index.html", "/api/status") if status is not None else ()

    class Handler(BaseHTTPRequestHandler):
        timeout = 5  # a stuck client never pins a server thread
        server_version = "mcap-monitor"
        sys_version = ""
        _head = False

        def version_string(self) -> str:
            return self.server_version  # the base class appends " " + sys_version

        def do_HEAD(self) -> None:
            self._head = True  # RFC 9110: the GET answer's status and headers, no body
            self.do_GET()

        def _not_allowed(self) -> None:
            self.send_response(405)
            self.send_header("Allow", "GET, HEAD")
            self.send_header("Content-Type", "text/plain")
            data = b"method not allowed: use GET or HEAD\n"
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            if path == "/healthz":
                healthy, body = state.snapshot(clock())
                data = json.dumps(body, indent=1).encode()
                self._send(200 if healthy else 503, "application/json", data)
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, metrics.render())
            elif path in page_routes and status is not None:
                self._page(path, parts.query, status)
            else:
                hint = "/, /api/status, " if status is not None else ""
                self._send(
                    404, "text/plain", f"not found: try {hint}/healthz or /metrics\n".encode()
                )

        def _page(self, path: str, query: str, status: StatusSource) -> None:
            verdict = access.check(
                self.headers.get("Authorization"), self.headers.get("Cookie"), query
            )
            if verdict == "no_token":
                self._send(
                    403,
                    "text/plain; charset=utf-8",
                    b"forbidden: [health] listen is not a loopback address and no [health] "
                    b"token is set; set token (or token_credential, or MCAP_HEALTH__TOKEN), "
                    b"or listen on 127.0.0.1 and use ssh -L 9464:127.0.0.1:9464 host\n",
                )
                return
            if verdict == "unauthorized":
                self._send(
                    401,
                    "text/plain; charset=utf-8",
                    b"unauthorized: send Authorization: Bearer <[health] token>, "
                    b"or open /?token=<token> once in a browser\n",
                    {"WWW-Authenticate": 'Bearer realm="mcap-monitor"'},
                )
                return
            offered = query_token(query)
            if offered and not access.open and access.matches(offered):
                # the token leaves the address bar (and the history) for a cookie
                cookie = f"{COOKIE}={access.cookie_value()}; HttpOnly; SameSite=Strict; Path=/"
                self._send(303, "text/plain", b"see /\n", {"Location": path, "Set-Cookie": cookie})
                return
            try:
                doc, data = status.document()
            except Exception as exc:  # noqa: BLE001 - the probes stay up whatever the store does
                log.error("status_page_unavailable", error=f"{type(exc).__name__}: {exc}")
                self._send(503, "text/plain", b"status page unavailable: see the daemon's log\n")
                return
            if path == "/api/status":
                self._send(200, "application/json; charset=utf-8", data)
                return
            html, nonce = render_page(doc)
            self._send(
                200,
                "text/html; charset=utf-8",
                html,
                {
                    "Content-Security-Policy": csp(nonce),
                    "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer",
                },
            )

        def _send(
            self, code: int, ctype: str, data: bytes, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if not self._head:
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return  # scrapes every 15 s would drown the journal

    return Handler
