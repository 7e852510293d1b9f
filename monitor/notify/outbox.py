"""The outbox dispatcher: sends pending rows, one lane per sink, and records each outcome.

A row is marked delivered only after the receiver's success answer, so a crash at any moment
leads at worst to a re-send carrying the same idempotency key. Each sink is a lane: its rows go
out in order (a row waiting out its backoff holds the later ones back), and lanes run on their
own threads so a hanging or dead sink never delays the others.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import requests
import structlog

from monitor.errors import DeliveryError
from monitor.notify.backoff import Backoff, retry_delay, span_text
from monitor.notify.http import request_deadline
from monitor.notify.lanes import LaneResult, Totals
from monitor.notify.quiet import QuietHours, superseded_by
from monitor.notify.secrets import Redactor
from monitor.notify.templates import message_for_row
from monitor.ports import Clock, DeliveryClaim, DeliveryStats, Sink
from monitor.settings import Settings
from monitor.store import OutboxRow, Store

log = structlog.get_logger("monitor.notify")

IDLE_WAIT = 30.0


class OutboxDispatcher:
    """Delivers outbox rows through the configured sinks (``ports.Dispatcher``).

    Drive it with ``deliver_due(now)`` from your own loop, or ``start()`` (a thread per sink)
    plus ``wake()`` after each enqueue and ``close()`` at the end. Thread-safe. A file-backed
    ``store`` is opened a second time: its writes never join the caller's transaction.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        session: requests.Session,
        clock: Clock,
        *,
        sinks: Mapping[str, Sink],
        redactor: Redactor,
        lock: DeliveryClaim | None = None,
        own_store: bool = False,
        backoff: Backoff | None = None,
        max_age: float | None = None,
        rng: random.Random | None = None,
        pass_timeout: float | None = 1.0,
        batch: int = 100,
    ) -> None:
        self.settings = settings
        self.session = session
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.max_age = float(settings.daemon.delivery_max_age if max_age is None else max_age)
        self.rng = rng or random.Random()
        self.pass_timeout = pass_timeout
        self.batch = batch
        self.redact = redactor
        self.sinks: dict[str, Sink] = dict(sinks)
        # ``own_store``: a connection of its own, closed with the dispatcher
        self._own_store = own_store
        self.store = store
        # one delivering process per db file; an in-memory db is private to this process
        self.lock = lock
        self._db = threading.Lock()
        self._lanes = {sid: threading.Lock() for sid in self.sinks}
        self._quiet = {s.id: QuietHours.parse(s.quiet_hours, s.timezone) for s in settings.sinks}
        self._names_zh = {s.symbol: s.name_zh for s in settings.symbols if s.name_zh}
        self._next: dict[str, LaneResult] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._threads: list[threading.Thread] = []
        self._wake = {sid: threading.Event() for sid in self.sinks}
        self._stop = threading.Event()
        self._unrecorded: dict[int, tuple[str, float]] = {}  # accepted, mark not written yet
        # ``time.monotonic()`` after which no request starts or waits (``outbox flush --wait``)
        self.stop_at: float | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> OutboxDispatcher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        """Run one background thread per sink; each sends its due rows and sleeps until the
        next is due or ``wake()`` is called."""
        if self._threads:
            return
        self._stop.clear()
        for sid in self.sinks:
            thread = threading.Thread(
                target=self._lane_loop, args=(sid,), name=f"mcap-sink-{sid}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """Tell the background lanes that rows were enqueued."""
        for event in self._wake.values():
            event.set()

    def close(self, timeout: float = 15.0) -> None:
        """Stop background lanes (finishing the request in flight) and release the db."""
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._record_deferred()
        if self.lock is not None:
            self.lock.release()
        if self._own_store:
            with self._db:
                self.store.close()
            self._own_store = False

    # -- one pass --------------------------------------------------------------------------
    def deliver_due(self, now: float, *, force: bool = False) -> DeliveryStats:
        """Attempt every delivery due at ``now`` once, all sinks side by side.

        ``force`` also attempts rows still waiting out a backoff (``outbox flush``). A lane
        still busy after ``pass_timeout`` seconds keeps running in the background and is
        skipped by the next pass; quiet-hour holds always apply.
        """
        if not self.claim():
            return Totals().stats(self.pending_count())
        self._retire_unknown(now)
        totals = Totals()
        if len(self.sinks) == 1:
            (sid,) = self.sinks
            result = self._run_lane(sid, now, force)
            if result is not None:
                totals.results.append(result)
        else:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=len(self.sinks), thread_name_prefix="mcap-sink"
                )
            futures: list[Future[LaneResult | None]] = [
                self._executor.submit(self._run_lane, sid, now, force) for sid in self.sinks
            ]
            done, _ = wait(futures, timeout=self.pass_timeout)
            totals.results += [r for f in done if (r := f.result()) is not None]
        return totals.stats(self.pending_count())

    def pending_count(self) -> int:
        return self.counts()["pending"]

    def counts(self) -> dict[str, int]:
        """Rows per status: pending, delivered, dead."""
        with self._db:
            return self.store.outbox_counts()

    def next_retry(self) -> float | None:
        """When the earliest lane has a row to retry (quiet-hour holds not counted)."""
        times = [r.retry_at for r in self._next.values() if r.retry_at is not None]
        return min(times) if times else None

    def next_due(self) -> float | None:
        """When something is next due, counting the end of quiet hours (for a daemon loop)."""
        times = [
            t for r in self._next.values() for t in (r.retry_at, r.held_until) if t is not None
        ]
        return min(times) if times else None

    def _now(self) -> float:
        return self.clock.now().timestamp()

    @property
    def stopped(self) -> bool:
        """``close()`` was called."""
        return self._stop.is_set()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when ``close()`` is called meanwhile."""
        self._stop.wait(seconds)

    def claim(self) -> bool:
        """Whether this process may deliver from the db (no other process is doing it)."""
        return self.lock is None or self.lock.try_acquire()

    def _run_lane(self, sid: str, now: float, force: bool) -> LaneResult | None:
        if not self.claim():
            log.debug("delivery_busy", holder=self.lock.holder() if self.lock else "")
            return None  # another process delivers from this db; it will send these rows
        lock = self._lanes[sid]
        if not lock.acquire(blocking=False):
            return None  # the previous pass of this sink is still running
        try:
            result = self._lane(sid, now, force)
        except Exception as exc:  # noqa: BLE001 - a lane must survive anything; rows stay pending
            log.error(
                "dispatcher_error", sink=sid, error=self.redact(f"{type(exc).__name__}: {exc}")
            )
            result = LaneResult(retry_at=now + self.backoff.schedule[0])
        finally:
            lock.release()
        self._next[sid] = result
        return result

    def _lane(self, sid: str, now: float, force: bool) -> LaneResult:
        sink = self.sinks[sid]
        config = sink.config
        result = LaneResult()
        self._record_deferred(sid)
        with self._db:
            pending = self.store.outbox_pending(sid, self.batch)
        rows = [r for r in pending if r.id not in self._unrecorded]
        quiet = self._quiet.get(sid)
        held_until = quiet.held_until(now) if quiet is not None else None
        tried = 0  # a lane always gets one attempt per pass, even with no time left
        for index, row in enumerate(rows):
            if held_until is not None and row.kind not in config.urgent_kinds:
                if row.next_attempt_at < held_until:
                    with self._db:
                        self.store.hold(row.id, held_until, now)
                    log.info(
                        "delivery_held",
                        sink=sid,
                        message_id=row.message_id,
                        kind=row.kind,
                        until=datetime.fromtimestamp(held_until, UTC).isoformat(),
                    )
                result.held += 1
                result.held_until = held_until
                continue
            if tried and self.stop_at is not None and time.monotonic() >= self.stop_at:
                result.retry_at = now  # out of time: the rest stays pending, untouched
                return result
            tried += 1
            if tried > 1 and not self.claim():
                result.retry_at = now  # the lease went to another instance: it sends the rest
                return result
            if not force and row.next_attempt_at > now:
                # in order: a row waiting out its backoff keeps the later ones behind it
                result.retry_at = row.next_attempt_at
                return result
            outcome, next_at = self._attempt(sink, row, rows[index + 1 :])
            if outcome == "delivered":
                result.delivered += 1
            elif outcome == "dead":
                result.dead += 1
            else:
                result.failed += 1
                result.retry_at = next_at
                return result
        result.more = len(rows) >= self.batch
        if result.more:
            result.retry_at = now
        return result

    def _attempt(
        self, sink: Sink, row: OutboxRow, later: Sequence[OutboxRow]
    ) -> tuple[str, float | None]:
        config = sink.config
        try:
            message = message_for_row(
                row.kind,
                row.payload,
                config.language,
                names_zh=self._names_zh,
                superseded_by=superseded_by(row, later),
            )
        except Exception as exc:  # noqa: BLE001 - an unreadable payload can never be sent
            return self._failed(
                row,
                sink,
                DeliveryError(
                    f"cannot render the stored message: {type(exc).__name__}",
                    sink.where,
                    permanent=True,
                ),
            )
        started = self._now()
        try:
            with request_deadline(self.stop_at):  # `flush --wait`: a bound for requests too
                note = sink.deliver(message, self.session, started)
        except DeliveryError as exc:
            return self._failed(row, sink, exc)
        except Exception as exc:  # noqa: BLE001 - a sink bug must not stop the others; retried
            return self._failed(
                row,
                sink,
                DeliveryError(
                    f"unexpected {type(exc).__name__}: {self.redact(str(exc))}", sink.where
                ),
            )
        done = self._now()
        self._record_delivered(sink.config.id, row.id, done)
        log.info(
            "delivery_succeeded",
            sink=config.id,
            message_id=row.message_id,
            kind=row.kind,
            attempt=row.attempts + 1,
            result=note,
            latency_ms=round((done - started) * 1000, 1),
        )
        return "delivered", None

    def _record_delivered(self, sid: str, row_id: int, done: float) -> bool:
        """Mark a row delivered; if the db is busy (another process holds the write lock),
        remember it so this process never sends it again and record it on a later pass."""
        try:
            with self._db:
                self.store.mark_delivered(row_id, done)
        except Exception as exc:  # noqa: BLE001 - any backend's error: recorded on a later pass
            self._unrecorded[row_id] = (sid, done)
            log.warning("delivery_record_deferred", sink=sid, row=row_id, error=str(exc))
            return False
        self._unrecorded.pop(row_id, None)
        return True

    def _record_deferred(self, sid: str | None = None) -> None:
        for row_id, (owner, done) in list(self._unrecorded.items()):
            if (sid is None or owner == sid) and not self._record_delivered(owner, row_id, done):
                return

    def _failed(self, row: OutboxRow, sink: Sink, exc: DeliveryError) -> tuple[str, float | None]:
        reason = self.redact(exc.one_line())
        now = self._now()
        attempts = row.attempts + 1
        fields: dict[str, Any] = {
            "sink": sink.config.id,
            "message_id": row.message_id,
            "kind": row.kind,
            "attempt": attempts,
            "error": reason,
        }
        if exc.permanent:
            with self._db:
                self.store.mark_dead(row.id, now, reason)
            log.warning("delivery_dead", **fields)
            return "dead", None
        with self._db:
            base = self.store.outbox_age_base(row.id) or row.created_at
        if now - base >= self.max_age:
            age = span_text(now - base)
            with self._db:
                self.store.mark_dead(
                    row.id, now, f"expired after {attempts} attempt(s) over {age}: {reason}"
                )
            log.warning("delivery_expired", **fields)
            return "dead", None
        # our own backoff is the floor: a server's "retry now" (Retry-After: 0, a negative or
        # NaN retry_after) never makes us retry sooner than a plain failure would
        delay = retry_delay(self.backoff.delay(attempts, self.rng), exc.retry_after)
        next_at = min(now + max(delay, 0.0), base + self.max_age)
        with self._db:
            self.store.mark_failed(row.id, now, reason, next_at)
        log.warning("delivery_failed", retry_in=round(next_at - now, 2), **fields)
        return "failed", next_at

    def _retire_unknown(self, now: float) -> None:
        """Rows for a sink no longer configured would block a flush forever: mark them dead."""
        with self._db:
            sinks = self.store.outbox_pending_sinks()
            for sid in sinks - set(self.sinks):
                for row in self.store.outbox_pending(sid, 10_000):
                    self.store.mark_dead(
                        row.id,
                        now,
                        f"sink {sid!r} is not configured: add it back, then run "
                        "`mcap-monitor outbox retry`",
                        attempted=False,
                    )
                log.warning("sink_unknown", sink=sid)

    # -- background mode -------------------------------------------------------------------
    def _lane_loop(self, sid: str) -> None:
        event = self._wake[sid]
        while not self._stop.is_set():
            event.clear()
            now = self._now()
            result = self._run_lane(sid, now, False)
            if result is None:
                result = self._next.get(sid, LaneResult())
            times = [t for t in (result.retry_at, result.held_until) if t is not None]
            delay = IDLE_WAIT if not times else min(IDLE_WAIT, max(0.0, min(times) - self._now()))
            if delay > 0:
                event.wait(delay)
