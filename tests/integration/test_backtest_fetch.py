"""Backtest downloads through injected sessions: yfinance history via the fake Yahoo session
(tests/yahoo_fake.py) and the ECB history zip from a real local HTTP server.

The bars and rates served are the real ones from ``tests/fixtures/data`` (see its README.md),
re-packed into Yahoo's chart JSON and the ECB's zip; nothing is invented except the
synthetic chart metadata ``chart_body`` documents.
"""

from __future__ import annotations

import csv
import io
import sys
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from pytest_httpserver import HTTPServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the shared fake
from yahoo_fake import (
    FakeYahooSession,
    Reply,
    chart_body,
    isolate_yfinance,
    not_found_body,
)

from monitor.errors import SourceError
from monitor.history import backtest
from monitor.history.tapebuild import EcbHistory, read_yahoo_csv
from monitor.settings import load_settings
from monitor.sources.yahoo import reset_yfinance_state

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "fixtures" / "data"
PRICES = DATA / "1810.HK_daily_2020-2025_yahoo.csv"
ECB = DATA / "ecb_eurofxref-hist_to_2025-05-09.csv"
CONFIG = ROOT / "config" / "mcap-monitor.toml"
HK = ZoneInfo("Asia/Hong_Kong")
START, END = date(2025, 1, 20), date(2025, 3, 10)


@pytest.fixture(autouse=True)
def _fresh_yfinance(tmp_path: Path) -> Iterator[None]:
    isolate_yfinance(tmp_path / "yf")
    yield
    reset_yfinance_state()


def real_rows() -> list[dict[str, str]]:
    with PRICES.open(newline="") as handle:
        return [
            r
            for r in csv.DictReader(handle)
            if START <= datetime.fromisoformat(r["Date"]).date() <= END
        ]


def real_chart() -> dict[str, Any]:
    """The real 1810.HK daily bars of the window in Yahoo's chart layout (09:30 HKT stamps)."""
    rows = real_rows()
    stamps = [
        int(datetime.combine(datetime.fromisoformat(r["Date"]).date(), time(9, 30), HK).timestamp())
        for r in rows
    ]
    body = chart_body(
        "1810.HK",
        price=float(rows[-1]["Close"]),
        time=stamps[-1],
        bars=zip(stamps, [0.0] * len(stamps), strict=True),
    )
    result = body["chart"]["result"][0]
    result["meta"]["range"] = ""
    quote = result["indicators"]["quote"][0]
    for key in ("open", "high", "low", "close"):
        quote[key] = [float(r[key.title()]) for r in rows]
    quote["volume"] = [int(float(r["Volume"])) for r in rows]
    result["indicators"]["adjclose"] = [{"adjclose": quote["close"]}]
    return body


def test_yfinance_history_through_the_fake_session_gives_the_csv_bars() -> None:
    fake = FakeYahooSession().chart("1810.HK", Reply.json(real_chart()))
    bars = backtest.fetch_yahoo_bars("1810.HK", START, END, "1d", fake)
    expected = [b for b in read_yahoo_csv(PRICES) if START <= b.start.date() <= END]
    assert [(b.start.date(), b.close, b.high, b.volume) for b in bars] == [
        (b.start.date(), b.close, b.high, b.volume) for b in expected
    ]
    assert fake.count("/v8/finance/chart/1810.HK") >= 1
    assert not fake.unrouted or all(s.path == "/" for s in fake.unrouted)


def test_downloaded_history_backtests_to_the_same_events_as_the_csv() -> None:
    settings, _ = load_settings(CONFIG)
    sym = settings.symbol("1810.HK")
    ecb = EcbHistory.from_csv(ECB)
    fake = FakeYahooSession().chart("1810.HK", Reply.json(real_chart()))
    fetched = backtest.fetch_yahoo_bars("1810.HK", START, END, "1d", fake)

    def run(bars: Any) -> list[tuple[str, str, str]]:
        holes: list[date] = []
        obs = backtest.observations(
            settings, sym, bars, ecb, start=START, end=END, placeholders=holes
        )
        result = backtest.run(
            settings, obs, symbol="1810.HK", start=START, end=END, interval="1d",
            sources={}, placeholders=holes, now=0.0,
        )  # fmt: skip
        assert holes == [date(2025, 1, 28)]
        return [(e.id, e.kind, str(e.value)) for e in result.events]

    assert run(fetched) == run(read_yahoo_csv(PRICES))


def test_unknown_symbol_is_a_not_found_source_error() -> None:
    fake = FakeYahooSession().chart("1810.HX", Reply(404, not_found_body()))
    with pytest.raises(SourceError) as info:
        backtest.fetch_yahoo_bars("1810.HX", START, END, "1d", fake)
    assert info.value.kind == "not_found"
    assert "--prices FILE.csv" in info.value.hint


def test_network_down_says_so_and_offers_the_offline_inputs() -> None:
    fake = FakeYahooSession()
    fake.set_down()
    with pytest.raises(SourceError) as info:
        backtest.fetch_yahoo_bars("1810.HK", START, END, "1d", fake)
    assert info.value.kind == "network"
    assert "--prices FILE.csv" in info.value.hint


def ecb_zip() -> bytes:
    """The real ECB history, header plus 2025-01-01..2025-03-31, zipped as the ECB serves it."""
    lines = ECB.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [lines[0]] + [ln for ln in lines[1:] if "2025-01-01" <= ln[:10] <= "2025-03-31"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("eurofxref-hist.csv", "".join(kept))
    return buffer.getvalue()


def test_ecb_history_zip_over_http_matches_the_csv(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/stats/eurofxref/eurofxref-hist.zip").respond_with_data(
        ecb_zip(), content_type="application/zip"
    )
    with requests.Session() as http:
        fetched = backtest.fetch_ecb_history(http, httpserver.url_for("/stats/eurofxref/"))
    local = EcbHistory.from_csv(ECB)
    for day in (date(2025, 2, 7), date(2025, 2, 8), date(2025, 3, 10)):
        assert fetched.cross(day, "HKD", "CNY") == local.cross(day, "HKD", "CNY")
    # 1 HKD = 0.935740 CNY on 2025-02-07 (SOURCES.md, derived)
    found = fetched.cross(date(2025, 2, 7), "HKD", "CNY")
    assert found is not None and round(found[1], 6) == Decimal("0.935740")


def test_ecb_server_error_is_a_source_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/eurofxref-hist.zip").respond_with_data("busy", status=503)
    with requests.Session() as http, pytest.raises(SourceError) as info:
        backtest.fetch_ecb_history(http, httpserver.url_for("/"))
    assert "HTTP 503" in info.value.what
    assert "--fx-history" in info.value.hint


def test_ecb_garbage_is_refused(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/eurofxref-hist.zip").respond_with_data(b"<html>not a zip</html>")
    with requests.Session() as http, pytest.raises(Exception, match="not a zip archive"):
        backtest.fetch_ecb_history(http, httpserver.url_for("/"))
