"""Deliver now and exit: ``outbox flush``, ``replay --notify`` and ``test-alert``."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import requests

from monitor.errors import ConfigError, DeliveryError
from monitor.notify.outbox import OutboxDispatcher
from monitor.notify.secrets import Redactor
from monitor.notify.templates import make_test_message
from monitor.ports import Clock, Sink
from monitor.settings import SinkConfig

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


def flush(dispatcher: OutboxDispatcher, wait_seconds: float) -> int:
    """Deliver everything pending now, retrying transient failures in-process for up to
    ``wait_seconds``; 0 when nothing is left pending, else 1."""
    deadline = time.monotonic() + wait_seconds
    if not dispatcher.claim():
        return 1
    # a time bound, not a retry budget: no request starts after it (one in flight finishes
    # within its own timeout), the rest stays pending for the next flush or the daemon
    dispatcher.stop_at = deadline
    now = dispatcher.clock.now
    dispatcher.deliver_due(now().timestamp(), force=True)
    while not dispatcher.stopped:
        due = dispatcher.next_retry()
        if due is None:
            break
        delay = due - now().timestamp()
        if time.monotonic() + max(delay, 0.0) > deadline:
            break
        if delay > 0:
            dispatcher.sleep(delay)
        dispatcher.deliver_due(now().timestamp())
    return 0 if dispatcher.pending_count() == 0 else 1


def flush_summary(dispatcher: OutboxDispatcher) -> str:
    """The one line ``outbox flush`` and ``replay --notify`` print on stderr."""
    counts = dispatcher.counts()
    lock = dispatcher.lock
    busy = lock is not None and not lock.held
    holder = lock.holder() if busy and lock is not None else ""
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
    return line


@dataclass(frozen=True)
class TestResult:
    """How one sink answered ``test-alert``."""

    sink_id: str
    delivered: bool
    detail: str
    permanent: bool = False


def wanted_sinks(configured: Sequence[SinkConfig], sink_ids: Sequence[str] | None) -> list[str]:
    """The sinks ``test-alert`` addresses (all, or ``--sink``); ``ConfigError`` for unknown."""
    known = [s.id for s in configured]
    wanted = list(sink_ids) if sink_ids else known
    for sid in wanted:
        if sid not in known:
            raise ConfigError(
                f"unknown sink {sid!r}", "--sink", f"configured sinks: {', '.join(known)}"
            )
    return wanted


def send_test_alerts(
    sinks: Mapping[str, Sink | ConfigError],
    session: requests.Session,
    clock: Clock,
    redact: Redactor,
) -> list[TestResult]:
    """Send a marked test message to each sink through the same sink code as real alerts;
    report each one's outcome, platform body errors included. A sink that could not be
    built is given as its ``ConfigError``."""
    results: list[TestResult] = []
    now = clock.now()
    for sid, sink in sinks.items():
        if isinstance(sink, ConfigError):
            results.append(TestResult(sid, False, redact(sink.one_line()), True))
            continue
        message = make_test_message(
            sid, f"test_{sid}_{int(now.timestamp() * 1000)}", now, sink.config.language
        )
        try:
            note = sink.deliver(message, session, now.timestamp())
        except DeliveryError as exc:
            results.append(TestResult(sid, False, redact(_sent_once(exc)), exc.permanent))
            continue
        results.append(TestResult(sid, True, note))
    return results


def _sent_once(exc: DeliveryError) -> str:
    """The failure as one line, without a "retrying" hint: a test alert is sent once."""
    hint = exc.hint
    if hint.startswith("retrying"):
        rest = hint.split(";", 1)[1].strip() if ";" in hint else ""
        hint = "not retried: run test-alert again" + (f" ({rest})" if rest else "")
    return DeliveryError(exc.what, exc.where, hint).one_line()
