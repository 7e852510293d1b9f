"""Alert delivery: the durable outbox dispatcher, message templates and the sinks.

Public entry points: ``OutboxDispatcher`` (daemon), ``dispatch_cli`` (``replay --notify`` and
``outbox flush``), ``send_test_alerts`` (``test-alert``) and the template functions
``make_event_message`` / ``make_summary_message`` for digests.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

import requests

from monitor.errors import ConfigError, DeliveryError
from monitor.notify.logs import ensure_cli_logging
from monitor.notify.outbox import (
    CLI_SCHEDULE,
    DEFAULT_SCHEDULE,
    Backoff,
    OutboxDispatcher,
    SystemClock,
)
from monitor.notify.secrets import Redactor, redact_url
from monitor.notify.sinks.registry import build_sink, build_sinks
from monitor.notify.templates import (
    Message,
    make_digest_message,
    make_event_message,
    make_summary_message,
    make_test_message,
    message_for_row,
)
from monitor.ports import Clock
from monitor.settings import Settings
from monitor.store import Store

FLUSH_WAIT = 30.0
# how long `replay --notify` keeps retrying transient failures before it exits
WAIT_ENV = "MCAP_NOTIFY_WAIT"


def default_wait(environ: Mapping[str, str] | None = None) -> float:
    """``$MCAP_NOTIFY_WAIT`` seconds, else 30."""
    raw = (os.environ if environ is None else environ).get(WAIT_ENV, "")
    try:
        return max(0.0, float(raw)) if raw.strip() else FLUSH_WAIT
    except ValueError:
        raise ConfigError(
            f"{WAIT_ENV} must be a number of seconds, got {raw!r}", WAIT_ENV, "e.g. 30"
        ) from None


def dispatch_cli(
    settings: Settings,
    store: Store,
    *,
    wait: float | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Clock | None = None,
) -> int:
    """Deliver what is pending now, retrying transient failures for up to ``wait`` seconds
    (default ``$MCAP_NOTIFY_WAIT`` or 30).

    Prints a one-line summary on stderr; returns 0 when nothing is left pending, else 1.
    """
    ensure_cli_logging()
    report = err or sys.stderr
    with (
        requests.Session() as session,
        OutboxDispatcher(
            settings,
            store,
            session,
            clock or SystemClock(),
            backoff=Backoff(CLI_SCHEDULE, jitter=0.1),
            pass_timeout=None,
            out=out,
        ) as dispatcher,
    ):
        code = dispatcher.flush(default_wait() if wait is None else wait)
        counts = dispatcher.counts()
        busy = dispatcher.lock is not None and not dispatcher.lock.held
        holder = dispatcher.lock.holder() if busy and dispatcher.lock else ""
    line = (
        f"outbox: {counts['delivered']} delivered, {counts['pending']} pending, "
        f"{counts['dead']} dead"
    )
    if busy:
        line += (
            f"; another mcap-monitor process (pid {holder}, e.g. the daemon) is delivering "
            "from this database and will send the pending ones"
        )
    elif counts["pending"]:
        line += (
            " (waiting for a retry or the end of quiet hours): `mcap-monitor outbox` lists "
            "them; the daemon or `mcap-monitor outbox flush` sends them"
        )
    if counts["dead"]:
        line += "; see `mcap-monitor outbox --status dead`"
    print(line, file=report)
    return code


@dataclass(frozen=True)
class TestResult:
    """How one sink answered ``test-alert``."""

    sink_id: str
    delivered: bool
    detail: str
    permanent: bool = False


def send_test_alerts(
    settings: Settings,
    session: requests.Session,
    clock: Clock,
    sink_ids: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> list[TestResult]:
    """Send a marked test message to each sink (all, or ``sink_ids``) through the same sink
    code as real alerts; report each one's outcome, platform body errors included."""
    known = {s.id: s for s in settings.sinks}
    wanted = list(sink_ids) if sink_ids else list(known)
    for sid in wanted:
        if sid not in known:
            raise ConfigError(
                f"unknown sink {sid!r}", "--sink", f"configured sinks: {', '.join(known)}"
            )
    redact = Redactor()
    results: list[TestResult] = []
    now = clock.now()
    for sid in wanted:
        config = known[sid]
        try:
            sink = build_sink(config, redact, environ=environ, out=out)
        except ConfigError as exc:
            results.append(TestResult(sid, False, redact(exc.one_line()), True))
            continue
        message = make_test_message(
            sid, f"test_{sid}_{int(now.timestamp() * 1000)}", now, config.language
        )
        try:
            note = sink.deliver(message, session, now.timestamp())
        except DeliveryError as exc:
            results.append(TestResult(sid, False, redact(exc.one_line()), exc.permanent))
            continue
        results.append(TestResult(sid, True, note))
    return results


__all__ = [
    "CLI_SCHEDULE",
    "DEFAULT_SCHEDULE",
    "Backoff",
    "Message",
    "OutboxDispatcher",
    "Redactor",
    "SystemClock",
    "TestResult",
    "build_sinks",
    "dispatch_cli",
    "ensure_cli_logging",
    "make_digest_message",
    "make_event_message",
    "make_summary_message",
    "make_test_message",
    "message_for_row",
    "redact_url",
    "send_test_alerts",
]
