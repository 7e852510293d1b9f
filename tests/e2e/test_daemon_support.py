"""Support for the daemon e2e tests (no tests here): a NOTIFY_SOCKET listener, a Standard
webhooks receiver that verifies signatures independently, and the daemon itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TAPE = REPO / "monitor" / "data" / "xiaomi_2025-01-20_2025-03-10.csv"
SECRET = "whsec_" + base64.b64encode(b"e2e-test-key-0123456789abcdef!!").decode()


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class NotifyListener:
    """A datagram socket in the abstract namespace, collecting sd_notify messages."""

    def __init__(self) -> None:
        self.name = f"mcap-e2e-{os.getpid()}-{uuid.uuid4().hex[:10]}"
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


class WebhookReceiver:
    """Accepts Standard Webhooks POSTs whose signature verifies; records each webhook-id."""

    def __init__(self, secret: str = SECRET) -> None:
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.received: list[str] = []
        self.bodies: dict[str, dict[str, Any]] = {}
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                msg_id = self.headers.get("webhook-id", "")
                ts = self.headers.get("webhook-timestamp", "")
                sig = self.headers.get("webhook-signature", "")
                expected = base64.b64encode(
                    hmac.new(
                        receiver.key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256
                    ).digest()
                ).decode()
                if f"v1,{expected}" not in sig.split(" "):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.received.append(msg_id)
                receiver.bodies[msg_id] = json.loads(body)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def counts(self) -> Counter[str]:
        return Counter(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_config(
    path: Path,
    *,
    state_dir: Path,
    webhook_url: str,
    poll_interval: float = 0.1,
    tape: Path = TAPE,
    extra: str = "",
) -> Path:
    path.write_text(
        f"""
[[symbols]]
symbol = "1810.HK"
name = "Xiaomi"
shares = 25_105_000_000

[[rules]]
id = "hkd-1t"
symbol = "1810.HK"
threshold = 1_000_000_000_000
currency = "HKD"

[[rules]]
id = "cny-1t"
symbol = "1810.HK"
threshold = 1_000_000_000_000
currency = "CNY"

[[sinks]]
id = "hook"
type = "webhook"
url = "{webhook_url}"
secret = "{SECRET}"

[source]
kind = "tape"
path = "{tape}"

[health]
listen = "127.0.0.1:0"

[daemon]
poll_interval = {poll_interval}
jitter = 0
state_dir = "{state_dir}"
{extra}
""",
        encoding="utf-8",
    )
    return path


def expected_message_ids(config: Path) -> set[str]:
    """What the webhook must receive: the same tape through the engine on a fresh store."""
    from monitor.service import Engine
    from monitor.settings import load_settings
    from monitor.sources.tape import TapeReader
    from monitor.store import Store

    settings, _ = load_settings(config)
    store = Store.open(None)
    try:
        Engine(settings, store).process(TapeReader(settings.source.path or TAPE), time.time())
        return {row.message_id for row in store.outbox_list()}
    finally:
        store.close()


class DaemonProcess:
    """``python -m monitor --config CFG run`` with a NOTIFY_SOCKET and a watchdog."""

    def __init__(
        self,
        config: Path,
        log_path: Path,
        notify: NotifyListener | None,
        *,
        watchdog_usec: int = 2_000_000,
        prelude: str = "",
    ) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_PID")}
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("STATE_DIRECTORY", None)
        if notify is not None:
            env["NOTIFY_SOCKET"] = notify.address
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        code = (
            f"{prelude}\nimport sys\nfrom monitor.cli import main\n"
            f"sys.exit(main(['--config', {str(config)!r}, 'run']))"
        )
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=str(config.parent),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def log_lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "raw", "line": line})
        return out

    def logged(self, event: str) -> bool:
        return any(rec.get("event") == event for rec in self.log_lines())

    def health_url(self, timeout: float = 15) -> str:
        def started() -> bool:
            return self.logged("daemon_started")

        assert wait_until(started, timeout), self.log_path.read_text()
        rec = next(r for r in self.log_lines() if r.get("event") == "daemon_started")
        return f"http://{rec['health']}"

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 10) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds taken)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


@contextmanager
def running(*args: Any, **kwargs: Any) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(*args, **kwargs)
    try:
        yield proc
    finally:
        proc.kill()
