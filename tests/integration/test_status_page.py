"""The status page and /api/status over real HTTP on 127.0.0.1: figures, refresh, access."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import BUNDLED_TAPE
from fakes import wait_until

from monitor.core.valuation import Observation
from monitor.daemon.health import HealthServer, HealthState
from monitor.daemon.metrics import Metrics
from monitor.daemon.status_page.access import Access, resolve_token
from monitor.daemon.status_page.api import StatusProvider
from monitor.errors import ConfigError
from monitor.ports import PollResult
from monitor.service import Engine
from monitor.settings import HealthConfig, Settings
from monitor.sources.tape import TapeReader
from monitor.store import Store

SINK_URL = "https://hooks.example.invalid/T0SECRET/B0SECRET/xoxb-do-not-show"
SIGNING = "whsec_" + base64.b64encode(b"status-page-test-key-0123456789").decode()
TOKEN = "st-9f3c1e77a2b04d51"
SHARES = 25_105_000_000
MARKED = {"touched_above", "crossed_above", "crossed_below"}
TIMEOUT = 10


def make_settings(**health: Any) -> Settings:
    return Settings(
        symbols=[{"symbol": "1810.HK", "name": "Xiaomi", "name_zh": "小米", "shares": SHARES}],
        rules=[
            {"id": "hkd-1t", "symbol": "1810.HK", "threshold": 10**12, "currency": "HKD"},
            {"id": "cny-1t", "symbol": "1810.HK", "threshold": 10**12, "currency": "CNY"},
        ],
        sinks=[{"id": "hook", "type": "webhook", "url": SINK_URL, "secret": SIGNING}],
        source={"kind": "tape", "path": str(BUNDLED_TAPE)},
        health={"listen": "127.0.0.1:0", **health},
        daemon={"poll_interval": 60, "jitter": 0},
    )


def fill(db: Path, settings: Settings, rows: list[Observation] | None = None) -> None:
    """The bundled tape through the engine, and one dead delivery naming the sink's URL."""
    store = Store.open(db)
    try:
        engine = Engine(settings, store)
        if rows is None:
            engine.process(TapeReader(BUNDLED_TAPE), time.time())
            first = store.outbox_list("pending")[0]
            # a careless error text: the page must not pass the URL on
            store.mark_dead(first.id, time.time(), f"HTTP 410 Gone from {SINK_URL}")
        else:
            engine.process(rows, time.time())
    finally:
        store.close()


@contextmanager
def serving(
    settings: Settings,
    db: Path,
    *,
    host: str = "127.0.0.1",
    token: str | None = None,
    health: HealthState | None = None,
) -> Iterator[str]:
    state = health or HealthState(["1810.HK"], heartbeat_max_age=60)
    state.heartbeat(time.time())
    status = StatusProvider(lambda: Store.open_read_only(db), lambda: settings, state, time.time)
    server = HealthServer(
        (host, 0),
        state,
        Metrics(),
        time.time,
        status=status,
        access=Access.for_listen(host, token),
    )
    server.start()
    try:
        yield f"http://127.0.0.1:{server.address[1]}"
    finally:
        server.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    fill(path, make_settings())
    return path


def stored_events(db: Path) -> list[dict[str, Any]]:
    store = Store.open_read_only(db)
    try:
        return store.events()
    finally:
        store.close()


def test_api_status_has_every_rule_with_state_distance_and_the_price_that_reaches_the_line(
    db: Path,
) -> None:
    with serving(make_settings(), db) as url:
        doc = requests.get(f"{url}/api/status", timeout=TIMEOUT).json()
    rules = {r["rule"]: r for r in doc["rules"]}
    assert set(rules) == {"hkd-1t", "cny-1t"}
    hkd = rules["hkd-1t"]
    # the tape ends at HK$52.85 with Xiaomi above HK$1 trillion
    assert hkd["state"] == "above"
    assert hkd["text"]["threshold"] == "HK$1T"
    assert Decimal(hkd["value"]) == Decimal("52.85") * SHARES
    assert hkd["text"]["distance"] == "+32.7 %"
    # above the line, the price that matters puts the cap on the bottom of the 1 % band
    needs = Decimal(hkd["needs_price"])
    assert abs(needs * SHARES - Decimal("0.99") * 10**12) < SHARES * Decimal("0.005")
    assert hkd["text"]["needs_price"] == f"HK${needs}"
    assert doc["symbols"][0]["source"] == "tape"
    assert doc["data_as_of"].startswith("2025-03-10")


def test_every_touch_and_crossing_in_the_window_is_a_mark_on_its_rules_chart(db: Path) -> None:
    with serving(make_settings(), db) as url:
        doc = requests.get(f"{url}/api/status", timeout=TIMEOUT).json()
    events = [e for e in stored_events(db) if e["kind"] in MARKED]
    assert events, "the bundled tape crosses the line"
    for rule in doc["rules"]:
        want = sorted(e["id"] for e in events if e["rule"] == rule["rule"])
        assert sorted(m["id"] for m in rule["chart"]["marks"]) == want
        svg = rule["chart"]["svg"]
        assert svg.count('class="mark ') == len(want)
        assert 'class="threshold"' in svg and 'class="band"' in svg
        # 30 trading days and the newest one, one point per day on a daily tape
        assert len(rule["chart"]["points"]) == 31


def test_a_poll_adds_its_observation_to_the_chart_without_rereading_the_window(
    tmp_path: Path, db: Path
) -> None:
    settings = make_settings()
    health = HealthState(["1810.HK"], heartbeat_max_age=60)
    with serving(settings, db, health=health) as url:
        before = requests.get(f"{url}/api/status", timeout=TIMEOUT).json()
        last = before["rules"][0]["chart"]["points"][-1]
        day = TapeReader(BUNDLED_TAPE)
        final = list(day)[-1]
        nxt = final._replace(
            time=final.time + timedelta(days=1),
            price=Decimal("60.00"),
            day_high=Decimal("60.50"),
        )
        fill(db, settings, [nxt])
        health.record_poll(time.time(), ["1810.HK"], PollResult(observations=[nxt]))

        def grown() -> bool:
            doc = requests.get(f"{url}/api/status", timeout=TIMEOUT).json()
            return bool(doc["rules"][0]["chart"]["points"][-1] != last)

        # the page's own thread rebuilds after the poll; requests never wait for it
        assert wait_until(grown, 30)
        after = requests.get(f"{url}/api/status", timeout=TIMEOUT).json()
    points = after["rules"][0]["chart"]["points"]
    assert points[-2] == last
    assert Decimal(points[-1][1]) == Decimal("60.00") * SHARES
    assert after["rules"][0]["text"]["value"] == "HK$1.506 trillion"


def test_the_page_is_self_contained_and_locked_down(db: Path) -> None:
    with serving(make_settings(), db) as url:
        reply = requests.get(f"{url}/", timeout=TIMEOUT)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = reply.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    html = reply.text
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and '<link rel="stylesheet"' not in html
    assert "src=" not in html  # no external script or image
    assert "hkd-1t" in html and "cny-1t" in html


def test_language_zh_gives_chinese_text_and_red_for_up(db: Path) -> None:
    settings = make_settings(language="zh")
    with serving(settings, db) as url:
        html = requests.get(f"{url}/", timeout=TIMEOUT).text
        doc = requests.get(f"{url}/api/status", timeout=TIMEOUT).json()
    assert '<html lang="zh">' in html and "市值监控状态" in html
    assert 'class="red-up"' in html and doc["red_up"] is True
    assert doc["symbols"][0]["name"] == "小米"
    with serving(make_settings(language="zh", colours="green_up"), db) as url:
        assert 'class="green-up"' in requests.get(f"{url}/", timeout=TIMEOUT).text


def test_dead_deliveries_show_sink_and_reason_but_never_the_sink_url(db: Path) -> None:
    with serving(make_settings(), db) as url:
        doc = requests.get(f"{url}/api/status", timeout=TIMEOUT).json()
    dead = doc["outbox"]["dead_rows"]
    assert doc["outbox"]["dead"] == 1 and dead[0]["sink"] == "hook"
    assert dead[0]["error"] == "HTTP 410 Gone from [url]"


@pytest.mark.parametrize("path", ["/", "/api/status", "/healthz", "/metrics"])
def test_head_answers_like_get_without_a_body(db: Path, path: str) -> None:
    with serving(make_settings(), db) as url:
        got = requests.get(url + path, timeout=TIMEOUT)
        head = requests.head(url + path, timeout=TIMEOUT)
    assert head.status_code == got.status_code
    assert head.headers["Content-Type"] == got.headers["Content-Type"]
    assert int(head.headers["Content-Length"]) > 0 and head.content == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/", "/api/status", "/healthz"])
def test_other_methods_get_405_with_allow(db: Path, method: str, path: str) -> None:
    with serving(make_settings(), db) as url:
        reply = requests.request(method, url + path, timeout=TIMEOUT)
    assert reply.status_code == 405
    assert reply.headers["Allow"] == "GET, HEAD"


def test_off_loopback_the_page_and_api_need_the_token_and_probes_do_not(db: Path) -> None:
    settings = make_settings(listen="0.0.0.0:0", token=TOKEN)
    with serving(settings, db, host="0.0.0.0", token=TOKEN) as url:
        for path in ("/", "/api/status"):
            bare = requests.get(url + path, timeout=TIMEOUT)
            assert bare.status_code == 401
            assert bare.headers["WWW-Authenticate"].startswith("Bearer")
            wrong = {"Authorization": "Bearer not-the-token"}
            assert requests.get(url + path, headers=wrong, timeout=TIMEOUT).status_code == 401
            right = {"Authorization": f"Bearer {TOKEN}"}
            assert requests.get(url + path, headers=right, timeout=TIMEOUT).status_code == 200
        assert requests.get(f"{url}/healthz", timeout=TIMEOUT).status_code == 200
        assert requests.get(f"{url}/metrics", timeout=TIMEOUT).status_code == 200
        # a browser: ?token= once, then the cookie; the token leaves the address bar
        browser = requests.Session()
        first = browser.get(f"{url}/?token={TOKEN}", allow_redirects=False, timeout=TIMEOUT)
        assert first.status_code == 303 and first.headers["Location"] == "/"
        assert TOKEN not in first.headers["Set-Cookie"]
        assert "HttpOnly" in first.headers["Set-Cookie"]
        assert browser.get(f"{url}/api/status", timeout=TIMEOUT).status_code == 200
        stranger = requests.get(f"{url}/?token=guess", timeout=TIMEOUT)
        assert stranger.status_code == 401


def test_off_loopback_without_a_token_the_page_is_refused_with_a_hint(db: Path) -> None:
    with serving(make_settings(listen="0.0.0.0:0"), db, host="0.0.0.0") as url:
        reply = requests.get(f"{url}/", timeout=TIMEOUT)
        assert reply.status_code == 403
        assert "[health] token" in reply.text and "ssh -L" in reply.text
        assert requests.get(f"{url}/api/status", timeout=TIMEOUT).status_code == 403
        assert requests.get(f"{url}/healthz", timeout=TIMEOUT).status_code == 200


def test_no_response_carries_a_secret(db: Path) -> None:
    settings = make_settings(listen="0.0.0.0:0", token=TOKEN)
    secrets = [SINK_URL, "hooks.example.invalid", SIGNING, SIGNING[6:], TOKEN]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with serving(settings, db, host="0.0.0.0", token=TOKEN) as url:
        replies = [
            requests.get(url + path, headers=h, timeout=TIMEOUT, allow_redirects=False)
            for path in ("/", "/api/status", "/healthz", "/metrics", f"/?token={TOKEN}", "/x")
            for h in ({}, auth)
        ]
    assert {r.status_code for r in replies} >= {200, 303, 401, 404}
    for reply in replies:
        seen = reply.text + "".join(f"{k}: {v}\n" for k, v in reply.headers.items())
        for secret in secrets:
            assert secret not in seen, (reply.url.replace(TOKEN, "<token>"), reply.status_code)


def test_the_token_can_come_from_a_systemd_credential(tmp_path: Path) -> None:
    (tmp_path / "status-token").write_text(TOKEN + "\n", encoding="utf-8")
    config = HealthConfig(listen="0.0.0.0:9464", token_credential="status-token")
    assert resolve_token(config, {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == TOKEN
    with pytest.raises(ConfigError, match="CREDENTIALS_DIRECTORY is not set"):
        resolve_token(config, {})
    with pytest.raises(ConfigError, match="cannot read credential"):
        resolve_token(config, {"CREDENTIALS_DIRECTORY": str(tmp_path / "nowhere")})


def test_the_token_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCAP_HEALTH__TOKEN", TOKEN)
    settings = Settings(symbols=[{"symbol": "1810.HK", "shares": SHARES}])
    assert resolve_token(settings.health) == TOKEN


def test_an_unreadable_store_answers_503_and_the_probes_stay_up(tmp_path: Path) -> None:
    with serving(make_settings(), tmp_path / "missing.db") as url:
        assert requests.get(f"{url}/api/status", timeout=TIMEOUT).status_code == 503
        assert requests.get(f"{url}/healthz", timeout=TIMEOUT).status_code == 200
