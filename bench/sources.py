"""Requests and CPU per poll: the real-time HK adapters (Tencent, Sina) beside yfinance, and
``LiveSource`` for 1, 10 and 100 symbols, offline.

First table, paired in one run: 500 HK symbols through ``TencentQuotes`` and ``SinaQuotes``
against a local HTTP server (GBK answers built from the recorded payloads of
tests/fixtures/cn_quotes, one line per code with only the code changed), and the same 500
symbols through the yfinance chart path (``YahooChart.quote``, one chart per symbol, fake
session). Per source: requests per poll, CPU ms per poll of the calling thread (HTTP client +
decoding + parsing; the server runs in other threads), CPU ms of the pure parser alone on the
same answers, the median of RUNS polls each, and the ratio yfinance / adapter.

Yahoo is the fake session of the tests (SYNTHETIC charts); the ECB file and the ranking export
are the recorded ones, served by an in-process ``requests`` stand-in. Prints, per size: chart
requests per cycle (steady state), ECB/ranking requests, CPU ms per cycle, the part of it spent
inside yfinance, and our own CPU per symbol beyond yfinance (target < 3 ms).

    python bench/sources.py
"""

from __future__ import annotations

import statistics
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
import fakes  # noqa: E402
from yahoo_fake import CHART, FakeYahooSession, Reply, chart_body, isolate_yfinance  # noqa: E402

from monitor import bootstrap  # noqa: E402
from monitor.core import quote_policy  # noqa: E402
from monitor.settings import Settings  # noqa: E402
from monitor.sources import sina, tencent, yahoo  # noqa: E402

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
        source={"quotes": ["yahoo"]},  # the yfinance path alone, as before the real-time sources
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


CN = ROOT / "tests" / "fixtures" / "cn_quotes"
HK_SYMBOLS = 500
RUNS = 5
CN_NOW = datetime(2026, 8, 3, 2, 45, tzinfo=UTC)  # 10:45 HKT, after the served quote times


def cn_lines(n: int) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Per code, the GBK line the fake Tencent / Sina answer with (recorded, code changed)."""
    t_line = (CN / "tencent_r_hk01810_2026-08-03.txt").read_text(encoding="utf-8")
    s_line = (CN / "sina_rt_hk01810_2024-10-15.txt").read_text(encoding="utf-8")
    s_line = s_line.replace("2024/10/15", "2026/08/03")
    t_out, s_out = {}, {}
    for i in range(1, n + 1):
        code = f"{i:05d}"
        t = t_line.replace("v_r_hk01810", f"v_r_hk{code}").replace("~01810~", f"~{code}~", 1)
        t_out[f"r_hk{code}"] = (t + ";\n").encode("gbk")
        s_out[f"rt_hk{code}"] = (s_line.replace("rt_hk01810", f"rt_hk{code}") + ";\n").encode("gbk")
    return t_out, s_out


def vendor(lines: dict[str, bytes], prefix: str) -> Any:
    def answer(got: fakes.Received, index: int) -> fakes.Reply:
        body = b"".join(lines.get(c, b"") for c in got.path.removeprefix(prefix).split(","))
        return fakes.Reply(200, body)

    return answer


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def run_policy(arrived: dict[str, dict[str, Any]]) -> float:
    """Median CPU ms of the quote policy deciding every symbol of one poll."""
    cfg = quote_policy.PolicyConfig(
        order=("tencent", "sina"),
        max_age={"tencent": timedelta(minutes=3), "sina": timedelta(minutes=3)},
    )
    cpu = []
    for _ in range(RUNS):
        start = time.thread_time()
        for quotes in arrived.values():
            quote_policy.decide(quotes, CN_NOW, cfg, "XHKG")
        cpu.append(time.thread_time() - start)
    return median_ms(cpu)


def run_cn(
    adapter: Any, server: fakes.Receiver, symbols: list[str], parse: Any
) -> tuple[int, float, float]:
    """Median requests, adapter CPU and parser CPU per poll of ``symbols``."""
    cpu, parse_cpu, reqs = [], [], []
    adapter.quotes(symbols, CN_NOW)  # warm-up: connection, code paths
    for _ in range(RUNS):
        before = len(server.requests)
        start = time.thread_time()
        got = adapter.quotes(symbols, CN_NOW)
        cpu.append(time.thread_time() - start)
        reqs.append(len(server.requests) - before)
        bad = [r for r in got.values() if not hasattr(r, "price")]
        assert not bad, bad[:2]
        replies = [r.reply for r in server.requests[before:] if r.reply is not None]
        texts = [bytes(r.body).decode("gbk") for r in replies if isinstance(r.body, bytes)]
        start = time.process_time()
        for text in texts:
            parse(text)
        parse_cpu.append(time.process_time() - start)
    return int(statistics.median(reqs)), median_ms(cpu), median_ms(parse_cpu)


def run_yahoo_quotes(symbols: list[str], tmp: Path) -> tuple[int, float]:
    """Median chart requests and CPU per poll of ``symbols`` through the yfinance chart path."""
    isolate_yfinance(tmp / "yf-cn")
    fake = FakeYahooSession()
    at = int((CN_NOW - timedelta(minutes=16)).timestamp())
    for i, sym in enumerate(symbols):
        fake.chart(sym, Reply.json(chart_body(sym, price=27.0 + i / 100, time=at)))
    chart = yahoo.YahooChart(fake, timezones={s: "Asia/Hong_Kong" for s in symbols})
    for sym in symbols:  # warm-up: cookie, crumb
        chart.quote(sym)
    cpu, reqs = [], []
    for _ in range(RUNS):
        fake.reset_counts()
        start = time.thread_time()
        for sym in symbols:
            chart.quote(sym)
        cpu.append(time.thread_time() - start)
        reqs.append(fake.count(CHART))
    return int(statistics.median(reqs)), median_ms(cpu)


def compare(tmp: Path) -> None:
    symbols = [f"{i:04d}.HK" for i in range(1, HK_SYMBOLS + 1)]
    t_lines, s_lines = cn_lines(HK_SYMBOLS)
    rows = []
    arrived: dict[str, dict[str, Any]] = {sym: {} for sym in symbols}
    with requests.Session() as http:
        with fakes.Receiver(vendor(t_lines, "/q="), path="") as server:
            adapter = tencent.TencentQuotes(http, server.url, timeout=10)
            rows.append(("tencent", *run_cn(adapter, server, symbols, tencent.parse_tencent)))
            for sym, q in adapter.quotes(symbols, CN_NOW).items():
                arrived[sym]["tencent"] = q
        with fakes.Receiver(vendor(s_lines, "/list="), path="") as server:
            adapter = sina.SinaQuotes(http, server.url, timeout=10)
            rows.append(("sina", *run_cn(adapter, server, symbols, sina.parse_sina)))
            for sym, q in adapter.quotes(symbols, CN_NOW).items():
                arrived[sym]["sina"] = q
    policy_ms = run_policy(arrived)
    y_reqs, y_cpu = run_yahoo_quotes(symbols, tmp)
    print(f"{HK_SYMBOLS} HK symbols, one poll, median of {RUNS}:")
    print(
        f"{'source':>8} {'req/poll':>8} {'cpu ms/poll':>11} {'parse ms':>8} {'yfinance/this':>13}"
    )
    for name, reqs, cpu, parse_ms in rows:
        print(f"{name:>8} {reqs:>8} {cpu:>11.1f} {parse_ms:>8.1f} {y_cpu / cpu:>12.0f}x")
    print(f"{'yfinance':>8} {y_reqs:>8} {y_cpu:>11.1f} {'-':>8} {1:>12}x")
    parse_total = sum(parse_ms for _, _, _, parse_ms in rows)
    print(
        f"quote policy over {HK_SYMBOLS} symbols x 2 sources: {policy_ms:.1f} ms CPU; "
        f"parsing both + policy: {parse_total + policy_ms:.1f} ms (target < 50 ms)"
    )
    print()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        compare(Path(tmp))
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
