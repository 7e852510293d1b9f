"""ECB reference rates over a real local HTTP server, with the recorded daily file."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from fakes import free_port
from pytest_httpserver import HTTPServer

from monitor.errors import SourceError
from monitor.sources.ecb import EcbSource, parse_daily

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ecb"
DAILY = (FIXTURES / "ecb_eurofxref-daily_2025-05-09.xml").read_bytes()
NOW = datetime(2025, 5, 12, 3, 0, tzinfo=UTC)


def test_cross_rate_cny_per_hkd_from_the_recorded_file() -> None:
    rates = parse_daily(DAILY)
    assert rates.day == date(2025, 5, 9)
    rate = rates.cross("HKD", "CNY")
    assert rate.rate == (Decimal("8.1470") / Decimal("8.7519")).quantize(Decimal("1e-10"))
    assert rate.source == "ecb"
    assert rate.as_of == datetime(2025, 5, 9, 14, 0, tzinfo=UTC)  # 16:00 CEST


def test_older_file_with_discontinued_currencies_parses() -> None:
    rates = parse_daily((FIXTURES / "ecb_eurofxref-daily_2018-06-11.xml").read_bytes())
    assert rates.day == date(2018, 6, 11)
    assert "RUB" in rates.per_eur


def test_fetched_at_most_once_an_hour(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/stats/eurofxref/eurofxref-daily.xml").respond_with_data(
        DAILY, content_type="text/xml"
    )
    ecb = EcbSource(requests.Session(), httpserver.url_for("/stats/eurofxref"), timeout=5)
    ecb.rate("HKD", "CNY", NOW)
    ecb.rate("HKD", "USD", NOW + timedelta(minutes=59))
    assert len(httpserver.log) == 1
    ecb.rate("HKD", "USD", NOW + timedelta(minutes=61))
    assert len(httpserver.log) == 2


def test_garbage_is_bad_data(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/eurofxref-daily.xml").respond_with_data("<html>maintenance")
    ecb = EcbSource(requests.Session(), httpserver.url_for("/"), timeout=5)
    with pytest.raises(SourceError) as info:
        ecb.rate("HKD", "CNY", NOW)
    assert info.value.kind == "bad_data"


@pytest.mark.timeout(20)
def test_closed_port_is_a_network_error() -> None:
    ecb = EcbSource(requests.Session(), f"http://127.0.0.1:{free_port()}", timeout=3)
    with pytest.raises(SourceError) as info:
        ecb.rate("HKD", "CNY", NOW)
    assert info.value.kind == "network"
    assert "could not reach the ECB" in info.value.what
