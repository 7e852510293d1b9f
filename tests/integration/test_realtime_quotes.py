"""Tencent and Sina beside Yahoo through the quote policy, end to end offline.

Real adapters (``TencentQuotes``, ``SinaQuotes``) against a real local HTTP server, the Yahoo
fake at its seam, the engine and its store: the three decisions (confirmed, single,
disagreement), their alert texts, and a crossing seen only on a stale quote that does not fire.

Payloads: the real recorded Tencent ``r_hk01810`` (2026-08-03) and Sina ``rt_hk01810``
(2024-10-15) lines of ``tests/fixtures/cn_quotes/`` with price, high/low, caps and quote time
replaced by SYNTHETIC values for each scenario (every other field as recorded).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from pytest_httpserver import HTTPServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the shared fake
from yahoo_fake import FakeYahooSession, Reply, chart_body, isolate_yfinance

from monitor import bootstrap
from monitor.commands import check
from monitor.commands.status_cmd import quote_health
from monitor.core.events import Event, event_from_dict, event_to_dict
from monitor.daemon.digest import Valuer
from monitor.daemon.health import HealthState
from monitor.daemon.metrics import Metrics
from monitor.daemon.telemetry import Telemetry
from monitor.errors import ConfigError
from monitor.notify.templates import make_event_message
from monitor.service import Engine
from monitor.settings import Settings, load_settings
from monitor.sources.live import LiveSource
from monitor.store import Store

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "cn_quotes"
TENCENT = (FIX / "tencent_r_hk01810_2026-08-03.txt").read_bytes().decode("gbk").strip()
SINA = (FIX / "sina_rt_hk01810_2024-10-15.txt").read_bytes().decode("gbk").strip()
HKT = ZoneInfo("Asia/Hong_Kong")
T0 = datetime(2026, 8, 3, 14, 1, 15, tzinfo=HKT)  # a Monday, afternoon session
T1 = datetime(2026, 8, 3, 14, 2, 15, tzinfo=HKT)
T2 = datetime(2026, 8, 3, 14, 3, 15, tzinfo=HKT)
SHARES = 25_842_088_167  # Tencent's total of 2026-08-03; HK$1T at HK$38.70
SESSION = (int(datetime(2026, 8, 3, 1, 30, tzinfo=UTC).timestamp()),
           int(datetime(2026, 8, 3, 8, 0, tzinfo=UTC).timestamp()))  # fmt: skip


def tencent_line(price: str, at: datetime, shares: int = SHARES) -> str:
    f = TENCENT.split('"')[1].split("~")
    p = Decimal(price)
    f[3], f[33], f[34] = price, str(p + 1), str(p - 1)
    f[30] = at.strftime("%Y/%m/%d %H:%M:%S")
    f[69] = f"{shares}.00"
    f[45] = f"{p * shares / Decimal(10) ** 8:.4f}"
    f[44] = f"{p * Decimal(f[70]) / Decimal(10) ** 8:.4f}"
    return 'v_r_hk01810="' + "~".join(f) + '";\n'


def sina_line(price: str, at: datetime) -> str:
    f = SINA.split('"')[1].split(",")
    p = Decimal(price)
    f[6], f[4], f[5] = price, str(p + 1), str(p - 1)
    f[17], f[18] = at.strftime("%Y/%m/%d"), at.strftime("%H:%M:%S")
    return 'var hq_str_rt_hk01810="' + ",".join(f) + '";\n'


class Feeds:
    """What the local server answers for Tencent and Sina at the next poll."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server

    def set(self, tencent: str, sina: str) -> None:
        self.server.clear()
        self.server.expect_request("/tencent/q=r_hk01810").respond_with_data(
            tencent.encode("gbk"), content_type="text/plain; charset=GBK"
        )
        self.server.expect_request("/sina/list=rt_hk01810").respond_with_data(
            sina.encode("gbk"), content_type="text/plain; charset=GBK"
        )


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path) -> None:
    isolate_yfinance(tmp_path / "yf")


def yahoo(price: float, at: datetime) -> FakeYahooSession:
    """Yahoo's delayed quote (16 min behind) and nothing else; FX is not needed (HKD rule)."""
    fake = FakeYahooSession()
    fake.chart(
        "1810.HK",
        Reply.json(
            chart_body(
                "1810.HK",
                price=price,
                time=int((at - timedelta(minutes=16)).timestamp()),
                regular=SESSION,
            )
        ),
    )
    return fake


def make_live(
    server: HTTPServer, fake: FakeYahooSession, tmp_path: Path, **symbol: Any
) -> LiveSource:
    settings = Settings(
        symbols=[{"symbol": "1810.HK", "name": "Xiaomi", "name_zh": "小米集团", "shares": SHARES,
                  "shares_as_of": "2026-08-03", "shares_source": "Tencent total 2026-08-03",
                  **symbol}],
        rules=[{"id": "hkd-1t", "symbol": "1810.HK", "threshold": 10**12, "currency": "HKD"}],
        fx={"secondary": "none", "currencies": ["HKD"]},
        ranking={"enabled": False},
        source={"tencent_base_url": server.url_for("/tencent"),
                "sina_base_url": server.url_for("/sina")},
    )  # fmt: skip
    assert settings.source.quotes == ("tencent", "sina", "yahoo")  # the default
    return bootstrap.live_source(
        settings, session=requests.Session(), yahoo_session=fake, state_dir=tmp_path,
        check_shares=False, timeout=5,
    )  # fmt: skip


class Run:
    """A live source feeding the engine, poll after poll."""

    def __init__(self, httpserver: HTTPServer, tmp_path: Path) -> None:
        self.feeds = Feeds(httpserver)
        self.fake = yahoo(38.0, T0)
        self.live = make_live(httpserver, self.fake, tmp_path)
        self.store = Store.open(tmp_path / "state.db")
        self.engine = Engine(self.live.settings, self.store)
        self.health = HealthState(["1810.HK"], heartbeat_max_age=1e9)

    def poll(self, tencent: str, sina: str, now: datetime) -> list[Event]:
        self.feeds.set(tencent, sina)
        result = self.live.poll(["1810.HK"], now)
        self.health.record_poll(now.timestamp(), ["1810.HK"], result)
        self.health.heartbeat(now.timestamp())
        self.result = result
        return self.engine.process(result.observations, now.timestamp()).events

    def baseline(self) -> None:
        (event,) = self.poll(tencent_line("38.00", T0 - timedelta(seconds=4)),
                             sina_line("38.00", T0 - timedelta(seconds=5)), T0)  # fmt: skip
        assert event.kind == "baseline" and event.position == "below"
        assert event.quote_decision == "confirmed"


@pytest.fixture
def run(httpserver: HTTPServer, tmp_path: Path) -> Iterator[Run]:
    r = Run(httpserver, tmp_path)
    yield r
    r.store.close()


def test_tencent_and_sina_agree_the_crossing_fires_at_once(run: Run) -> None:
    run.baseline()
    (event,) = run.poll(
        tencent_line("43.05", T1 - timedelta(seconds=4)),
        sina_line("43.04", T1 - timedelta(seconds=5)),
        T1,
    )
    assert event.kind == "crossed_above"
    assert (event.quote_source, event.quote_decision, event.confirmed_by) == (
        "tencent", "confirmed", ("sina",),
    )  # fmt: skip
    assert event.price == Decimal("43.05") and not event.delayed
    en = make_event_message(event, "en").text
    assert "HK$43.05 from Tencent, confirmed by Sina, quote time 14:02:11 HKT" in en
    zh = make_event_message(event, "zh", name_zh="小米集团").text
    assert "43.05 港元，来自腾讯，经新浪确认，报价时间 14:02:11 HKT" in zh
    # the decision travels in the JSON (and back)
    data = event_to_dict(event)
    assert data["quote_decision"] == "confirmed" and data["confirmed_by"] == ["sina"]
    assert event_from_dict(data) == event
    assert run.health.snapshot(T1.timestamp())[1]["status"] == "ok"


def test_disagreement_evaluates_nothing_and_degrades_health(run: Run) -> None:
    run.baseline()
    events = run.poll(
        tencent_line("43.05", T1 - timedelta(seconds=4)),
        sina_line("41.00", T1 - timedelta(seconds=5)),
        T1,
    )
    assert events == []
    assert run.result.observations == []
    (failure,) = [f for f in run.result.failures if f.kind == "disagreement"]
    assert "tencent 43.05" in failure.message and "sina 41.00" in failure.message
    healthy, body = run.health.snapshot(T1.timestamp())
    assert healthy  # degraded, not failing: /healthz stays 200
    assert body["status"] == "degraded"
    assert body["symbols"]["1810.HK"]["status"] == "degraded"
    assert run.live.realtime.decisions["1810.HK"].kind == "disagreement"


def test_one_source_missing_waits_one_poll_then_fires_as_single(run: Run) -> None:
    run.baseline()
    empty_sina = 'var hq_str_rt_hk01810="";\n'
    first = run.poll(tencent_line("43.05", T1 - timedelta(seconds=4)), empty_sina, T1)
    assert first == []  # confirm_single = 2: a lone source's crossing waits
    assert run.live.realtime.decisions["1810.HK"].kind == "single"
    assert any(f.source == "sina" and f.kind == "not_found" for f in run.result.failures)
    (event,) = run.poll(tencent_line("43.10", T2 - timedelta(seconds=4)), empty_sina, T2)
    assert event.kind == "crossed_above"
    assert (event.quote_source, event.quote_decision, event.confirmed_by) == (
        "tencent", "single", (),
    )  # fmt: skip
    en = make_event_message(event, "en").text
    assert (
        "HK$43.10 from Tencent alone (no second source confirmed it), quote time 14:03:11 HKT" in en
    )
    zh = make_event_message(event, "zh").text
    assert "43.10 港元，仅来自腾讯（未经第二来源确认），报价时间 14:03:11 HKT" in zh


def test_a_crossing_seen_only_on_a_stale_quote_does_not_fire(run: Run) -> None:
    run.baseline()
    stale = T1 - timedelta(minutes=10)  # 10 min old in the session: over 180 s
    for now in (T1, T2):  # not even twice in a row
        events = run.poll(tencent_line("43.05", stale), sina_line("43.05", stale), now)
        assert events == []
        assert {(f.source, f.kind) for f in run.result.failures} >= {
            ("tencent", "stale"), ("sina", "stale"),
        }  # fmt: skip
    # Yahoo's delayed 38.00 is fresh for its 30 min, and stays below the line
    assert [o.source for o in run.result.observations] in ([], ["yahoo"])
    assert all(o.price < Decimal("38.70") for o in run.result.observations)


def test_a_share_count_beyond_tolerance_is_flagged(run: Run) -> None:
    run.baseline()
    run.poll(
        tencent_line("38.10", T1 - timedelta(seconds=4), shares=26_050_601_078),
        sina_line("38.10", T1 - timedelta(seconds=5)),
        T1,
    )
    (mismatch,) = [f for f in run.result.failures if f.kind == "shares_mismatch"]
    assert "26,050,601,078" in mismatch.message and "25,842,088,167" in mismatch.message
    assert "tencent" in mismatch.message
    assert run.live.gauges().shares_gap["1810.HK"] == pytest.approx(
        Decimal(26_050_601_078 - SHARES) / SHARES
    )
    healthy, body = run.health.snapshot(T1.timestamp())
    assert healthy and body["status"] == "degraded"
    assert run.result.observations  # still evaluated with the configured count


def test_check_shows_every_source_the_decision_and_the_share_counts(run: Run) -> None:
    run.baseline()
    run.poll(
        tencent_line("43.05", T1 - timedelta(seconds=4)),
        sina_line("43.04", T1 - timedelta(seconds=5)),
        T1,
    )
    report = check.build_report(run.live.settings, run.live, run.result, T1)
    q = report["quotes"]["1810.HK"]
    assert (q["decision"], q["used"], q["confirmed_by"]) == ("confirmed", "tencent", ["sina"])
    assert q["sources"]["tencent"]["price"] == "43.05"
    assert q["sources"]["tencent"]["age_seconds"] == 4
    assert q["sources"]["sina"]["age_seconds"] == 5
    # Yahoo's delayed quote of T0 - 16 min, a minute later
    assert q["sources"]["yahoo"]["delayed"] and q["sources"]["yahoo"]["age_seconds"] == 17 * 60
    assert q["shares"]["configured"] == SHARES and q["shares"]["tencent"] == SHARES
    text = "\n".join(check.render(report))
    assert "quotes 1810.HK: confirmed on tencent, confirmed by sina" in text
    assert "tencent  HK$43.05  at 2026-08-03 14:02 HKT, 4 s old" in text
    assert "shares   configured 25,842,088,167 (as of 2026-08-03) · tencent 25,842,088,167" in text


def test_metrics_quote_age_and_detection_latency(run: Run, tmp_path: Path) -> None:
    run.baseline()
    metrics = Metrics()
    telemetry = Telemetry(metrics, run.health, run.store)
    telemetry.account_poll(
        T0.timestamp(), ["1810.HK"], run.result, run.live.gauges(), run.engine.states,
        Valuer(run.live.settings), run.live.settings,
    )  # fmt: skip
    text = metrics.render().decode()
    assert 'mcap_quote_age_seconds{source="tencent"} 4.0' in text
    # every source asked, not only the one used: Sina's confirming quote was 5 s old
    assert 'mcap_quote_age_seconds{source="sina"} 5.0' in text
    assert 'mcap_quote_decisions_total{decision="confirmed"} 1.0' in text
    # detection latency: quote time -> enqueue, for crossings only (not the baseline)
    telemetry.account_events(T0.timestamp(), run.engine.process([], T0.timestamp()).events)
    assert "mcap_detection_latency_seconds_count 0.0" in metrics.render().decode()
    crossing = run.poll(
        tencent_line("43.05", T1 - timedelta(seconds=4)),
        sina_line("43.04", T1 - timedelta(seconds=5)),
        T1,
    )
    telemetry.account_events(T1.timestamp() + 1, crossing)  # enqueued a second after the poll
    text = metrics.render().decode()
    assert "mcap_detection_latency_seconds_count 1.0" in text
    assert "mcap_detection_latency_seconds_sum 5.0" in text
    # a disagreement is counted, and saved for `mcap-monitor status`
    run.poll(
        tencent_line("43.05", T1 - timedelta(seconds=4)),
        sina_line("41.00", T1 - timedelta(seconds=5)),
        T1,
    )
    telemetry.account_poll(
        T1.timestamp(), ["1810.HK"], run.result, run.live.gauges(), run.engine.states,
        Valuer(run.live.settings), run.live.settings,
    )  # fmt: skip
    text = metrics.render().decode()
    assert 'mcap_quote_decisions_total{decision="disagreement"} 1.0' in text
    (line,) = quote_health(run.store.meta("quote_health"))
    assert line.startswith("1810.HK: disagreement: sources disagree by more than 0.5%")


def test_shares_auto_values_with_the_sources_total_and_says_so(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    live = make_live(httpserver, yahoo(38.0, T1), tmp_path, shares=26_050_601_078,
                     shares_mode="auto")  # fmt: skip
    Feeds(httpserver).set(
        tencent_line("38.10", T1 - timedelta(seconds=4)),
        sina_line("38.10", T1 - timedelta(seconds=5)),
    )
    result = live.poll(["1810.HK"], T1)
    (obs,) = result.observations
    assert obs.shares is not None
    assert obs.shares.total == SHARES
    assert obs.shares.source == "tencent real-time total (all classes)"
    assert str(obs.shares.as_of) == "2026-08-03"
    # and the configured count, 0.8 % off, is still flagged
    assert any(f.kind == "shares_mismatch" for f in result.failures)


def test_an_unknown_quote_source_is_a_config_error_listing_the_valid_ones(
    tmp_path: Path,
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[[symbols]]\nsymbol = "1810.HK"\nshares = 1\n\n'
        '[source]\nquotes = ["tencent", "eastmoney"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    text = str(info.value)
    assert "unknown quote source 'eastmoney'" in text
    assert "valid sources: tencent, sina, yahoo" in text


def status_of(run: Run, tmp_path: Path, *extra: str) -> str:
    from conftest import run_cli

    config = tmp_path / "status.toml"
    config.write_text(
        f'[[symbols]]\nsymbol = "1810.HK"\nshares = {SHARES}\n\n'
        '[[rules]]\nid = "hkd-1t"\nsymbol = "1810.HK"\nthreshold = 1_000_000_000_000\n'
        'currency = "HKD"\n'
    )
    out = run_cli("status", *extra, "--config", str(config), "--state-db", str(run.store.path))
    assert out.returncode == 0, out
    return out.stdout


def test_status_shows_the_decision_and_sources_of_the_latest_observation(
    run: Run, tmp_path: Path
) -> None:
    import json

    run.baseline()
    assert "quote: tencent, confirmed by sina" in status_of(run, tmp_path)
    (rule,) = json.loads(status_of(run, tmp_path, "--json"))["rules"]
    assert rule["quote"] == {"decision": "confirmed", "source": "tencent", "confirmed_by": ["sina"]}
    empty_sina = 'var hq_str_rt_hk01810="";\n'
    run.poll(tencent_line("38.10", T1 - timedelta(seconds=4)), empty_sina, T1)
    run.poll(tencent_line("38.20", T2 - timedelta(seconds=4)), empty_sina, T2)  # 2nd single
    assert [o.quote_decision for o in run.result.observations] == ["single"], run.result
    assert "quote: tencent, single source" in status_of(run, tmp_path)
    (rule,) = json.loads(status_of(run, tmp_path, "--json"))["rules"]
    assert rule["quote"] == {"decision": "single", "source": "tencent", "confirmed_by": []}
