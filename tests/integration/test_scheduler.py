"""The daemon's jobs on a fake clock and a real SQLite store; the scheduler for real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from fakes import FakeClock, FakeDispatcher, FakeSource, at, wait_until

from monitor import bootstrap
from monitor.daemon import Daemon
from monitor.settings import Settings
from monitor.store import Store


def settings(tmp_path: Path, **daemon: object) -> Settings:
    return Settings(
        symbols=[{"symbol": "1810.HK", "shares": 25_105_000_000}],
        rules=[{"id": "hkd-1t", "symbol": "1810.HK", "threshold": 10**12, "currency": "HKD"}],
        health={"enabled": False},
        daemon={"state_dir": str(tmp_path), "close_poll_delay": 0, **daemon},
    )


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    db = tmp_path / "state.db"
    yield Store.open(db), Store.open(db)


def make(
    tmp_path: Path,
    stores: tuple[Store, Store],
    source: FakeSource,
    when: datetime,
    **daemon: object,
) -> tuple[Daemon, FakeClock]:
    clock = FakeClock(when)
    d = bootstrap.build_daemon(
        settings(tmp_path, **daemon),
        *stores,
        clock=clock,
        session=requests.Session(),
        source=source,
        dispatcher=FakeDispatcher(),
    )
    return d, clock


def test_no_quote_is_fetched_on_a_saturday_a_holiday_or_at_lunch(
    tmp_path: Path, stores: tuple[Store, Store]
) -> None:
    source = FakeSource()
    daemon, clock = make(tmp_path, stores, source, at("2025-02-07", "15:00"))
    daemon.poll()  # Friday afternoon: polled
    assert len(source.calls) == 1
    clock.when = at("2025-02-07", "16:05")
    daemon.poll()  # the close
    assert len(source.calls) == 2
    for day, hhmm in (
        ("2025-02-08", "10:00"),  # Saturday
        ("2025-02-09", "14:00"),  # Sunday
        ("2025-02-10", "12:30"),  # lunch break
    ):
        clock.when = at(day, hhmm)
        daemon.poll()
    assert len(source.calls) == 2
    clock.when = at("2025-04-18", "10:00")  # Good Friday (Thursday's close taken first)
    daemon.parts.planner.closes_taken["XHKG"] = at("2025-04-17", "16:00").timestamp()
    daemon.poll()
    assert len(source.calls) == 2
    daemon.stop()


def test_half_day_close_at_noon_is_polled_once_then_nothing(
    tmp_path: Path, stores: tuple[Store, Store]
) -> None:
    source = FakeSource()
    daemon, clock = make(tmp_path, stores, source, at("2025-01-28", "11:30"))
    daemon.poll()
    clock.when = at("2025-01-28", "12:01")
    plan = daemon.poll()
    assert plan.reasons == {"1810.HK": "close"}
    for hhmm in ("12:30", "13:30", "15:00"):
        clock.when = at("2025-01-28", hhmm)
        daemon.poll()
    assert source.calls == [at("2025-01-28", "11:30"), at("2025-01-28", "12:01")]
    daemon.stop()


def test_a_failing_poll_is_logged_and_counted_and_the_scheduler_keeps_going(
    tmp_path: Path, stores: tuple[Store, Store]
) -> None:
    source = FakeSource(mode="raise")
    daemon, _ = make(
        tmp_path, stores, source, at("2025-02-10", "10:00"), poll_interval=0.1, jitter=0
    )
    daemon.start()
    try:
        assert wait_until(lambda: len(source.calls) >= 4, 15)
        failures = daemon.metrics.registry.get_sample_value(
            "mcap_job_failures_total", {"job": "poll"}
        )
        assert failures is not None and failures >= 3
        healthy, body = daemon.health.snapshot(time.time())
        assert not healthy
        assert body["symbols"]["1810.HK"]["status"] == "failing"
    finally:
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 10


def test_a_slow_poll_never_overlaps_itself(tmp_path: Path, stores: tuple[Store, Store]) -> None:
    source = FakeSource(delay=0.5)
    daemon, clock = make(
        tmp_path, stores, source, at("2025-02-10", "10:00"), poll_interval=0.05, jitter=0
    )

    clock.run()  # strictly increasing quote times
    daemon.start()
    try:
        assert wait_until(lambda: len(source.calls) >= 3, 20)
    finally:
        daemon.stop()
    assert source.max_active == 1


def test_the_dispatcher_is_woken_by_an_enqueue(tmp_path: Path, stores: tuple[Store, Store]) -> None:
    source = FakeSource()
    daemon, _ = make(
        tmp_path,
        stores,
        source,
        at("2025-02-10", "10:00"),
        poll_interval=3600,
        dispatch_interval=3600,
        jitter=0,
    )
    dispatcher = daemon.parts.dispatcher
    assert isinstance(dispatcher, FakeDispatcher)
    daemon.start()
    try:
        # The first poll records the baseline and enqueues the start-up summary.
        assert wait_until(lambda: dispatcher.passes >= 2, 10)
    finally:
        daemon.stop()


def test_source_cross_checks_reach_the_metrics(tmp_path: Path, stores: tuple[Store, Store]) -> None:
    source = FakeSource()
    # what LiveSource learns on a poll: SYNTHETIC gaps between FX sources and share counts
    source.fx_disagreement = {"HKD/CNY": Decimal("0.05")}
    source.shares_gap = {"1810.HK": Decimal("0.042")}
    daemon, _ = make(tmp_path, stores, source, at("2025-02-10", "10:00"))
    try:
        daemon.poll()
        sample = daemon.metrics.registry.get_sample_value
        assert sample("mcap_fx_disagreement_ratio", {"pair": "HKD/CNY"}) == 0.05
        assert sample("mcap_shares_gap_ratio", {"symbol": "1810.HK"}) == 0.042
    finally:
        daemon.stop()
