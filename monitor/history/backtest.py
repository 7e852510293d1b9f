"""Backtests: would the configured rules have fired over a stretch of real history?

Price bars (a Yahoo history CSV, or yfinance through an injected session, see ``prices``) and
ECB reference rates become observations; a fresh in-memory ``Engine`` evaluates them exactly
as the daemon would, and the result is the event timeline plus a per-rule summary (``series``,
the same reader that serves ``report`` and the charts).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import IO
from zoneinfo import ZoneInfo

from monitor.core.events import Event, event_to_dict
from monitor.core.money import FxRate
from monitor.core.valuation import Observation, Ranking, SharesCount
from monitor.errors import InputError
from monitor.history.prices import fetch_ecb_history, fetch_yahoo_bars
from monitor.history.series import Point, RuleSeries, rule_series, summarise
from monitor.history.tapebuild import Bar, EcbHistory, bar_day, daily_rows
from monitor.service import Engine, describe_skips
from monitor.settings import Settings, SymbolConfig
from monitor.store import Store

INTERVALS: dict[str, timedelta] = {
    "1d": timedelta(days=1),
    "1h": timedelta(hours=1),
    "5m": timedelta(minutes=5),
}
# The ECB publishes its reference rates at about 16:00 CET on their date.
ECB_ZONE = ZoneInfo("Europe/Berlin")
ECB_PUBLISHED = time(16, 0)


# -- inputs -> observations ---------------------------------------------------------------
def fx_quotes(settings: Settings, symbol: SymbolConfig) -> tuple[str, ...]:
    """Currencies the symbol's rules need besides its own, in rule order."""
    out: list[str] = []
    for rule in settings.rules:
        if rule.symbol != symbol.symbol:
            continue
        code = "USD" if rule.top_n is not None else str(rule.currency)
        if code != symbol.currency and code not in out:
            out.append(code)
    return tuple(out)


def config_ranking(settings: Settings) -> Ranking | None:
    """The configured top-N cutoff (``[ranking] cutoff_usd``), if one is set."""
    cfg = settings.ranking
    if cfg.cutoff_usd is None:
        return None
    as_of = datetime.combine(cfg.cutoff_as_of, time(0), UTC) if cfg.cutoff_as_of else None
    return Ranking("config", as_of, (), ((cfg.cutoff_top_n, cfg.cutoff_usd),))


def _ecb_rates(
    ecb: EcbHistory | None, day: date, base: str, quotes: Sequence[str]
) -> tuple[FxRate, ...]:
    if ecb is None:
        return ()
    rates: list[FxRate] = []
    for quote in quotes:
        found = ecb.cross(day, base, quote)
        if found is not None:
            published, rate = found
            rates.append(
                FxRate(base, quote, rate, "ECB", datetime.combine(published, time(0), UTC))
            )
    return tuple(rates)


def ecb_day_before(moment: datetime) -> date:
    """The date of the newest ECB publication strictly before ``moment``."""
    local = moment.astimezone(ECB_ZONE)
    return local.date() if local.time() > ECB_PUBLISHED else local.date() - timedelta(days=1)


def observations(
    settings: Settings,
    symbol: SymbolConfig,
    bars: Iterable[Bar],
    ecb: EcbHistory | None,
    *,
    start: date,
    end: date,
    interval: str = "1d",
    shares: int | None = None,
    source: str = "yahoo-history",
    placeholders: list[date] | None = None,
    stale_fx: list[date] | None = None,
) -> Iterator[Observation]:
    """Observations of ``symbol`` from price bars and ECB rates, placeholder bars left out.

    Daily bars are stamped at the exchange close (16:00 local) with the ECB rate of their
    date, exactly as ``tape build`` writes them; intraday bars at the end of the bar, with the
    running day high and the newest ECB rate published before the bar ended. A rate older
    than ``fx.max_age_days`` is not used (the rules needing it are skipped, as live); those
    days are appended to ``stale_fx``.
    """
    if interval not in INTERVALS:
        raise InputError(f"unknown interval {interval!r}", "--interval", "use 1d, 1h or 5m")
    quotes = fx_quotes(settings, symbol)
    ranking = config_ranking(settings)
    counted = SharesCount(shares, "--shares") if shares is not None else None
    cur = symbol.currency
    max_age = float(settings.fx.max_age_days)
    if interval == "1d":
        for row in daily_rows(
            bars,
            ecb,
            currency=cur,
            fx_quotes=quotes,
            timezone=symbol.timezone,
            start=start,
            end=end,
            placeholders=placeholders,
            max_age_days=max_age,
            stale=stale_fx,
        ):
            row_rates = tuple(
                FxRate(cur, q, r, "ECB", datetime.combine(row.published, time(0), UTC))
                for q, r in row.fx
                if r is not None and row.published is not None
            )
            yield Observation(
                row.stamp,
                symbol.symbol,
                row.close,
                cur,
                row.high,
                counted,
                row_rates,
                ranking,
                source,
            )
        return
    zone = ZoneInfo(symbol.timezone)
    step = INTERVALS[interval]
    high_day: date | None = None
    high = Decimal(0)
    fx_day: date | None = None
    rates: tuple[FxRate, ...] = ()
    for bar in bars:
        day = bar_day(bar, zone)
        if day < start or day > end:
            continue
        if bar.is_placeholder:
            if placeholders is not None:
                placeholders.append(day)
            continue
        if day != high_day:
            high_day, high = day, bar.high
        else:
            high = max(high, bar.high)
        stamp = (bar.start + step).astimezone(zone)
        wanted = ecb_day_before(stamp)
        if wanted != fx_day:
            fx_day, rates = wanted, _ecb_rates(ecb, wanted, cur, quotes)
        fresh = tuple(r for r in rates if (day - r.as_of.date()).days <= max_age)
        if len(fresh) < len(rates) and stale_fx is not None and day not in stale_fx[-1:]:
            stale_fx.append(day)
        yield Observation(
            stamp, symbol.symbol, bar.close, cur, high, counted, fresh, ranking, source
        )


# -- progress ---------------------------------------------------------------------------------
class Progress:
    """A one-line progress bar on a terminal; silent when ``stream`` is not a TTY."""

    def __init__(self, stream: IO[str] | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._shown = False

    def update(self, label: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = width * done // total if total else width
        pct = 100 * done // total if total else 100
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r{label:<24} [{bar}] {pct:3d}%")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False

    def counting(self, items: Sequence[Observation], label: str) -> Iterator[Observation]:
        """Yield ``items`` while advancing the bar about a hundred times in all."""
        total = len(items)
        every = max(1, total // 100)
        for n, item in enumerate(items, 1):
            if n % every == 0 or n == total:
                self.update(label, n, total)
            yield item
        self.done()


# -- series and summary -----------------------------------------------------------------------
# -- running ------------------------------------------------------------------------------------
@dataclass
class BacktestResult:
    """The timeline, the series behind it, and what was skipped."""

    symbol: str
    start: date
    end: date
    interval: str
    sources: dict[str, str]
    events: list[Event]
    series: list[RuleSeries]
    placeholders: list[date]
    skipped: list[str]
    store: Store
    stale_fx: list[date] | None = None
    max_age_days: float = 4

    def to_json(self) -> dict[str, object]:
        """The ``--json`` document: events as ``replay --json`` prints them, plus a summary."""
        return {
            "symbol": self.symbol,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "interval": self.interval,
            "sources": self.sources,
            "events": [event_to_dict(e) for e in self.events],
            "summary": [summarise(s) for s in self.series if s.rule.symbol == self.symbol],
            "warnings": {
                "placeholder_bars": len(self.placeholders),
                "placeholder_days": [d.isoformat() for d in self.placeholders],
                "skipped": self.skipped,
            }
            | self._stale_json(),
        }

    def _stale_json(self) -> dict[str, object]:
        """Days whose ECB rate was older than ``fx.max_age_days`` (present only if any)."""
        if not self.stale_fx:
            return {}
        return {
            "stale_fx_days": [d.isoformat() for d in self.stale_fx],
            "fx_max_age_days": self.max_age_days,
        }


def run(
    settings: Settings,
    items: Iterable[Observation],
    *,
    symbol: str,
    start: date,
    end: date,
    interval: str,
    sources: dict[str, str],
    placeholders: list[date],
    now: float,
    progress: Progress | None = None,
) -> BacktestResult:
    """Evaluate observations in a fresh in-memory state and collect the result."""
    store = Store.open(None)
    engine = Engine(settings, store)
    rows = list(items)
    if not rows:
        store.close()
        raise InputError(
            f"no price bars for {symbol} between {start} and {end}",
            "--from/--to",
            "widen the dates or check the price history covers them",
        )
    feed: Iterable[Observation] = rows
    if progress is not None:
        feed = progress.counting(rows, "evaluating")
    batch = engine.process(feed, now)
    return BacktestResult(
        symbol,
        start,
        end,
        interval,
        sources,
        batch.events,
        rule_series(settings, store),
        placeholders,
        describe_skips(batch.skipped),
        store,
    )


__all__ = [
    "INTERVALS",
    "BacktestResult",
    "Point",
    "Progress",
    "RuleSeries",
    "fetch_ecb_history",
    "fetch_yahoo_bars",
    "observations",
    "rule_series",
    "run",
    "summarise",
]
