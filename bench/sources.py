"""Requests and CPU per poll cycle of ``LiveSource`` for 1, 10 and 100 symbols, offline.

Yahoo is the fake session of the tests (SYNTHETIC charts); the ECB file and the ranking export
are the recorded ones, served by an in-process ``requests`` stand-in. Prints, per size: chart
requests per cycle (steady state), ECB/ranking requests, CPU ms per cycle, the part of it spent
inside yfinance, and our own CPU per symbol beyond yfinance (target < 3 ms).

    python bench/sources.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from yahoo_fake import CHART, FakeYahooSession, Reply, chart_body, isolate_yfinance  # noqa: E402

from monitor import bootstrap  # noqa: E402
from monitor.settings import Settings  # noqa: E402
from monitor.sources import yahoo  # noqa: E402

ECB_XML = (ROOT / "tests" / "fixtures" / "ecb" / "ecb_eurofxref-daily_2025-05-09.xml").read_bytes()
EXPORT = (ROOT / ".." / "shared" / "data" / "companiesmarketcap_2025-04-30.csv").read_bytes()
NOW = datetime(2025, 5, 12, 3, 0, tzinfo=UTC)
CYCLES = 5


class LocalHttp(requests.Session):
    """Serves the ECB file, robots.txt and the export; counts requests."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.count += 1
        resp = requests.Response()
        resp.status_code = 200
        text = str(url)
        resp._content = ECB_XML if "eurofxref" in text else (
            b"User-agent: *\nAllow: /\n" if "robots" in text else EXPORT
        )  # fmt: skip
        return resp


class TimedChart(yahoo.YahooChart):
    """Accumulates the CPU time spent in yfinance (``quote``)."""

    cpu = 0.0

    def quote(self, symbol: str) -> yahoo.ChartQuote:
        start = time.process_time()
        try:
            return super().quote(symbol)
        finally:
            TimedChart.cpu += time.process_time() - start


def run(n: int, tmp: Path) -> tuple[int, int, float, float]:
    isolate_yfinance(tmp / f"yf{n}")
    symbols = [f"{1000 + i:04d}.HK" for i in range(n)]
    fake = FakeYahooSession()
    at = int((NOW - timedelta(minutes=16)).timestamp())
    for i, sym in enumerate(symbols):
        fake.chart(sym, Reply.json(chart_body(sym, price=40.0 + i / 100, time=at)))
    for pair, rate in (("HKDCNY=X", 0.9309), ("HKDUSD=X", 0.12857)):
        body = chart_body(pair, price=rate, time=at, currency=pair[3:6], tz="Europe/London")
        fake.chart(pair, Reply.json(body))
    settings = Settings(
        symbols=[{"symbol": s, "shares": 10**9} for s in symbols],
        fx={"ecb_base_url": "http://ecb.invalid"},
        ranking={"base_url": "http://cmc.invalid"},
    )
    http = LocalHttp()
    live = bootstrap.live_source(
        settings, session=http, yahoo_session=fake, state_dir=tmp / f"st{n}", check_shares=False
    )
    live.chart = TimedChart(fake, timezones={s: "Asia/Hong_Kong" for s in symbols})
    live.poll(symbols, NOW)  # warm-up: cookie, crumb, ECB, ranking
    fake.reset_counts()
    http.count = 0
    TimedChart.cpu = 0.0
    start = time.process_time()
    for c in range(CYCLES):
        result = live.poll(symbols, NOW + timedelta(seconds=60 * (c + 1)))
        assert len(result.observations) == n, result.failures[:3]
    total = (time.process_time() - start) / CYCLES
    return fake.count(CHART) // CYCLES, http.count, total, TimedChart.cpu / CYCLES


def main() -> None:
    print(f"{'symbols':>7} {'chart req/cycle':>15} {'ecb+rank req':>12} {'cpu ms/cycle':>12} "
          f"{'yfinance ms':>11} {'ours ms/symbol':>14}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 10, 100):
            charts, other, total, yf_cpu = run(n, Path(tmp))
            ours = (total - yf_cpu) / (n + 2) * 1000  # n symbols + 2 FX pairs
            print(f"{n:>7} {charts:>15} {other:>12} {total * 1000:>12.1f} {yf_cpu * 1000:>11.1f} "
                  f"{ours:>14.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
