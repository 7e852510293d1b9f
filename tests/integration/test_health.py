"""/healthz and /metrics over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from fakes import FakeClock, FakeDispatcher, FakeSource, wait_until
from prometheus_client.parser import text_string_to_metric_families

from monitor import bootstrap
from monitor.daemon import Daemon
from monitor.daemon.health import parse_listen
from monitor.errors import ConfigError
from monitor.settings import Settings
from monitor.store import Store


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[object]:
    made: list[Daemon] = []

    def make(script: Sequence[str]) -> Daemon:
        settings = Settings(
            symbols=[{"symbol": "1810.HK", "shares": 25_105_000_000}],
            rules=[{"id": "hkd-1t", "symbol": "1810.HK", "threshold": 10**12, "currency": "HKD"}],
            source={"kind": "tape", "path": str(tmp_path / "unused.csv")},
            health={"listen": "127.0.0.1:0"},
            daemon={"poll_interval": 3600, "jitter": 0},
        )
        db = tmp_path / f"state{len(made)}.db"
        d = bootstrap.build_daemon(
            settings,
            Store.open(db),
            Store.open(db),
            clock=FakeClock(datetime.now(UTC)).run(),
            session=requests.Session(),
            source=FakeSource(45, script=script),
            dispatcher=FakeDispatcher(),
        )
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


def _url(daemon: Daemon, path: str) -> str:
    assert daemon.health_server is not None
    host, port = daemon.health_server.address
    return f"http://{host}:{port}{path}"


def _wait_polled(daemon: Daemon) -> None:
    def polled() -> bool:
        _, body = daemon.health.snapshot(time.time())
        return bool(body["symbols"]["1810.HK"]["last_attempt"] and body["scheduler_heartbeat"])

    assert wait_until(polled, 10), "no poll"


def test_healthz_is_200_with_details_when_the_source_answers(daemon_factory: object) -> None:
    daemon = daemon_factory(["ok"])  # type: ignore[operator]
    daemon.start()
    _wait_polled(daemon)
    resp = requests.get(_url(daemon, "/healthz"), timeout=5)
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok"
    assert body["symbols"]["1810.HK"]["status"] == "ok"
    assert body["symbols"]["1810.HK"]["stale"] is False
    assert body["sources"]["tape"]["last_success"]
    assert body["deliveries"] == {"pending": 1, "dead": 0}  # the start-up summary
    assert body["scheduler_heartbeat"]


@pytest.mark.parametrize("outcome", ["fail", "stale"])
def test_healthz_is_503_when_the_source_fails_or_is_stale(
    daemon_factory: object, outcome: str
) -> None:
    daemon = daemon_factory([outcome])  # type: ignore[operator]
    daemon.start()
    _wait_polled(daemon)
    resp = requests.get(_url(daemon, "/healthz"), timeout=5)
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "unhealthy"
    assert body["symbols"]["1810.HK"]["status"] == ("failing" if outcome == "fail" else "stale")
    assert any("1810.HK" in p for p in body["problems"])


def test_metrics_parse_and_carry_market_cap_distance_and_errors(daemon_factory: object) -> None:
    daemon = daemon_factory(["ok", "fail"])  # type: ignore[operator]
    daemon.start()
    _wait_polled(daemon)
    daemon.poll()  # the scripted failure
    resp = requests.get(_url(daemon, "/metrics"), timeout=5)
    assert resp.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }
    cap = samples[("mcap_market_cap", (("currency", "HKD"), ("symbol", "1810.HK")))]
    assert cap == pytest.approx(45 * 25_105_000_000)
    dist = samples[("mcap_threshold_distance_ratio", (("rule", "hkd-1t"), ("symbol", "1810.HK")))]
    assert dist == pytest.approx(45 * 25_105_000_000 / 10**12 - 1)
    assert samples[("mcap_rule_above", (("rule", "hkd-1t"), ("symbol", "1810.HK")))] == 1
    errors = samples[("mcap_source_errors_total", (("kind", "network"), ("source", "yahoo")))]
    assert errors == 1
    assert samples[("mcap_outbox_depth", (("status", "pending"),))] == 1
    assert ("mcap_poll_duration_seconds_count", ()) in samples


def test_unknown_paths_are_404(daemon_factory: object) -> None:
    daemon = daemon_factory(["ok"])  # type: ignore[operator]
    daemon.start()
    for path in ("/nope", "/api/other", "/healthz/x"):
        assert requests.get(_url(daemon, path), timeout=5).status_code == 404


def test_listen_addresses_are_validated() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("9464", "localhost", "host:port", "127.0.0.1:70000"):
        with pytest.raises(ConfigError, match=r"health\.listen"):
            parse_listen(bad)
