"""The companiesmarketcap export over a real local HTTP server: robots.txt, UA, 6 h cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer

from monitor.errors import SourceError
from monitor.sources.ranking import CompaniesMarketCap

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "data"  # see its README.md
EXPORT = (DATA / "companiesmarketcap_2025-04-30.csv").read_bytes()
NOW = datetime(2025, 4, 30, 12, 0, tzinfo=UTC)


def serve(httpserver: HTTPServer, robots: str = "User-agent: *\nAllow: /\n") -> None:
    httpserver.expect_request("/robots.txt").respond_with_data(robots)
    httpserver.expect_request("/", query_string="download=csv").respond_with_data(
        EXPORT, content_type="text/csv"
    )


def test_fetches_with_an_honest_user_agent_and_caches_for_six_hours(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    serve(httpserver)
    cache = tmp_path / "cmc.csv"
    cmc = CompaniesMarketCap(requests.Session(), httpserver.url_for("/"), cache_file=cache)
    ranking = cmc.ranking(["XIACF"], NOW)
    assert ranking.cutoff(100) == Decimal("148140474368")
    cmc.ranking(["XIACF"], NOW + timedelta(hours=5, minutes=59))
    csv_requests = [r for r, _ in httpserver.log if r.args.get("download") == "csv"]
    assert len(csv_requests) == 1
    assert csv_requests[0].headers["User-Agent"].startswith("mcap-monitor/")
    # a new process reads the disk cache instead of fetching again
    again = CompaniesMarketCap(requests.Session(), httpserver.url_for("/"), cache_file=cache)
    again.ranking(["XIACF"], NOW + timedelta(hours=1))
    assert len([r for r, _ in httpserver.log if r.args.get("download") == "csv"]) == 1


def test_robots_disallow_is_respected(httpserver: HTTPServer) -> None:
    serve(httpserver, robots="User-agent: *\nDisallow: /\n")
    cmc = CompaniesMarketCap(requests.Session(), httpserver.url_for("/"))
    with pytest.raises(SourceError) as info:
        cmc.ranking(["XIACF"], NOW)
    assert "robots.txt" in info.value.what
    assert not [r for r, _ in httpserver.log if r.args.get("download") == "csv"]
