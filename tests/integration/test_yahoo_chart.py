"""The Yahoo adapter through yfinance, offline: a fake curl_cffi session serves the payloads.

Recorded payloads (see tests/fixtures/yahoo/README.md) for shapes Yahoo really sends; synthetic
charts (``chart_body``) where a test needs particular numbers.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fakes import free_port
from yahoo_fake import CHART, FakeYahooSession, Reply, chart_body, isolate_yfinance

from monitor.errors import SourceError
from monitor.sources.yahoo import YahooChart, YahooSession, not_found_hint

T0 = 1746000000  # synthetic quote time (2025-04-30 08:00 UTC)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path) -> None:
    isolate_yfinance(tmp_path / "yf")


def chart(fake: FakeYahooSession) -> YahooChart:
    return YahooChart(fake, timezones={"1810.HK": "Asia/Hong_Kong"})


def test_quote_reads_price_high_time_and_currency_from_chart_meta() -> None:
    fake = FakeYahooSession().chart(
        "1810.HK", Reply.json(chart_body("1810.HK", price=42.45, day_high=43.05, time=T0))
    )
    q = chart(fake).quote("1810.HK")
    assert q.price == Decimal("42.45")
    assert q.day_high == Decimal("43.05")
    assert q.currency == "HKD"
    assert q.time == datetime.fromtimestamp(T0, UTC)
    assert q.exchange_tz == "Asia/Hong_Kong"
    assert fake.unrouted == []


def test_each_poll_costs_one_chart_request_and_sees_the_new_price() -> None:
    fake = FakeYahooSession().chart(
        "1810.HK",
        Reply.json(chart_body("1810.HK", price=42.45, time=T0)),
        Reply.json(chart_body("1810.HK", price=42.60, time=T0 + 60)),
    )
    src = chart(fake)
    src.quote("1810.HK")  # first call also fetches cookie and crumb
    fake.reset_counts()
    second = src.quote("1810.HK")
    assert second.price == Decimal("42.60")  # a fresh Ticker: no cached quote
    assert fake.count() == 1
    assert fake.count(CHART + "1810.HK") == 1


def test_recorded_fx_chart_body_parses_as_a_rate() -> None:
    fake = FakeYahooSession().chart(
        "EURUSD=X", Reply.file("openbb_chart_EURUSD=X_range1d_2024-11-14.body.json")
    )
    q = chart(fake).quote("EURUSD=X")
    assert (q.price, q.currency) == (Decimal("1.0551"), "USD")
    assert q.time == datetime(2024, 11, 14, 3, 49, 23, tzinfo=UTC)


def test_unknown_symbol_is_not_found_with_a_hint() -> None:
    fake = FakeYahooSession().chart(
        "00981.HK", Reply.file("LOG_bsemonitor_chart_404_INVALID.BO_c2025-08.json", 404)
    )
    with pytest.raises(SourceError) as info:
        YahooChart(fake, timezones={"00981.HK": "Asia/Hong_Kong"}).quote("00981.HK")
    err = info.value
    assert err.kind == "not_found"
    assert "00981.HK not found on Yahoo" in err.one_line()
    assert "00981.HK -> 0981.HK" in err.one_line()


def test_empty_chart_window_is_not_found() -> None:
    fake = FakeYahooSession().chart(
        "AAPL", Reply.file("nyf2_chart_AAPL_1m_empty-quote_2025-02-20.json")
    )
    with pytest.raises(SourceError) as info:
        YahooChart(fake, timezones={"AAPL": "America/New_York"}).quote("AAPL")
    assert info.value.kind == "not_found"


def test_trimmed_meta_without_trading_period_is_bad_data() -> None:
    fake = FakeYahooSession().chart(
        "0700.HK", Reply.file("LOWCONF_kmacao_chart_0700.HK_5d_trimmed_2026-08-07.json")
    )
    with pytest.raises(SourceError) as info:
        YahooChart(fake, timezones={"0700.HK": "Asia/Hong_Kong"}).quote("0700.HK")
    assert info.value.kind == "bad_data"


@pytest.mark.parametrize("price", [None, float("nan"), 0.0, -1.5])
def test_missing_nan_or_non_positive_price_is_rejected(price: float | None) -> None:
    fake = FakeYahooSession().chart(
        "1810.HK", Reply.json(chart_body("1810.HK", price=price, time=T0, bars=[(T0, 42.0)]))
    )
    with pytest.raises(SourceError) as info:
        chart(fake).quote("1810.HK")
    assert info.value.kind == "bad_data"
    assert "price" in info.value.what.lower()


def test_http_429_becomes_rate_limited() -> None:
    fake = FakeYahooSession().chart("1810.HK", Reply.rate_limited())
    with pytest.raises(SourceError) as info:
        chart(fake).quote("1810.HK")
    assert info.value.kind == "rate_limited"


def test_network_down_becomes_a_network_error_that_says_so() -> None:
    fake = FakeYahooSession()
    fake.set_down()
    with pytest.raises(SourceError) as info:
        chart(fake).quote("1810.HK")
    assert info.value.kind == "network"
    assert info.value.what.startswith("no network: could not reach Yahoo Finance")


@pytest.mark.timeout(20)
def test_real_session_against_a_closed_port_fails_fast() -> None:
    session = YahooSession(timeout=3, base_url=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        YahooChart(session, timezones={"1810.HK": "Asia/Hong_Kong"}).quote("1810.HK")
    assert info.value.kind == "network"
    assert time.monotonic() - started < 10


def test_hint_for_hong_kong_codes() -> None:
    assert "981.HK -> 0981.HK" in not_found_hint("981.HK")
    assert "finance.yahoo.com" in not_found_hint("1810.HK")
