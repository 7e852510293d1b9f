"""Share counts through ``LiveSource.poll``: the three modes and the daily cross-check.

Offline: the fake Yahoo session serves the chart and ``get_info`` (quoteSummary + v7 quote +
timeseries, with the crumb); FX comes from Yahoo only and the ranking is off, so no other
server is involved. Real facts: Xiaomi's HKEX monthly return of Feb 2026, 26,050,601,078
shares = Class A 4,511,553,144 (unlisted) + Class B 21,539,047,934 (listed). Every price,
market cap and Yahoo share count in a payload is SYNTHETIC (made up here).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
from integration.test_live_source import fx_chart, ts
from structlog.testing import capture_logs
from yahoo_fake import (
    CHART,
    QUOTE_SUMMARY,
    V7_QUOTE,
    FakeYahooSession,
    Reply,
    chart_body,
    info_bodies,
    isolate_yfinance,
)

from monitor import bootstrap
from monitor.core.valuation import SharesCount
from monitor.settings import Settings
from monitor.sources.live import LiveSource

pytestmark = pytest.mark.timeout(60)

SYM = "1810.HK"
# real: HKEX monthly return of Xiaomi for February 2026
CLASS_A = 4_511_553_144
CLASS_B = 21_539_047_934
TOTAL = 26_050_601_078
AS_OF = date(2026, 2, 28)
SOURCE = "HKEX monthly return Feb 2026"
# the clock of these tests: Monday 2026-03-16, 11:00 HKT, in the morning session
NOW = datetime(2026, 3, 16, 3, 0, tzinfo=UTC)
PRICE = 42.45  # SYNTHETIC
TOTAL_CAP = round(PRICE * TOTAL)  # SYNTHETIC marketCap whose implied count is TOTAL


def hk_chart(at: datetime, price: float = PRICE) -> Reply:
    """A SYNTHETIC 1810.HK chart quoted at ``at``, in that day's regular session."""
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    session = (ts(day + timedelta(hours=1, minutes=30)), ts(day + timedelta(hours=8)))
    return Reply.json(chart_body(SYM, price=price, time=ts(at), regular=session))


def quote_at(fake: FakeYahooSession, now: datetime) -> None:
    """Route fresh SYNTHETIC quotes for a poll at ``now`` (the chart 16 min delayed)."""
    fake.chart(SYM, hk_chart(now - timedelta(minutes=16)))
    fake.chart("HKDCNY=X", fx_chart("HKDCNY=X", 0.9300, now))  # SYNTHETIC rate
    fake.chart("HKDUSD=X", fx_chart("HKDUSD=X", 0.1285, now))  # SYNTHETIC rate


def fake_yahoo(
    *,
    market_cap: float | None = TOTAL_CAP,
    price: float | None = PRICE,
    shares_outstanding: int | None = CLASS_B,
) -> FakeYahooSession:
    """Chart, FX and ``get_info`` of a healthy Yahoo (numbers SYNTHETIC unless said)."""
    fake = FakeYahooSession()
    quote_at(fake, NOW)
    fake.info(SYM, market_cap=market_cap, price=price, shares_outstanding=shares_outstanding)
    return fake


def make_live(
    fake: FakeYahooSession, tmp_path: Path, *, check_shares: bool = True, **symbol: Any
) -> LiveSource:
    settings = Settings(
        symbols=[{"symbol": SYM, "name": "Xiaomi", "shares": TOTAL, "shares_as_of": AS_OF,
                  "shares_source": SOURCE, **symbol}],
        rules=[{"id": "hkd-1t", "symbol": SYM, "threshold": 10**12, "currency": "HKD"}],
        fx={"secondary": "none"},
        ranking={"enabled": False},
        source={"quotes": ["yahoo"]},  # Yahoo alone, as before the real-time sources
    )  # fmt: skip
    return bootstrap.live_source(
        settings, yahoo_session=fake, state_dir=tmp_path, check_shares=check_shares, timeout=5
    )


def shares_of(live: LiveSource, now: datetime = NOW) -> SharesCount:
    result = live.poll([SYM], now)
    assert result.failures == [], result.failures
    (obs,) = result.observations
    assert obs.shares is not None
    return obs.shares


def warnings_of(live: LiveSource) -> list[str]:
    return [w for w in live.details[SYM].warnings if "share" in w]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path) -> None:
    isolate_yfinance(tmp_path / "yf")


# -- the three modes ---------------------------------------------------------------------


def test_static_mode_uses_the_configured_total_of_both_classes(tmp_path: Path) -> None:
    # Yahoo's implied count is 2 % higher (SYNTHETIC): checked, but never used in static mode
    fake = fake_yahoo(market_cap=round(PRICE * TOTAL * 1.02))
    live = make_live(fake, tmp_path)
    assert shares_of(live) == SharesCount(CLASS_A + CLASS_B, SOURCE, AS_OF)
    assert TOTAL == CLASS_A + CLASS_B
    assert fake.count(QUOTE_SUMMARY) == 1  # the daily cross-check ran
    assert live.counters["shares_checked"] == 1


def test_static_mode_without_the_cross_check_asks_yahoo_only_for_the_chart(
    tmp_path: Path,
) -> None:
    fake = fake_yahoo()
    live = make_live(fake, tmp_path, check_shares=False)
    assert shares_of(live).total == TOTAL
    assert fake.count(QUOTE_SUMMARY) == fake.count(V7_QUOTE) == 0
    assert fake.count(CHART) == 3  # 1810.HK, HKDCNY=X, HKDUSD=X


def test_source_plus_unlisted_adds_the_configured_unlisted_class_a_to_yahoo_listed(
    tmp_path: Path,
) -> None:
    listed = 21_600_000_000  # SYNTHETIC sharesOutstanding (Class B only, as Yahoo counts)
    fake = fake_yahoo(shares_outstanding=listed)
    live = make_live(fake, tmp_path, shares_mode="source_plus_unlisted", unlisted_shares=CLASS_A)
    shares = shares_of(live)
    assert shares.total == listed + CLASS_A == 26_111_553_144
    assert shares.source.startswith("Yahoo sharesOutstanding + 4,511,553,144 unlisted")
    assert shares.as_of == date(2026, 3, 16)
    # the get_info requests carried the crumb of the cookie dance
    summary = next(s for s in fake.seen if s.path.startswith(QUOTE_SUMMARY))
    assert summary.params["crumb"] == "FAKEcrumb123"
    assert summary.params["symbol"] == SYM
    assert fake.unrouted == []


def test_source_plus_unlisted_with_the_real_class_b_count_gives_the_hkex_total(
    tmp_path: Path,
) -> None:
    fake = fake_yahoo(shares_outstanding=CLASS_B)
    live = make_live(fake, tmp_path, shares_mode="source_plus_unlisted", unlisted_shares=CLASS_A)
    assert shares_of(live).total == TOTAL
    assert warnings_of(live) == []


def test_source_plus_unlisted_falls_back_to_config_without_shares_outstanding(
    tmp_path: Path,
) -> None:
    fake = fake_yahoo(shares_outstanding=None)
    live = make_live(fake, tmp_path, shares_mode="source_plus_unlisted", unlisted_shares=CLASS_A)
    assert shares_of(live) == SharesCount(TOTAL, SOURCE, AS_OF)


def test_yahoo_implied_uses_market_cap_over_price(tmp_path: Path) -> None:
    cap = 1_120_000_000_000  # SYNTHETIC marketCap (HKD, all classes)
    fake = fake_yahoo(market_cap=cap)
    live = make_live(fake, tmp_path, shares_mode="yahoo_implied")
    shares = shares_of(live)
    assert shares.total == round(Decimal(cap) / Decimal("42.45")) == 26_383_981_154
    assert shares.source == "Yahoo implied (marketCap / regularMarketPrice)"
    assert shares.as_of == date(2026, 3, 16)
    # the implied count is kept for the day: later polls use it without asking again
    assert shares_of(live, NOW + timedelta(minutes=5)).total == 26_383_981_154
    assert fake.count(QUOTE_SUMMARY) == 1


def test_yahoo_implied_rounds_back_to_the_count_yahoo_multiplied(tmp_path: Path) -> None:
    # Yahoo's marketCap is price x shares rounded to a whole HKD: 1,105,848,015,761 here
    # (SYNTHETIC price), / 42.45 = 26,050,601,077.997...; truncating would lose a share
    fake = fake_yahoo(market_cap=TOTAL_CAP)
    live = make_live(fake, tmp_path, shares_mode="yahoo_implied")
    assert TOTAL_CAP == 1_105_848_015_761
    assert shares_of(live).total == TOTAL


def test_yahoo_implied_uses_the_price_yahoo_valued_the_cap_with(tmp_path: Path) -> None:
    # SYNTHETIC: info's price differs from the chart's last price (different snapshot)
    fake = fake_yahoo(market_cap=1_100_000_000_000, price=44.0)
    live = make_live(fake, tmp_path, shares_mode="yahoo_implied")
    assert shares_of(live).total == 25_000_000_000


# -- the daily cross-check ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("factor", "warns"),
    [(1.0, False), (1.029, False), (0.971, False), (1.031, True), (0.969, True), (1.25, True)],
)
def test_cross_check_warns_beyond_three_percent_only(
    tmp_path: Path, factor: float, warns: bool
) -> None:
    fake = fake_yahoo(market_cap=round(PRICE * TOTAL * factor))  # SYNTHETIC
    live = make_live(fake, tmp_path)
    structlog.reset_defaults()
    with capture_logs() as logs:
        shares = shares_of(live)
    assert shares.total == TOTAL  # static: a warning, never a silent switch
    assert live.counters["shares_checked"] == 1
    assert live.counters["shares_mismatch"] == int(warns)
    # the gap the daemon exports as the mcap_shares_gap_ratio metric
    assert abs(float(live.shares_gap[SYM]) - abs(factor - 1)) < 1e-6
    implied = live.details[SYM].implied_shares
    assert implied is not None and abs(float(implied) / (TOTAL * factor) - 1) < 1e-9
    mismatches = [e for e in logs if e["event"] == "shares_mismatch"]
    if warns:
        (warning,) = warnings_of(live)
        assert f"by {abs(factor - 1):.1%}" in warning and "tolerance 3%" in warning
        assert f"{TOTAL:,}" in warning
        assert len(mismatches) == 1 and mismatches[0]["symbol"] == SYM
        assert mismatches[0]["log_level"] == "warning"
    else:
        assert warnings_of(live) == []
        assert mismatches == []


def test_cross_check_runs_at_most_once_a_day(tmp_path: Path) -> None:
    fake = fake_yahoo(market_cap=round(PRICE * TOTAL * 1.05))  # SYNTHETIC: 5 % apart
    live = make_live(fake, tmp_path)
    structlog.reset_defaults()
    with capture_logs() as logs:
        shares_of(live)
        first = warnings_of(live)
        for minute in (1, 2, 30, 240):  # same HK day
            quote_at(fake, NOW + timedelta(minutes=minute))
            shares_of(live, NOW + timedelta(minutes=minute))
            assert warnings_of(live) == []
        assert fake.count(QUOTE_SUMMARY) == fake.count(V7_QUOTE) == 1
        assert live.counters["shares_checked"] == live.counters["shares_mismatch"] == 1
        # the next HK day (Tuesday 11:00 HKT) checks again
        tomorrow = NOW + timedelta(days=1)
        quote_at(fake, tomorrow)
        shares_of(live, tomorrow)
        second = warnings_of(live)
        shares_of(live, tomorrow + timedelta(minutes=1))
    assert len(first) == len(second) == 1 and "5.0%" in first[0]
    assert fake.count(QUOTE_SUMMARY) == 2
    assert live.counters["shares_checked"] == live.counters["shares_mismatch"] == 2
    assert [e["event"] for e in logs].count("shares_mismatch") == 2


def test_the_day_of_the_cross_check_is_the_hong_kong_day(tmp_path: Path) -> None:
    fake = fake_yahoo()
    live = make_live(fake, tmp_path)
    late = datetime(2026, 3, 16, 15, 59, tzinfo=UTC)  # 23:59 HKT Monday
    shares_of(live, late)
    shares_of(live, late + timedelta(minutes=1))  # 00:00 HKT Tuesday: a new day
    assert fake.count(QUOTE_SUMMARY) == 2


# -- a failing cross-check never blocks the poll ------------------------------------------


FAILURES = {
    "http_500": Reply(500, b'{"finance":{"result":null,"error":{"code":"Internal"}}}'),
    "network_down": Reply.network_down(),
    "timeout": Reply.timeout(),
    "rate_limited": Reply.rate_limited(),
    "not_json": Reply.text("<html>oops</html>"),
}


@pytest.mark.parametrize("mode", ["static", "yahoo_implied", "source_plus_unlisted"])
@pytest.mark.parametrize("failure", [*FAILURES, "no_market_cap", "v7_unknown_symbol"])
def test_a_failing_cross_check_never_blocks_the_poll(
    tmp_path: Path, mode: str, failure: str
) -> None:
    fake = fake_yahoo()
    if failure == "no_market_cap":  # SYNTHETIC: Yahoo omits marketCap in both answers
        summary, quote = info_bodies(SYM, market_cap=None, price=PRICE, shares_outstanding=None)
        fake.quote_summary(SYM, Reply.json(summary))
        fake.v7_quote(SYM, Reply.json(quote))
    elif failure == "v7_unknown_symbol":  # HTTP 200, empty result: no price, no cap
        summary, _ = info_bodies(SYM, market_cap=None, price=None)
        fake.quote_summary(SYM, Reply.json(summary))
        fake.state.v7.pop(SYM)
    else:
        fake.quote_summary(SYM, FAILURES[failure])
    live = make_live(fake, tmp_path, shares_mode=mode, unlisted_shares=CLASS_A)
    result = live.poll([SYM], NOW)
    assert result.failures == [] and result.stale == [] and result.blocked_pairs == {}
    (obs,) = result.observations
    assert obs.price == Decimal("42.45")
    assert obs.shares == SharesCount(TOTAL, SOURCE, AS_OF)  # the configured count
    assert {r.pair for r in obs.fx} == {"HKD/CNY", "HKD/USD"}
    assert live.backoff_until is None  # the quotes are not held back by it
    (warning,) = warnings_of(live)
    assert warning.startswith("daily share cross-check skipped")
    assert live.counters["shares_check_failed"] == 1
    assert live.counters["shares_mismatch"] == 0
    # not retried in a loop: the next polls of the day do not ask again
    asked = fake.count(QUOTE_SUMMARY)
    for minute in (1, 2):
        assert live.poll([SYM], NOW + timedelta(minutes=minute)).observations
    assert fake.count(QUOTE_SUMMARY) == asked


def test_the_cross_check_is_skipped_while_yahoo_is_down(tmp_path: Path) -> None:
    fake = fake_yahoo()
    live = make_live(fake, tmp_path)
    fake.set_down()
    result = live.poll([SYM], NOW)
    assert [f.kind for f in result.failures] == ["network"]
    assert fake.count(QUOTE_SUMMARY) == 0
    fake.set_down(False)
    live.backoff_until = None
    assert shares_of(live, NOW + timedelta(minutes=1)).total == TOTAL
    assert fake.count(QUOTE_SUMMARY) == 1  # checked once Yahoo is back, the same day


def test_a_failed_check_then_a_good_one_tomorrow_switches_to_yahoo(tmp_path: Path) -> None:
    fake = fake_yahoo()
    summary, quote = info_bodies(SYM, market_cap=1_100_000_000_000, price=44.0)  # SYNTHETIC
    # yfinance retries an HTTP error once (other cookie strategy): today fails twice
    fake.quote_summary(SYM, Reply(500, b"{}"), Reply(500, b"{}"), Reply.json(summary))
    live = make_live(fake, tmp_path, shares_mode="yahoo_implied")
    assert shares_of(live).total == TOTAL  # today: the configured count
    tomorrow = NOW + timedelta(days=1)
    quote_at(fake, tomorrow)
    fake.v7_quote(SYM, Reply.json(quote))
    assert shares_of(live, tomorrow).total == 25_000_000_000  # SYNTHETIC cap / price


# -- the age of the configured count -----------------------------------------------------


def test_a_configured_count_older_than_120_days_is_flagged(tmp_path: Path) -> None:
    fake = fake_yahoo()
    live = make_live(fake, tmp_path, check_shares=False)
    shares_of(live)
    assert warnings_of(live) == []  # 16 days old
    later = datetime(2026, 6, 29, 3, 0, tzinfo=UTC)  # 121 days after 2026-02-28
    quote_at(fake, later)
    shares_of(live, later)
    (warning,) = warnings_of(live)
    assert "as of 2026-02-28 is 121 days old (over 120)" in warning
