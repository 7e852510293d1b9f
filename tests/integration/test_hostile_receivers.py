"""Receivers that misbehave (issue 11, section 2): huge or dripping answers, server waits that
are zero, negative, NaN or absurd, a flush that must respect its time bound, and a db whose
write lock is busy when a delivery is recorded. Real SQLite, real local HTTP servers."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from delivery_setup import TAPE_HEADER, sink_toml, write_config, write_tape
from fakes import FakeClock, Received, Receiver, Reply

from monitor import bootstrap
from monitor.notify.backoff import SERVER_WAIT_CAP, Backoff
from monitor.notify.http import MAX_BODY
from monitor.notify.outbox import OutboxDispatcher
from monitor.notify.secrets import Redactor
from monitor.service import Engine
from monitor.settings import Settings, load_settings
from monitor.sources.tape import TapeReader
from monitor.store import Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC).timestamp()
BIG = 300 * 1024 * 1024  # what the hostile receivers offer to send, per answer


def setup(
    tmp_path: Path, sinks: str, prices: tuple[float, ...] = (35.0, 41.0)
) -> tuple[Settings, Store]:
    settings, _ = load_settings(write_config(tmp_path / "c.toml", sinks))
    store = Store.open(tmp_path / "state.db")
    Engine(settings, store).process(TapeReader(write_tape(tmp_path / "t.csv", prices)), T0)
    return settings, store


def long_tape(path: Path, crossings: int) -> Path:
    """A baseline below the line, then ``crossings`` alternating crossings, one a day."""
    start = datetime(2025, 1, 6, 16, 0, tzinfo=UTC)
    rows = [TAPE_HEADER]
    for day in range(crossings + 1):
        price = 35.0 if day % 2 == 0 else 45.0
        stamp = (start + timedelta(days=day)).isoformat()
        rows.append(f"{stamp},1810.HK,{price},HKD,{price},25105000000\n")
    path.write_text("".join(rows), encoding="utf-8")
    return path


def webhooks(*receivers: Receiver) -> str:
    return "".join(sink_toml(f"s{i}", "webhook", url=rx.url) for i, rx in enumerate(receivers))


def dispatcher(settings: Settings, store: Store, clock: FakeClock) -> OutboxDispatcher:
    return bootstrap.dispatcher(
        settings,
        store,
        requests.Session(),
        clock,  # type: ignore[arg-type]
        backoff=Backoff((10.0, 60.0), jitter=0.0),
        pass_timeout=None,
    )


# -- bounded answers ------------------------------------------------------------------------
def test_three_sinks_answering_300_mb_are_read_only_up_to_the_bound(tmp_path: Path) -> None:
    huge = Reply(500, "<html>", stream=BIG)
    with Receiver([huge]) as a, Receiver([huge]) as b, Receiver([huge]) as c:
        sinks = webhooks(a, b, c)
        settings, store = setup(tmp_path, sinks)
        with dispatcher(settings, store, FakeClock(T0)) as d:
            stats = d.deliver_due(T0)
        assert (stats.failed, stats.pending) == (3, 3)
        for rx in (a, b, c):
            (got,) = rx.requests
            # what the kernel buffers took before we hung up; far from the 300 MB offered
            assert got.sent < 32 * 1024 * 1024
    for row in store.outbox_list():
        assert row.status == "pending" and "HTTP 500: <html>xxx" in (row.last_error or "")
        assert len(row.last_error or "") < 500


def test_a_dripping_answer_is_cut_off_at_the_timeout(tmp_path: Path) -> None:
    drip = Reply(500, "slow", stream=10_000, chunk=1, drip=0.05)  # 500 s at full length
    with Receiver([drip]) as rx:
        settings, store = setup(tmp_path, sink_toml("hook", "webhook", url=rx.url, timeout=0.5))
        with dispatcher(settings, store, FakeClock(T0)) as d:
            stats = d.deliver_due(T0)
        assert stats.failed == 1
        (row,) = store.outbox_list()
        assert row.status == "pending" and "HTTP 500: slow" in (row.last_error or "")
        assert rx.requests[0].sent < 10_000


def test_memory_stays_bounded_with_three_sinks_answering_300_mb(tmp_path: Path) -> None:
    """The real command in a subprocess, its peak RSS measured by the kernel."""
    huge = Reply(500, "", stream=BIG)
    with Receiver([huge]) as a, Receiver([huge]) as b, Receiver([huge]) as c:
        sinks = webhooks(a, b, c)
        config = write_config(tmp_path / "c.toml", sinks)
        tape = write_tape(tmp_path / "t.csv", (35.0, 41.0))
        # VmHWM of this process image: ru_maxrss would include the forking pytest's pages
        script = (
            "import re, sys\n"
            "from monitor.cli import main\n"
            "code = main(sys.argv[1:])\n"
            "status = open('/proc/self/status').read()\n"
            "print('RSS_KB', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)\n"
            "sys.exit(code)\n"
        )
        args = ["--config", str(config), "replay", str(tape), "--notify"]
        args += ["--state-db", str(tmp_path / "s.db")]
        out = subprocess.run(
            [sys.executable, "-c", script, *args],
            capture_output=True,
            text=True,
            timeout=180,
            env={"MCAP_NOTIFY_WAIT": "0", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
    assert out.returncode == 1, out.stderr  # left pending: the receivers answered 500
    assert "outbox: 0 delivered, 3 pending, 0 dead" in out.stderr
    rss_kb = int(out.stderr.split("RSS_KB ")[1].split()[0])
    assert rss_kb < 250 * 1024, f"peak RSS {rss_kb / 1024:.0f} MB"


def test_only_the_bound_of_an_answer_is_judged(tmp_path: Path) -> None:
    body = "ok" + " " * (2 * MAX_BODY)  # a Slack "ok" padded far past the bound
    with Receiver([Reply(200, body)], path="/services/T1/B2/tok") as rx:
        settings, store = setup(tmp_path, sink_toml("sl", "slack", url=rx.url))
        with dispatcher(settings, store, FakeClock(T0)) as d:
            d.deliver_due(T0)
    (row,) = store.outbox_list()
    assert row.status == "delivered"


# -- server-supplied waits ------------------------------------------------------------------
def run_passes(d: OutboxDispatcher, clock: FakeClock, seconds: int) -> None:
    """One dispatcher pass per simulated second, as the daemon's lanes would."""
    for _ in range(seconds):
        d.deliver_due(clock.timestamp())
        clock.advance(1)


def test_retry_after_zero_is_no_faster_than_a_plain_503(tmp_path: Path) -> None:
    with (
        Receiver([Reply(503, "busy", {"Retry-After": "0"})]) as zero,
        Receiver([Reply(503, "busy")]) as plain,
    ):
        counts = []
        for name, rx in (("zero", zero), ("plain", plain)):
            (tmp_path / name).mkdir()
            settings, store = setup(tmp_path / name, sink_toml(name, "webhook", url=rx.url))
            clock = FakeClock(T0)
            with dispatcher(settings, store, clock) as d:
                run_passes(d, clock, 100)  # attempts at 0 s, 10 s, 70 s
            counts.append(len(rx.requests))
        assert counts == [3, 3]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(429, "", {"Retry-After": "-5"}),
        Reply(429, "", {"Retry-After": "nan"}),
        Reply(429, "", {"Retry-After": "1e400"}),
        Reply(429, "", {"Retry-After": "inf"}),
        Reply(429, "", {"Retry-After": "soon"}),
        Reply(503, "", {"Retry-After": "99999999999"}),
        Reply(429, '{"retry_after": NaN}'),
        Reply(429, '{"retry_after": -3}'),
        Reply(429, '{"retry_after": 1e300}'),
        Reply(429, '{"retry_after": Infinity}'),
        Reply(429, '{"retry_after": "soon"}'),
    ],
    ids=lambda r: json.dumps(r.headers) if r.headers else r.body,
)
def test_an_unbelievable_server_wait_is_treated_as_absent(tmp_path: Path, reply: Reply) -> None:
    with Receiver([reply], path="/api/webhooks/1/tok") as rx:
        kind = "webhook" if reply.headers else "discord"
        settings, store = setup(tmp_path, sink_toml("s", kind, url=rx.url))
        with dispatcher(settings, store, FakeClock(T0)) as d:
            stats = d.deliver_due(T0)
    assert stats.failed == 1
    (row,) = store.outbox_list()
    # the row stays a normal failed row on our own backoff (NaN once broke it: NOT NULL)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, T0 + 10)


@pytest.mark.parametrize(
    ("header", "wait"),
    [("120", 120.0), ("7200", SERVER_WAIT_CAP), ("3", 10.0), ("0", 10.0)],
)
def test_a_server_wait_lengthens_ours_up_to_the_cap(
    tmp_path: Path, header: str, wait: float
) -> None:
    with Receiver([Reply(429, "", {"Retry-After": header})]) as rx:
        settings, store = setup(tmp_path, sink_toml("s", "webhook", url=rx.url))
        with dispatcher(settings, store, FakeClock(T0)) as d:
            d.deliver_due(T0)
    (row,) = store.outbox_list()
    assert row.next_attempt_at == T0 + wait


# -- outbox flush --wait is a time bound ----------------------------------------------------
def test_flush_wait_is_a_time_bound_and_the_rest_stays_pending(tmp_path: Path) -> None:
    rows = 40

    def slow(got: Received, reply: Reply) -> None:
        time.sleep(0.5)  # each answer takes half a second: 20 s for all of them

    with Receiver([Reply(200)], before_reply=slow) as rx:
        config = write_config(tmp_path / "c.toml", sink_toml("hook", "webhook", url=rx.url))
        settings, _ = load_settings(config)
        store = Store.open(tmp_path / "state.db")
        Engine(settings, store).process(TapeReader(long_tape(tmp_path / "t.csv", rows)), T0)
        assert store.outbox_counts()["pending"] == rows
        err = tmp_path / "err.txt"
        with err.open("w") as stream:
            started = time.monotonic()
            code = bootstrap.deliver_now(settings, store, wait=1.0, err=stream)
            elapsed = time.monotonic() - started
        summary = err.read_text()
        counts = store.outbox_counts()
        assert code == 1
        assert 0 < counts["delivered"] < rows and counts["pending"] == rows - counts["delivered"]
        assert f"outbox: {counts['delivered']} delivered, {counts['pending']} pending" in summary
        # 1 s of wait + one request (0.5 s) + start-up; far from the 20 s of the whole queue
        assert elapsed < 10, elapsed
        # the next flush sends the rest; nothing is sent twice, nothing under a second id
        with err.open("a") as stream:
            assert bootstrap.deliver_now(settings, store, wait=60.0, err=stream) == 0
        ids = [r.header("webhook-id") for r in rx.requests]
        assert len(ids) == len(set(ids)) == rows
    store.close()


def test_flush_wait_bounds_each_request_too(tmp_path: Path) -> None:
    # three receivers that take 30 s to answer, a sink timeout of 20 s: `flush --wait 2`
    # must not wait out the 20 s timeout of the one request per lane it starts
    stop = threading.Event()

    def asleep(got: Received, reply: Reply) -> None:
        stop.wait(30)

    receivers = [Receiver([Reply(200)], before_reply=asleep) for _ in range(3)]
    try:
        sinks = "".join(
            sink_toml(f"s{i}", "webhook", url=rx.url, timeout=20) for i, rx in enumerate(receivers)
        )
        settings, _ = load_settings(write_config(tmp_path / "c.toml", sinks))
        store = Store.open(tmp_path / "state.db")
        tape = TapeReader(write_tape(tmp_path / "t.csv", (35.0, 41.0)))
        Engine(settings, store).process(tape, time.time())  # enqueued now: not too old to send
        pending = store.outbox_counts()["pending"]
        assert pending >= 3
        err = tmp_path / "err.txt"
        with err.open("w") as stream:
            started = time.monotonic()
            code = bootstrap.deliver_now(settings, store, wait=2.0, err=stream)
            elapsed = time.monotonic() - started
        assert code == 1, (err.read_text(), store.outbox_list())
        assert elapsed < 12, elapsed  # a bound (2 s + start-up), not a speed measurement
        counts = store.outbox_counts()
        assert counts["pending"] == pending and counts["delivered"] == 0, counts
        assert all(rx.requests for rx in receivers)  # each lane did try once
        store.close()
    finally:
        stop.set()
        for rx in receivers:
            rx.close()


# -- a busy db never causes a re-send -------------------------------------------------------
def test_a_delivery_is_not_resent_when_the_db_is_busy_recording_it(tmp_path: Path) -> None:
    with Receiver([Reply(200)]) as rx:
        settings, store = setup(tmp_path, sink_toml("hook", "webhook", url=rx.url))
        own = Store.open(tmp_path / "state.db")
        own.conn.execute("PRAGMA busy_timeout = 50")  # fail fast instead of waiting 30 s
        clock = FakeClock(T0)
        redactor = Redactor()
        d = OutboxDispatcher(
            settings,
            own,
            requests.Session(),
            clock,
            sinks=bootstrap.sinks(settings, redactor),
            redactor=redactor,
            own_store=True,
            backoff=Backoff((10.0, 60.0), jitter=0.0),
            pass_timeout=None,
        )
        blocker = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # e.g. a long replay holding the write lock
        try:
            d.deliver_due(T0, force=True)
            clock.advance(60)
            d.deliver_due(clock.timestamp(), force=True)
            assert len(rx.requests) == 1  # accepted once; not sent again while unrecorded
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        clock.advance(60)
        d.deliver_due(clock.timestamp(), force=True)
        d.close()
        assert len(rx.requests) == 1
        (row,) = store.outbox_list()
        assert row.status == "delivered"
