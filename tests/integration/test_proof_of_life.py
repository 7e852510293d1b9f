"""Proof of life: the daily digest after the close, and the heartbeat URL after each poll.

The daemon's jobs run on a fake clock against a real SQLite store and real HTTP servers on
127.0.0.1 (webhook receivers for the digest, a GET server for the heartbeat pings).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import BUNDLED_TAPE, REPO
from delivery_setup import whsec
from fakes import HANG, FakeClock, FakeSource, Received, Receiver, Reply, at, free_port, wait_until
from structlog.testing import capture_logs

from monitor import bootstrap
from monitor.daemon import Daemon
from monitor.settings import Settings
from monitor.store import Store

pytestmark = pytest.mark.timeout(120)

DEADLINE = 30.0
SHARES = 25_105_000_000
# the path authenticates the ping (healthchecks-style): a secret that must never be logged
MONITOR = (sys.executable, "-m", "monitor")
PING_TOKEN = "0b7c5e1a-9f3d-4c2b-8e6a-5d4c3b2a1f0e"


def ping_receiver(status: int = 200, hang: bool = False) -> Receiver:
    """A dead-man's-switch endpoint: records each request; answers ``status`` or hangs."""
    return Receiver([HANG if hang else Reply(status, "OK")], path=f"/ping/{PING_TOKEN}")


# -- composition ----------------------------------------------------------------------------
RULES = [
    {"id": "hkd-1t", "symbol": "1810.HK", "threshold": 10**12, "currency": "HKD"},
    {"id": "hkd-1.1t", "symbol": "1810.HK", "threshold": 11 * 10**11, "currency": "HKD"},
]


def make_settings(
    tmp_path: Path, sinks: Sequence[dict[str, Any]] = (), **daemon: object
) -> Settings:
    return Settings(
        symbols=[{"symbol": "1810.HK", "shares": SHARES}],
        rules=RULES,
        sinks=list(sinks),
        health={"enabled": False},
        daemon={"state_dir": str(tmp_path), "close_poll_delay": 0, "jitter": 0, **daemon},
    )


def webhook(sink_id: str, url: str, digest: bool) -> dict[str, Any]:
    return {"id": sink_id, "type": "webhook", "url": url, "secret": whsec(), "digest": digest}


class Harness:
    """Daemons on one db file, each built like ``run`` builds it, on a shared fake clock."""

    def __init__(self, tmp_path: Path, settings: Settings, source: FakeSource) -> None:
        self.tmp_path = tmp_path
        self.settings = settings
        self.source = source
        self.clock = FakeClock(at("2025-02-07", "15:00"))
        self.daemons: list[Daemon] = []

    def start(self, when: datetime) -> Daemon:
        """A fresh process: new connections, a new dispatcher, no memory but the db."""
        self.clock.when = when
        db = self.tmp_path / "state.db"
        daemon = bootstrap.build_daemon(
            self.settings,
            Store.open(db),
            Store.open(db),
            clock=self.clock,
            session=requests.Session(),
            source=self.source,
        )
        self.daemons.append(daemon)
        return daemon

    def poll_at(self, daemon: Daemon, day: str, hhmm: str) -> None:
        self.clock.when = at(day, hhmm)
        daemon.poll()
        daemon.deliver()

    def shut(self, daemon: Daemon) -> None:
        # release the delivery lock now, so the next "process" may deliver at once
        close = getattr(daemon.parts.dispatcher, "close", None)
        if callable(close):
            close()
        daemon.stop()
        self.daemons.remove(daemon)

    def close(self) -> None:
        for daemon in list(self.daemons):
            self.shut(daemon)


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    hooks = {name: Receiver() for name in ("desk", "phone", "alerts")}
    yield hooks
    for hook in hooks.values():
        hook.close()


def digests(hook: Receiver) -> list[Received]:
    return [r for r in hook.requests if r.json().get("type") == "digest"]


def digest_sinks(receivers: dict[str, Receiver]) -> list[dict[str, Any]]:
    return [
        webhook("desk", receivers["desk"].url, True),
        webhook("phone", receivers["phone"].url, True),
        webhook("alerts", receivers["alerts"].url, False),
    ]


def outbox_digests(tmp_path: Path) -> list[tuple[str, str, str]]:
    store = Store.open(tmp_path / "state.db")
    try:
        return [
            (row.sink_id, str(row.payload["day"]), row.status)
            for row in store.outbox_list()
            if row.kind == "digest"
        ]
    finally:
        store.close()


# -- the digest -----------------------------------------------------------------------------
def test_one_digest_per_digest_sink_after_each_close_with_close_change_and_positions(
    tmp_path: Path, receivers: dict[str, Receiver]
) -> None:
    source = FakeSource(quote_source="yahoo", price=39)
    harness = Harness(tmp_path, make_settings(tmp_path, digest_sinks(receivers)), source)
    try:
        daemon = harness.start(at("2025-02-07", "15:00"))
        harness.poll_at(daemon, "2025-02-07", "15:00")  # Friday afternoon: baseline
        harness.poll_at(daemon, "2025-02-07", "16:05")  # Friday's close: the first digest
        for hook in ("desk", "phone"):
            receivers[hook].wait_for(lambda got: any(r.json()["type"] == "digest" for r in got))
        for day, hhmm in (("2025-02-08", "10:00"), ("2025-02-09", "16:30")):  # the weekend
            harness.poll_at(daemon, day, hhmm)
        source.price = Decimal(41)
        harness.poll_at(daemon, "2025-02-10", "10:00")  # Monday: crosses above HK$1T
        harness.poll_at(daemon, "2025-02-10", "16:05")  # Monday's close
        harness.poll_at(daemon, "2025-02-10", "16:30")  # later polls take no second close
        for hook in ("desk", "phone"):
            receivers[hook].wait_for(lambda got: len(digests_in(got)) >= 2)
    finally:
        harness.close()

    assert [c.strftime("%a %H:%M") for c in source.calls] == [
        "Fri 15:00",
        "Fri 16:05",
        "Mon 10:00",
        "Mon 16:05",
    ]
    for hook in ("desk", "phone"):
        got = digests(receivers[hook])
        assert [r.json()["data"]["day"] for r in got] == ["2025-02-07", "2025-02-10"], hook
        assert len({r.header("webhook-id") for r in got}) == 2
        friday, monday = (r.json()["data"] for r in got)
        assert friday["lines"] == [
            "1810.HK closed at HK$979.1B; 2.1 % below HK$1T, 11.0 % below HK$1.1T"
        ]
        # the close, the change against Friday's close, and where each rule stands
        assert monday["lines"] == [
            "1810.HK closed at HK$1.029T, +5.1 %; above HK$1T, 6.4 % below HK$1.1T"
        ]
        (entry,) = monday["symbols"]
        assert entry["price"] == "41"
        assert entry["previous_close"] == "39"
        assert {r["rule"]: r["position"] for r in entry["rules"]} == {
            "hkd-1t": "above",
            "hkd-1.1t": "below",
        }
        assert monday["message"] == "mcap-monitor daily digest 2025-02-10"
    # the sink without ``digest = true`` gets the alerts, never a digest
    assert digests(receivers["alerts"]) == []
    assert any(r.json()["type"] == "crossed_above" for r in receivers["alerts"].requests)
    assert sorted(outbox_digests(tmp_path)) == [
        ("desk", "2025-02-07", "delivered"),
        ("desk", "2025-02-10", "delivered"),
        ("phone", "2025-02-07", "delivered"),
        ("phone", "2025-02-10", "delivered"),
    ]


def digests_in(got: list[Received]) -> list[Received]:
    return [r for r in got if r.json().get("type") == "digest"]


def test_no_digest_on_a_holiday_or_a_weekend(
    tmp_path: Path, receivers: dict[str, Receiver]
) -> None:
    source = FakeSource(quote_source="yahoo", price=40.0)
    harness = Harness(tmp_path, make_settings(tmp_path, digest_sinks(receivers)), source)
    try:
        daemon = harness.start(at("2025-04-17", "15:00"))
        harness.poll_at(daemon, "2025-04-17", "15:00")  # Thursday before Easter
        harness.poll_at(daemon, "2025-04-17", "16:05")  # its close: a digest
        receivers["desk"].wait_for(lambda got: len(digests_in(got)) >= 1)
        # Good Friday, Saturday, Easter Sunday and Easter Monday: HKEX is closed
        for day in ("2025-04-18", "2025-04-19", "2025-04-20", "2025-04-21"):
            for hhmm in ("10:00", "12:05", "16:05", "23:00"):
                harness.poll_at(daemon, day, hhmm)
        assert len(source.calls) == 2
        harness.poll_at(daemon, "2025-04-22", "16:05")  # Tuesday's close: the next digest
        receivers["desk"].wait_for(lambda got: len(digests_in(got)) >= 2)
        receivers["phone"].wait_for(lambda got: len(digests_in(got)) >= 2)
    finally:
        harness.close()
    for hook in ("desk", "phone"):
        days = [r.json()["data"]["day"] for r in digests(receivers[hook])]
        assert days == ["2025-04-17", "2025-04-22"], hook


def test_a_restart_after_the_close_never_sends_the_digest_twice(
    tmp_path: Path, receivers: dict[str, Receiver]
) -> None:
    source = FakeSource(quote_source="yahoo", price=41.0)
    settings = make_settings(tmp_path, digest_sinks(receivers))
    harness = Harness(tmp_path, settings, source)
    try:
        first = harness.start(at("2025-02-10", "15:00"))
        harness.clock.when = at("2025-02-10", "15:00")
        first.poll()
        harness.clock.when = at("2025-02-10", "16:05")
        first.poll()  # the digest is enqueued; the process dies before it is delivered
        harness.shut(first)
        assert sorted(outbox_digests(tmp_path)) == [
            ("desk", "2025-02-10", "pending"),
            ("phone", "2025-02-10", "pending"),
        ]

        second = harness.start(at("2025-02-10", "16:20"))
        with capture_logs() as logs:
            harness.poll_at(second, "2025-02-10", "16:20")  # a close poll again: same digest
        assert [e["sinks"] for e in logs if e["event"] == "digest_enqueued"] == [0]
        for hook in ("desk", "phone"):
            receivers[hook].wait_for(lambda got: len(digests_in(got)) >= 1)
        harness.shut(second)

        third = harness.start(at("2025-02-10", "18:00"))
        harness.poll_at(third, "2025-02-10", "18:00")
        harness.poll_at(third, "2025-02-11", "08:00")  # before Tuesday's open
        harness.shut(third)
    finally:
        harness.close()
    for hook in ("desk", "phone"):
        got = digests(receivers[hook])
        assert [r.json()["data"]["day"] for r in got] == ["2025-02-10"], hook
    assert sorted(outbox_digests(tmp_path)) == [
        ("desk", "2025-02-10", "delivered"),
        ("phone", "2025-02-10", "delivered"),
    ]


def test_the_change_is_against_the_previous_close_even_across_a_restart(
    tmp_path: Path, receivers: dict[str, Receiver]
) -> None:
    source = FakeSource(quote_source="yahoo", price=39)
    harness = Harness(tmp_path, make_settings(tmp_path, digest_sinks(receivers)), source)
    try:
        friday = harness.start(at("2025-02-07", "15:00"))
        harness.poll_at(friday, "2025-02-07", "15:00")
        harness.poll_at(friday, "2025-02-07", "16:05")
        harness.shut(friday)
        source.price = Decimal(41)
        monday = harness.start(at("2025-02-10", "09:00"))  # restarted over the weekend
        harness.poll_at(monday, "2025-02-10", "10:00")
        harness.poll_at(monday, "2025-02-10", "16:05")
        receivers["desk"].wait_for(lambda got: len(digests_in(got)) >= 2)
    finally:
        harness.close()
    data = digests(receivers["desk"])[-1].json()["data"]
    assert data["day"] == "2025-02-10"
    assert data["symbols"][0]["previous_close"] == "39"
    assert data["lines"][0].startswith("1810.HK closed at HK$1.029T, +5.1 %; ")


def test_a_symbol_not_quoted_that_day_is_not_reported_as_closing(
    tmp_path: Path, receivers: dict[str, Receiver]
) -> None:
    source = FakeSource(quote_source="yahoo", price=39)
    harness = Harness(tmp_path, make_settings(tmp_path, digest_sinks(receivers)), source)
    try:
        daemon = harness.start(at("2025-02-07", "15:00"))
        harness.poll_at(daemon, "2025-02-07", "16:05")
        receivers["desk"].wait_for(lambda got: len(digests_in(got)) >= 1)
        source.mode = "fail"  # Monday: the source fails for the symbol all day
        harness.poll_at(daemon, "2025-02-10", "10:00")
        harness.poll_at(daemon, "2025-02-10", "16:05")
    finally:
        harness.close()
    assert [r.json()["data"]["day"] for r in digests(receivers["desk"])] == ["2025-02-07"]
    assert sorted(outbox_digests(tmp_path)) == [
        ("desk", "2025-02-07", "delivered"),
        ("phone", "2025-02-07", "delivered"),
    ]


# -- the heartbeat URL ----------------------------------------------------------------------
@pytest.fixture
def pings() -> Iterator[Receiver]:
    server = ping_receiver()
    yield server
    server.close()


def heartbeat_daemon(
    tmp_path: Path, source: FakeSource, url: str, timeout: float = 2.0, **daemon: object
) -> tuple[Daemon, FakeClock]:
    clock = FakeClock(at("2025-02-10", "10:00"))
    db = tmp_path / "state.db"
    d = bootstrap.build_daemon(
        make_settings(tmp_path, (), heartbeat_url=url, heartbeat_timeout=timeout, **daemon),
        Store.open(db),
        Store.open(db),
        clock=clock,
        session=requests.Session(),
        source=source,
    )
    return d, clock


def ping_outcomes(daemon: Daemon) -> dict[str, float]:
    registry = daemon.metrics.registry
    return {
        outcome: registry.get_sample_value("mcap_heartbeat_url_pings_total", {"outcome": outcome})
        or 0.0
        for outcome in ("ok", "failed")
    }


def test_a_get_reaches_the_heartbeat_url_after_each_successful_poll_only(
    tmp_path: Path, pings: Receiver
) -> None:
    source = FakeSource(quote_source="yahoo")
    daemon, clock = heartbeat_daemon(tmp_path, source, pings.url)
    try:
        with capture_logs() as logs:
            for n, hhmm in enumerate(("10:00", "10:01", "10:02"), start=1):
                clock.when = at("2025-02-10", hhmm)
                daemon.poll()
                got = pings.wait_for(n)
                assert [(r.method, r.path) for r in got] == [("GET", f"/ping/{PING_TOKEN}")] * n
            source.mode = "raise"
            clock.when = at("2025-02-10", "10:03")
            with pytest.raises(RuntimeError):
                daemon.poll()
            source.mode = "fail"  # every symbol failed: not a successful poll
            clock.when = at("2025-02-10", "10:04")
            daemon.poll()
            clock.when = at("2025-02-10", "12:30")  # lunch break: no poll, no ping
            daemon.poll()
            source.mode = "ok"
            clock.when = at("2025-02-10", "13:05")
            daemon.poll()
            pings.wait_for(4)
    finally:
        daemon.stop()
    assert len(source.calls) == 6
    assert len(pings.requests) == 4
    assert ping_outcomes(daemon) == {"ok": 4.0, "failed": 0.0}
    assert PING_TOKEN not in repr(logs)


@pytest.mark.parametrize("status", [404, 500])
def test_an_error_answer_is_counted_and_logged_without_the_url(tmp_path: Path, status: int) -> None:
    server = ping_receiver(status=status)
    source = FakeSource(quote_source="yahoo")
    daemon, _ = heartbeat_daemon(tmp_path, source, server.url)
    try:
        with capture_logs() as logs:
            daemon.poll()
        server.wait_for(1)
    finally:
        daemon.stop()
        server.close()
    assert ping_outcomes(daemon) == {"ok": 0.0, "failed": 1.0}
    failed = [e for e in logs if e["event"] == "heartbeat_ping_failed"]
    assert len(failed) == 1 and failed[0]["status"] == status
    assert PING_TOKEN not in repr(logs)


def test_a_heartbeat_server_that_is_down_never_breaks_a_poll(tmp_path: Path) -> None:
    source = FakeSource(quote_source="yahoo")
    url = f"http://127.0.0.1:{free_port()}/ping/{PING_TOKEN}"
    daemon, clock = heartbeat_daemon(tmp_path, source, url, timeout=1.0)
    try:
        with capture_logs() as logs:
            for hhmm in ("10:00", "10:01"):
                clock.when = at("2025-02-10", hhmm)
                started = time.monotonic()
                plan = daemon.poll()
                assert time.monotonic() - started < 1.0 + 2.0
                assert plan.symbols == ("1810.HK",)
        _, body = daemon.health.snapshot(time.time())
        assert body["symbols"]["1810.HK"]["status"] == "ok", body
    finally:
        daemon.stop()
    assert ping_outcomes(daemon) == {"ok": 0.0, "failed": 2.0}
    failed = [e for e in logs if e["event"] == "heartbeat_ping_failed"]
    assert [e["error"] for e in failed] == ["ConnectionError", "ConnectionError"]
    assert PING_TOKEN not in repr(logs)
    # the observations were stored although the ping failed
    store = Store.open(tmp_path / "state.db")
    try:
        assert len(store.observations()) == 2
    finally:
        store.close()


def test_a_hanging_heartbeat_server_delays_a_poll_by_its_timeout_at_most(
    tmp_path: Path,
) -> None:
    server = ping_receiver(hang=True)
    source = FakeSource(quote_source="yahoo")
    daemon, _ = heartbeat_daemon(tmp_path, source, server.url, timeout=0.5)
    try:
        with capture_logs() as logs:
            started = time.monotonic()
            daemon.poll()
            took = time.monotonic() - started
        server.wait_for(1)
    finally:
        daemon.stop()
        server.close()
    assert 0.4 < took < 0.5 + 2.0
    assert [e.get("error") for e in logs if e["event"] == "heartbeat_ping_failed"] == [
        "ReadTimeout"
    ]
    assert PING_TOKEN not in repr(logs)


def test_polling_goes_on_under_the_scheduler_while_the_heartbeat_server_hangs(
    tmp_path: Path,
) -> None:
    server = ping_receiver(hang=True)
    source = FakeSource(quote_source="yahoo")
    daemon, clock = heartbeat_daemon(tmp_path, source, server.url, timeout=0.2, poll_interval=0.1)

    clock.run()  # strictly increasing quote times inside Monday's session
    daemon.start()
    try:
        assert wait_until(lambda: len(source.calls) >= 5 and len(server.requests) >= 5, DEADLINE)
        failures = daemon.metrics.registry.get_sample_value(
            "mcap_job_failures_total", {"job": "poll"}
        )
        assert not failures
        _, body = daemon.health.snapshot(time.time())
        assert body["symbols"]["1810.HK"]["status"] == "ok", body
    finally:
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 10
        server.close()
    assert ping_outcomes(daemon)["failed"] >= 5


def test_the_daemon_pings_in_tape_mode_and_never_logs_the_url_even_at_debug(
    tmp_path: Path, pings: Receiver
) -> None:
    """``mcap-monitor run`` as a subprocess, every log line at debug level checked."""
    state = tmp_path / "state"
    config = tmp_path / "cfg.toml"
    config.write_text(
        f"""
[[symbols]]
symbol = "1810.HK"
shares = 25_105_000_000

[[rules]]
id = "hkd-1t"
symbol = "1810.HK"
threshold = 1_000_000_000_000
currency = "HKD"

[source]
kind = "tape"
path = "{BUNDLED_TAPE}"

[health]
enabled = false

[daemon]
poll_interval = 0.1
jitter = 0
state_dir = "{state}"
heartbeat_url = "{pings.url}"
heartbeat_timeout = 2
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCAP_", "NOTIFY_"))}
    env.pop("STATE_DIRECTORY", None)
    env.pop("WATCHDOG_USEC", None)
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*MONITOR, "--config", str(config), "--log-level", "debug", "run"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            pings.wait_for(5, timeout=60)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    assert '"poll_done"' in text  # debug lines were written
    assert PING_TOKEN not in text
    assert pings.url not in text
