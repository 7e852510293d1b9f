"""``LiveSource`` end to end offline: fake Yahoo session + real local HTTP server (ECB, ranking).

Prices are SYNTHETIC (made up for each test); the ECB file and the ranking export are real.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the shared fake
from yahoo_fake import CHART, FakeYahooSession, Reply, chart_body, isolate_yfinance

from monitor import bootstrap
from monitor.service import Engine
from monitor.settings import Settings
from monitor.sources.live import LiveSource
from monitor.store import Store

ROOT = Path(__file__).resolve().parents[2]
ECB_XML = (ROOT / "tests" / "fixtures" / "ecb" / "ecb_eurofxref-daily_2025-05-09.xml").read_bytes()
EXPORT = (ROOT / "tests" / "fixtures" / "data" / "companiesmarketcap_2025-04-30.csv").read_bytes()
NOW = datetime(2025, 5, 12, 3, 0, tzinfo=UTC)  # Monday 11:00 HKT, in session
SESSION = (int(datetime(2025, 5, 12, 1, 30, tzinfo=UTC).timestamp()),
           int(datetime(2025, 5, 12, 8, 0, tzinfo=UTC).timestamp()))  # fmt: skip
ECB_CNY = 8.1470 / 8.7519  # CNY per HKD from the recorded ECB file
ECB_USD = 1.1252 / 8.7519
SHARES = 26_050_601_078


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


def hk_chart(price: float | None, at: datetime, high: float | None = None) -> Reply:
    return Reply.json(
        chart_body("1810.HK", price=price, day_high=high, time=ts(at), regular=SESSION)
    )


def fx_chart(pair: str, rate: float, at: datetime = NOW) -> Reply:
    return Reply.json(
        chart_body(pair, price=rate, time=ts(at), currency=pair[3:6], tz="Europe/London",
                   exchange="CCY", instrument="CURRENCY")
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path) -> None:
    isolate_yfinance(tmp_path / "yf")


@pytest.fixture
def servers(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request("/ecb/eurofxref-daily.xml").respond_with_data(ECB_XML)
    httpserver.expect_request("/cmc/robots.txt").respond_with_data("User-agent: *\nAllow: /\n")
    httpserver.expect_request("/cmc/", query_string="download=csv").respond_with_data(EXPORT)
    return httpserver


def make_settings(server: HTTPServer, **fx: Any) -> Settings:
    return Settings(
        symbols=[{"symbol": "1810.HK", "name": "Xiaomi", "shares": SHARES,
                  "shares_source": "HKEX monthly return Feb 2026", "ranking_symbol": "XIACF"}],
        rules=[
            {"id": "hkd-1t", "symbol": "1810.HK", "threshold": 10**12, "currency": "HKD"},
            {"id": "cny-1t", "symbol": "1810.HK", "threshold": 10**12, "currency": "CNY"},
            {"id": "top100", "symbol": "1810.HK", "top_n": 100},
        ],
        fx={"ecb_base_url": server.url_for("/ecb"), **fx},
        ranking={"base_url": server.url_for("/cmc/").rstrip("/")},
        source={"quotes": ["yahoo"]},  # Yahoo alone, as before the real-time sources
    )  # fmt: skip


def make_live(server: HTTPServer, fake: FakeYahooSession, tmp_path: Path, **fx: Any) -> LiveSource:
    return bootstrap.live_source(
        make_settings(server, **fx), session=requests.Session(), yahoo_session=fake,
        state_dir=tmp_path, check_shares=False,
    )  # fmt: skip


def healthy_fake(price: float = 42.45) -> FakeYahooSession:
    fake = FakeYahooSession()
    fake.chart("1810.HK", hk_chart(price, NOW - timedelta(minutes=16), high=price + 0.5))
    fake.chart("HKDCNY=X", fx_chart("HKDCNY=X", ECB_CNY * 1.001))
    fake.chart("HKDUSD=X", fx_chart("HKDUSD=X", ECB_USD * 0.999))
    return fake


def test_a_poll_yields_an_observation_ready_for_the_engine(
    servers: HTTPServer, tmp_path: Path
) -> None:
    fake = healthy_fake()
    live = make_live(servers, fake, tmp_path)
    result = live.poll(["1810.HK"], NOW)
    assert result.failures == [] and result.blocked_pairs == {}
    (obs,) = result.observations
    assert obs.price == Decimal("42.45") and obs.delayed
    assert obs.shares is not None and obs.shares.total == SHARES
    assert {r.pair for r in obs.fx} == {"HKD/CNY", "HKD/USD"}
    assert all("checked against ecb" in r.source for r in obs.fx)
    assert obs.ranking is not None and obs.ranking.cutoff(100) == Decimal("148140474368")
    store = Store.open(tmp_path / "state.db")
    try:
        batch = Engine(live.settings, store).process(result.observations, NOW.timestamp())
    finally:
        store.close()
    assert {e.rule_id for e in batch.events} == {"hkd-1t", "cny-1t", "top100"}
    assert not batch.skipped


def test_requests_per_cycle_one_chart_per_symbol_and_pair(
    servers: HTTPServer, tmp_path: Path
) -> None:
    fake = healthy_fake()
    live = make_live(servers, fake, tmp_path)
    live.poll(["1810.HK"], NOW)
    fake.reset_counts()
    served_before = len(servers.log)
    live.poll(["1810.HK"], NOW + timedelta(minutes=1))
    assert fake.count() == 3  # 1810.HK, HKDCNY=X, HKDUSD=X
    assert fake.count(CHART) == 3
    assert len(servers.log) == served_before  # ECB hourly, ranking 6-hourly: cached


def test_price_spike_is_rejected_until_the_next_poll_confirms_it(
    servers: HTTPServer, tmp_path: Path
) -> None:
    fake = healthy_fake()
    fake.chart(
        "1810.HK",
        hk_chart(42.45, NOW - timedelta(minutes=16)),
        hk_chart(60.00, NOW - timedelta(minutes=15)),  # +41 %: rejected
        hk_chart(42.50, NOW - timedelta(minutes=14)),  # back to normal: accepted
        hk_chart(60.00, NOW - timedelta(minutes=13)),  # rejected again ...
        hk_chart(60.10, NOW - timedelta(minutes=12)),  # ... confirmed by the next poll
    )
    live = make_live(servers, fake, tmp_path)
    kinds = []
    for minute in range(5):
        result = live.poll(["1810.HK"], NOW + timedelta(minutes=minute))
        kinds.append([f.kind for f in result.failures if f.source == "yahoo"])
        if minute in (0, 2, 4):
            assert result.observations, minute
        else:
            assert not result.observations, minute
    assert kinds == [[], ["spike"], [], ["spike"], []]
    assert live.counters["yahoo_spike"] == 2


def test_stale_quote_in_session_is_not_evaluated(servers: HTTPServer, tmp_path: Path) -> None:
    fake = healthy_fake()
    fake.chart("1810.HK", hk_chart(42.45, NOW - timedelta(minutes=45)))
    result = make_live(servers, fake, tmp_path).poll(["1810.HK"], NOW)
    assert result.stale == ["1810.HK"]
    assert not result.observations


def test_delayed_quote_within_tolerance_and_after_the_close_is_fresh(
    servers: HTTPServer, tmp_path: Path
) -> None:
    fake = healthy_fake()
    fake.chart("1810.HK", hk_chart(42.45, NOW - timedelta(minutes=16)))
    live = make_live(servers, fake, tmp_path)
    assert live.poll(["1810.HK"], NOW).stale == []
    fake.chart("1810.HK", hk_chart(42.45, datetime(2025, 5, 12, 8, 8, tzinfo=UTC)))
    assert live.poll(["1810.HK"], datetime(2025, 5, 12, 14, 0, tzinfo=UTC)).stale == []


def test_rate_limit_backs_off_without_requests(servers: HTTPServer, tmp_path: Path) -> None:
    fake = healthy_fake()
    # yfinance retries once itself (with the other cookie strategy) before raising
    fake.chart("1810.HK", Reply.rate_limited(), Reply.rate_limited(), hk_chart(42.45, NOW))
    live = make_live(servers, fake, tmp_path)
    first = live.poll(["1810.HK"], NOW)
    assert [f.kind for f in first.failures] == ["rate_limited"]
    assert live.backoff_until == NOW + timedelta(minutes=1)
    fake.reset_counts()
    during = live.poll(["1810.HK"], NOW + timedelta(seconds=30))
    assert fake.count() == 0
    assert [f.kind for f in during.failures] == ["rate_limited"]
    after = live.poll(["1810.HK"], NOW + timedelta(minutes=1))
    assert after.observations


def test_fx_disagreement_of_five_percent_uses_the_sane_rate_and_says_so(
    servers: HTTPServer, tmp_path: Path
) -> None:
    fake = healthy_fake()
    live = make_live(servers, fake, tmp_path)
    live.poll(["1810.HK"], NOW)  # accepted: yahoo ~ ecb
    fake.chart("HKDCNY=X", fx_chart("HKDCNY=X", ECB_CNY * 1.05))
    result = live.poll(["1810.HK"], NOW + timedelta(minutes=1))
    (obs,) = result.observations
    cny = next(r for r in obs.fx if r.pair == "HKD/CNY")
    assert abs(float(cny.rate) - ECB_CNY) < 1e-9
    assert cny.source.startswith("ecb (yahoo disagreed by 5.00 %")
    assert any("disagree" in w for w in live.warnings)
    assert live.counters["fx_disagreed"] == 1


def test_fx_garbage_from_yahoo_falls_back_to_the_ecb(servers: HTTPServer, tmp_path: Path) -> None:
    fake = healthy_fake()
    fake.chart("HKDCNY=X", fx_chart("HKDCNY=X", -1.0))
    result = make_live(servers, fake, tmp_path).poll(["1810.HK"], NOW)
    cny = next(r for r in result.observations[0].fx if r.pair == "HKD/CNY")
    assert cny.source.startswith("ecb (primary failed: yahoo: bad_data")


def test_both_fx_sources_down_past_max_age_blocks_currency_rules(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/ecb/eurofxref-daily.xml").respond_with_data("down", status=503)
    fake = FakeYahooSession()
    fake.chart("1810.HK", hk_chart(42.45, NOW - timedelta(minutes=16)))
    fake.chart("HKDCNY=X", Reply.refused())
    fake.chart("HKDUSD=X", Reply.refused())
    live = make_live(httpserver, fake, tmp_path)
    result = live.poll(["1810.HK"], NOW)
    assert set(result.blocked_pairs) == {"HKD/CNY", "HKD/USD"}
    assert "no fresh FX rate" in result.blocked_pairs["HKD/CNY"]
    store = Store.open(tmp_path / "state.db")
    try:
        batch = Engine(live.settings, store).process(result.observations, NOW.timestamp())
    finally:
        store.close()
    assert {e.rule_id for e in batch.events} == {"hkd-1t"}  # HKD needs no FX
    assert {rule for rule, _ in batch.skipped} == {"cny-1t", "top100"}


def test_offhours_refresh_keeps_fx_fresh_and_reports_source_disagreement(
    servers: HTTPServer, tmp_path: Path
) -> None:
    fake = FakeYahooSession()
    # SYNTHETIC Yahoo rates 5 % above the recorded ECB cross rate
    fake.chart("HKDCNY=X", fx_chart("HKDCNY=X", ECB_CNY * 1.05))
    fake.chart("HKDUSD=X", fx_chart("HKDUSD=X", ECB_USD))
    live = make_live(servers, fake, tmp_path)
    result = live.refresh_offhours(NOW)
    assert result.blocked_pairs == {}
    assert set(live.last_fx) == {"HKD/CNY", "HKD/USD"}
    assert round(float(live.fx_disagreement["HKD/CNY"]), 3) == 0.05
    assert float(live.fx_disagreement["HKD/USD"]) < 0.001
    assert live.fx_decisions["HKD/CNY"].kind == "disagreed"


def test_ranking_refresh_fetches_the_export_once(servers: HTTPServer, tmp_path: Path) -> None:
    live = make_live(servers, healthy_fake(), tmp_path)
    result = live.refresh_ranking(NOW)
    assert result.failures == []
    ranking = live.poll(["1810.HK"], NOW + timedelta(minutes=1)).observations[0].ranking
    assert ranking is not None and ranking.cutoff(100) == Decimal("148140474368")
    downloads = [e for e, _ in servers.log if e.path == "/cmc/"]
    assert len(downloads) == 1


UNIVERSE = """
[[company]]
name = "Big US"
yahoo = "BIGUS"
[[company]]
name = "Euro Co"
yahoo = "EURO.DE"
[[company]]
name = "London Co"
yahoo = "LON.L"
[[company]]
name = "Xiaomi"
yahoo = "XIACF"
"""


def test_without_the_export_the_universe_is_valued_in_usd_through_yahoo_and_the_ecb(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/ecb/eurofxref-daily.xml").respond_with_data(ECB_XML)
    httpserver.expect_request("/cmc/robots.txt").respond_with_data("User-agent: *\nAllow: /\n")
    httpserver.expect_request("/cmc/").respond_with_data("down", status=503)
    universe = tmp_path / "universe.toml"
    universe.write_text(UNIVERSE)
    companies = FakeYahooSession()
    # SYNTHETIC market caps; GBp is a minor unit whose marketCap Yahoo gives in GBP
    companies.info("BIGUS", market_cap=3e12, price=100.0, currency="USD")
    companies.info("EURO.DE", market_cap=2e11, price=100.0, currency="EUR")
    companies.info("LON.L", market_cap=1e11, price=100.0, currency="GBp")
    companies.info("XIACF", market_cap=1.5e11, price=6.0, currency="USD")
    settings = make_settings(httpserver)
    settings = settings.model_copy(
        update={"ranking": settings.ranking.model_copy(update={"universe": universe})}
    )
    live = bootstrap.live_source(
        settings, session=requests.Session(), yahoo_session=healthy_fake(),
        universe_session=companies, state_dir=tmp_path, check_shares=False,
    )  # fmt: skip
    result = live.refresh_ranking(NOW)
    assert [f.source for f in result.failures] == ["ranking"]  # the export, not the universe
    assert live.ranking.companies is not None
    listed, source, _ = live.ranking.companies
    assert source == "yahoo universe"
    caps = {c.symbol: c.cap_usd for c in listed}
    # ECB 2025-05-09: EUR/USD 1.1252, EUR/GBP 0.8477
    assert caps["BIGUS"] == Decimal("3e12")
    assert round(caps["EURO.DE"] / Decimal("2e11"), 4) == Decimal("1.1252")
    assert round(caps["LON.L"] / Decimal("1e11"), 4) == round(
        Decimal("1.1252") / Decimal("0.8477"), 4
    )
    ranking = live.poll(["1810.HK"], NOW).observations[0].ranking
    assert ranking is not None and ranking.source == "yahoo universe"
    assert Decimal("1.5e11") not in ranking.others_usd  # Xiaomi (XIACF) is not its own rival


def test_the_spike_reference_is_seeded_from_the_stored_price(
    servers: HTTPServer, tmp_path: Path
) -> None:
    # after a restart the first quote is checked against the db's last price (issue 11 §3)
    fake = healthy_fake()
    fake.chart(
        "1810.HK",
        hk_chart(60.00, NOW - timedelta(minutes=16)),  # +41 % from the stored 42.45: held
        hk_chart(42.50, NOW - timedelta(minutes=15)),  # back to normal: accepted
    )
    plain = make_live(servers, fake, tmp_path)
    live = LiveSource(
        plain.settings,
        chart=plain.chart,
        ecb=plain.ecb,
        ranking=plain.ranking.cmc,
        universe_chart=plain.ranking.universe_chart,
        check_shares=False,
        last_prices={"1810.HK": Decimal("42.45")},
    )
    first = live.poll(["1810.HK"], NOW)
    assert not first.observations
    assert [f.kind for f in first.failures if f.source == "yahoo"] == ["spike"]
    second = live.poll(["1810.HK"], NOW + timedelta(minutes=1))
    assert [o.price for o in second.observations] == [Decimal("42.5")]
