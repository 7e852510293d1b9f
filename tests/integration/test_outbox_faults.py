"""The dispatcher under faults, with a real SQLite outbox and real local receivers: retries,
Retry-After, timeouts, refused connections, max age, quiet hours, and sinks that do not wait
for each other."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import requests
import structlog
from delivery_setup import CROSSING_PRICES, CROSSINGS, sink_toml, write_config, write_tape
from fakes import HANG, FakeClock, Receiver, Reply, free_port
from structlog.testing import capture_logs

from monitor import bootstrap
from monitor.clock import SystemClock
from monitor.notify.backoff import Backoff
from monitor.notify.outbox import OutboxDispatcher
from monitor.service import Engine
from monitor.settings import Settings, load_settings
from monitor.sources.tape import TapeReader
from monitor.store import Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC).timestamp()


def setup(
    tmp_path: Path, sinks: str, prices: tuple[float, ...] = CROSSING_PRICES
) -> tuple[Settings, Store]:
    settings, _ = load_settings(write_config(tmp_path / "c.toml", sinks))
    store = Store.open(tmp_path / "state.db")
    Engine(settings, store).process(TapeReader(write_tape(tmp_path / "t.csv", prices)), T0)
    return settings, store


def dispatcher(
    settings: Settings, store: Store, clock: FakeClock | SystemClock, **kw: object
) -> OutboxDispatcher:
    kw.setdefault("backoff", Backoff((10.0, 60.0), jitter=0.0))
    kw.setdefault("pass_timeout", None)
    return bootstrap.dispatcher(settings, store, requests.Session(), clock, **kw)  # type: ignore[arg-type]


def test_500_then_success_follows_the_backoff(tmp_path: Path) -> None:
    with Receiver([Reply(500, "oops"), Reply(200)]) as rx:
        settings, store = setup(tmp_path, sink_toml("hook", "webhook", url=rx.url), (35.0, 41.0))
        clock = FakeClock(T0)
        with dispatcher(settings, store, clock) as d:
            stats = d.deliver_due(clock.timestamp())
            assert (stats.failed, stats.pending) == (1, 1)
            (row,) = store.outbox_list()
            assert row.next_attempt_at == T0 + 10 and "HTTP 500: oops" in (row.last_error or "")
            assert d.deliver_due(T0 + 9).delivered == 0  # not due yet
            assert len(rx.requests) == 1
            clock.advance(10)  # T0 + 10
            stats = d.deliver_due(clock.timestamp())
            assert (stats.delivered, stats.pending) == (1, 0)
        ids = {r.header("webhook-id") for r in rx.requests}
        assert len(ids) == 1


def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    with Receiver([Reply(429, "", {"Retry-After": "30"}), Reply(200)]) as rx:
        settings, store = setup(tmp_path, sink_toml("hook", "webhook", url=rx.url), (35.0, 41.0))
        clock = FakeClock(T0)
        with dispatcher(settings, store, clock) as d:
            d.deliver_due(T0)
            (row,) = store.outbox_list()
            assert row.next_attempt_at == T0 + 30 and "rate limited" in (row.last_error or "")


def test_a_receiver_hanging_past_the_timeout_is_a_transient_failure(tmp_path: Path) -> None:
    with Receiver([HANG]) as rx:
        sink = sink_toml("hook", "webhook", url=rx.url, timeout=0.3)
        settings, store = setup(tmp_path, sink, (35.0, 41.0))
        with dispatcher(settings, store, FakeClock(T0)) as d:
            started = time.monotonic()
            stats = d.deliver_due(T0)
            assert time.monotonic() - started < 20
            assert stats.failed == 1
        (row,) = store.outbox_list()
        assert row.status == "pending" and "no answer within 0.3 s" in (row.last_error or "")


def test_connection_refused_is_retried_and_rows_keep_their_order(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    settings, store = setup(tmp_path, sink_toml("hook", "webhook", url=url))
    clock = FakeClock(T0)
    with dispatcher(settings, store, clock) as d:
        stats = d.deliver_due(T0)
        # the first row failed; the later rows wait behind it (in-order delivery)
        assert (stats.failed, stats.pending) == (1, CROSSINGS)
        rows = store.outbox_list()
        assert rows[0].attempts == 1 and "connection refused" in (rows[0].last_error or "")
        assert all(r.attempts == 0 for r in rows[1:])


def test_max_age_turns_a_failing_delivery_dead_with_the_reason(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    settings, store = setup(tmp_path, sink_toml("hook", "webhook", url=url), (35.0, 41.0))
    clock = FakeClock(T0)
    with dispatcher(settings, store, clock, max_age=100.0) as d:
        d.deliver_due(T0)
        (row,) = store.outbox_list()
        assert row.next_attempt_at == T0 + 10
        clock.advance(100)  # T0 + 100
        stats = d.deliver_due(clock.timestamp())
        assert stats.dead == 1 and stats.pending == 0
    (row,) = store.outbox_list()
    assert row.status == "dead" and row.last_error is not None
    assert row.last_error.startswith("expired after 2 attempt(s) over 2 min")
    with store.transaction():
        assert store.requeue(None, T0 + 200) == 1
    with Receiver([Reply(200)]) as rx:
        moved = write_config(tmp_path / "c2.toml", sink_toml("hook", "webhook", url=rx.url))
        settings2, _ = load_settings(moved)
        clock.advance(100)  # T0 + 200
        with dispatcher(settings2, store, clock, max_age=100.0) as d:
            assert d.deliver_due(clock.timestamp()).delivered == 1


def test_a_hanging_sink_does_not_delay_a_healthy_one(tmp_path: Path) -> None:
    with Receiver([HANG]) as stuck, Receiver([Reply(200)]) as healthy:
        sinks = sink_toml("stuck", "webhook", url=stuck.url, timeout=30) + sink_toml(
            "ok", "webhook", url=healthy.url
        )
        settings, store = setup(tmp_path, sinks)
        with dispatcher(settings, store, SystemClock(), pass_timeout=0.5) as d:
            started = time.monotonic()
            stats = d.deliver_due(time.time())
            assert time.monotonic() - started < 10  # far below the stuck sink's 30 s timeout
            healthy.wait_for(lambda got: len(got) == CROSSINGS)
            assert stats.delivered == CROSSINGS
            # the stuck lane is still busy: the next pass skips it instead of waiting
            started = time.monotonic()
            d.deliver_due(time.time())
            assert time.monotonic() - started < 10
            stuck.release.set()
        counts = store.outbox_counts()
        assert counts["delivered"] == CROSSINGS


def test_background_lanes_deliver_on_wake_beside_a_dead_sink(tmp_path: Path) -> None:
    refused = f"http://127.0.0.1:{free_port()}/x"
    with Receiver([Reply(200)]) as healthy:
        sinks = sink_toml("dead", "webhook", url=refused) + sink_toml(
            "ok", "webhook", url=healthy.url
        )
        settings, store = setup(tmp_path, sinks, (35.0,))
        d = dispatcher(settings, store, SystemClock())
        try:
            d.start()
            engine = Engine(settings, store)
            tape = write_tape(tmp_path / "more.csv", (35.0, 41.0, 38.0))
            engine.process(TapeReader(tape), time.time())
            d.wake()
            healthy.wait_for(lambda got: len(got) == 2)
        finally:
            d.close()
        rows = {(r.sink_id, r.kind): r.status for r in store.outbox_list()}
        assert rows[("ok", "crossed_above")] == rows[("ok", "crossed_below")] == "delivered"
        assert rows[("dead", "crossed_above")] == "pending"


def test_quiet_hours_hold_then_deliver_in_order_marking_superseded(tmp_path: Path) -> None:
    with Receiver([Reply(200)]) as rx:
        sink = sink_toml("hook", "webhook", url=rx.url, quiet_hours="11:00-13:00", timezone="UTC")
        settings, store = setup(tmp_path, sink, (35.0, 41.0, 38.0))
        clock = FakeClock(T0)  # 12:00 UTC: inside the window
        with dispatcher(settings, store, clock) as d:
            stats = d.deliver_due(T0)
            assert stats.delivered == 0 and stats.pending == 2
            end = datetime(2025, 3, 1, 13, 0, tzinfo=UTC).timestamp()
            assert [r.next_attempt_at for r in store.outbox_list()] == [end, end]
            assert d.next_due() == end and d.next_retry() is None
            clock.advance(end - T0)
            assert d.deliver_due(end).delivered == 2
        first, second = (r.json()["data"] for r in rx.requests)
        assert first["kind"] == "crossed_above" and second["kind"] == "crossed_below"
        assert "superseded while held: later crossed_below" in first["message"]
        assert "superseded" not in second["message"]


def test_urgent_kinds_bypass_quiet_hours(tmp_path: Path) -> None:
    with Receiver([Reply(200)]) as rx:
        sink = sink_toml(
            "hook", "webhook", url=rx.url, quiet_hours="11:00-13:00", urgent_kinds=["crossed_below"]
        )
        settings, store = setup(tmp_path, sink, (35.0, 41.0, 38.0))
        with dispatcher(settings, store, FakeClock(T0)) as d:
            assert d.deliver_due(T0).delivered == 1
        assert [r.json()["type"] for r in rx.requests] == ["crossed_below"]


def test_rows_of_a_removed_sink_are_marked_dead_not_left_pending(tmp_path: Path) -> None:
    with Receiver([Reply(200)]) as rx:
        _, store = setup(tmp_path, sink_toml("old", "webhook", url=rx.url), (35.0, 41.0))
        new, _ = load_settings(write_config(tmp_path / "n.toml", sink_toml("new", "console")))
        with dispatcher(new, store, FakeClock(T0)) as d:
            stats = d.deliver_due(T0)
        assert stats.pending == 0
        (row,) = store.outbox_list()
        assert row.status == "dead" and "sink 'old' is not configured" in (row.last_error or "")


def test_logs_use_stable_names_and_never_carry_the_secret_url(tmp_path: Path) -> None:
    token = "TOKEN0123456789abc"
    url = f"http://127.0.0.1:{free_port()}/robot/send?access_token={token}"
    settings, store = setup(tmp_path, sink_toml("dt", "dingtalk", url=url, secret="SECsig"))
    structlog.reset_defaults()
    with capture_logs() as logs, dispatcher(settings, store, FakeClock(T0)) as d:
        d.deliver_due(T0)
    assert [entry["event"] for entry in logs] == ["delivery_failed"]
    assert token not in repr(logs) and "SECsig" not in repr(logs)
    assert "access_token=***" in logs[0]["error"]
    (row, *_) = store.outbox_list()
    assert token not in (row.last_error or "")


def test_the_daemon_composition_root_builds_this_dispatcher(tmp_path: Path) -> None:
    settings, store = setup(tmp_path, sink_toml("console", "console"), (35.0, 41.0))
    with requests.Session() as session:
        wiring = bootstrap.DaemonWiring(session, SystemClock(), None, store)
        built = wiring.dispatcher(settings)
        assert isinstance(built, OutboxDispatcher)
        try:
            assert built.deliver_due(time.time()).delivered == 1
        finally:
            built.close()
