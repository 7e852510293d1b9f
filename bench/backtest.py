"""Benchmark ``backtest``: 5 years of real daily bars and a year of SYNTHETIC 5-minute bars.

1. Real data (../shared/data, see its SOURCES.md): 1810.HK daily bars 2020-2025 from the Yahoo
   CSV and the ECB history CSV, the default config's three rules, with a top-100 cutoff of
   US$150.8 bn (companiesmarketcap, 2025-04-30, #100) so the rank rule is evaluated too.
   Target < 2 s.
2. SYNTHETIC: a seeded random walk around HK$40 (NOT market data), 5-minute bars over
   HKEX hours (66 a day) on weekdays until 20,000 rows, real ECB rates. Target < 5 s.

Timings exclude downloads (there are none: files are read locally) and interpreter start-up;
they include reading and parsing the input files. Usage: python bench/backtest.py
"""

from __future__ import annotations

import random
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.history import backtest  # noqa: E402 - after the path set-up above
from monitor.history.tapebuild import Bar, EcbHistory, read_yahoo_csv  # noqa: E402
from monitor.settings import RankingConfig, Settings, load_settings  # noqa: E402

SHARED = ROOT / ".." / "shared" / "data"
PRICES = SHARED / "1810.HK_daily_2020-2025_yahoo.csv"
ECB = SHARED / "ecb_eurofxref-hist_to_2025-05-09.csv"
HK = ZoneInfo("Asia/Hong_Kong")


def settings() -> Settings:
    base, _ = load_settings(ROOT / "config" / "mcap-monitor.toml")
    ranking = RankingConfig(
        cutoff_usd=Decimal("150.8e9"), cutoff_top_n=100, cutoff_as_of=date(2025, 4, 30)
    )
    return base.model_copy(update={"ranking": ranking})


def run(
    cfg: Settings, bars: list[Bar], ecb: EcbHistory, start: date, end: date, interval: str
) -> backtest.BacktestResult:
    sym = cfg.symbol("1810.HK")
    holes: list[date] = []
    obs = backtest.observations(
        cfg, sym, bars, ecb, start=start, end=end, interval=interval, placeholders=holes
    )
    result = backtest.run(
        cfg, obs, symbol=sym.symbol, start=start, end=end, interval=interval,
        sources={}, placeholders=holes, now=0.0,
    )  # fmt: skip
    result.to_json()  # the summary is part of the work
    return result


def synthetic_5m(rows: int) -> list[Bar]:
    rng = random.Random(20250207)
    bars: list[Bar] = []
    price = 40.0
    day = date(2024, 3, 1)
    slots = [datetime(2000, 1, 1, 9, 30) + timedelta(minutes=5 * i) for i in range(30)]
    slots += [datetime(2000, 1, 1, 13, 0) + timedelta(minutes=5 * i) for i in range(36)]
    while len(bars) < rows:
        if day.weekday() < 5:
            for slot in slots:
                start = datetime.combine(day, slot.time(), HK)
                o = price
                price = max(1.0, price * (1 + rng.gauss(0, 0.002)))
                hi, lo = max(o, price) * 1.001, min(o, price) * 0.999
                q = Decimal("0.001")
                bars.append(
                    Bar(start, *(Decimal(repr(v)).quantize(q) for v in (o, hi, lo, price)), 1000)
                )
                if len(bars) == rows:
                    break
        day += timedelta(days=1)
    return bars


def main() -> int:
    if not (PRICES.is_file() and ECB.is_file()):
        print(f"shared data not found beside the repository: {SHARED}", file=sys.stderr)
        return 2
    cfg = settings()
    ok = True

    t0 = time.perf_counter()
    ecb = EcbHistory.from_csv(ECB)
    bars = list(read_yahoo_csv(PRICES))
    t1 = time.perf_counter()
    result = run(cfg, bars, ecb, date(2020, 1, 1), date(2025, 12, 31), "1d")
    t2 = time.perf_counter()
    n = sum(len(s.points) for s in result.series) // 3
    total = t2 - t0
    ok &= total < 2.0
    print(
        f"daily, real 1810.HK 2020-2025: {n} bars x 3 rules, {len(result.events)} events: "
        f"{total:.2f} s (parse {t1 - t0:.2f} s + backtest {t2 - t1:.2f} s; target < 2 s)"
    )

    synth = synthetic_5m(20_000)
    first, last = synth[0].start.date(), synth[-1].start.date()
    t3 = time.perf_counter()
    result = run(cfg, synth, ecb, first, last, "5m")
    t4 = time.perf_counter()
    n = sum(len(s.points) for s in result.series) // 3
    ok &= t4 - t3 < 5.0
    print(
        f"5-minute, SYNTHETIC random walk {first}..{last}: {n} bars x 3 rules, "
        f"{len(result.events)} events: {t4 - t3:.2f} s (target < 5 s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
