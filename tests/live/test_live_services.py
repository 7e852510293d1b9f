"""Against the real services: run with ``MCAP_LIVE=1 python -m pytest -m live tests/live``."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from monitor.sources.ecb import EcbSource
from monitor.sources.ranking import CompaniesMarketCap
from monitor.sources.yahoo import YahooChart, YahooSession, configure_yfinance

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(os.environ.get("MCAP_LIVE") != "1", reason="set MCAP_LIVE=1"),
    pytest.mark.timeout(60),
]


def test_yahoo_quotes_xiaomi_in_hkd(tmp_path: Path) -> None:
    configure_yfinance(tmp_path)
    chart = YahooChart(YahooSession(timeout=10), timezones={"1810.HK": "Asia/Hong_Kong"})
    quote = chart.quote("1810.HK")
    assert quote.currency == "HKD" and quote.price > 0


def test_yahoo_fx_pair(tmp_path: Path) -> None:
    configure_yfinance(tmp_path)
    quote = YahooChart(YahooSession(timeout=10)).quote("HKDCNY=X")
    assert quote.currency == "CNY" and 0.5 < quote.price < 1.5


def test_ecb_daily_rates() -> None:
    ecb = EcbSource(requests.Session(), "https://www.ecb.europa.eu/stats/eurofxref")
    rate = ecb.rate("HKD", "CNY", datetime.now(UTC))
    assert 0.5 < rate.rate < 1.5


def test_companiesmarketcap_export() -> None:
    cmc = CompaniesMarketCap(requests.Session(), "https://companiesmarketcap.com")
    ranking = cmc.ranking(["XIACF"], datetime.now(UTC))
    assert ranking.cutoff(100) is not None
