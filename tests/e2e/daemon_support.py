"""Support for the daemon e2e tests (no tests here): the daemon's config, the webhook-ids it
must deliver, and the daemon itself as a subprocess. The NOTIFY_SOCKET listener and the
webhook receiver are in ``fakes.py``."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conftest import BUNDLED_TAPE as TAPE
from fakes import NotifyListener, Receiver, standard_webhooks_consumer, wait_until

SECRET = "whsec_" + base64.b64encode(b"e2e-test-key-0123456789abcdef!!").decode()


def webhook_receiver() -> Receiver:
    """A receiver answering 2xx only to requests whose signature verifies with ``SECRET``."""
    return Receiver(standard_webhooks_consumer(SECRET))


def accepted_ids(receiver: Receiver) -> Counter[str]:
    """How often each webhook-id was accepted (its signature verified)."""
    return Counter(r.header("webhook-id") or "" for r in receiver.accepted())


def rejected(receiver: Receiver) -> list[str]:
    """The webhook-ids of the requests not accepted (a bad signature)."""
    return [
        r.header("webhook-id") or ""
        for r in receiver.requests
        if r.reply is None or not 200 <= r.reply.status < 300
    ]


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
