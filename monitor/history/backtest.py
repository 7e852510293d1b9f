"""Backtests: would the configured rules have fired over a stretch of real history?

Price bars (a Yahoo history CSV, or yfinance through an injected session) and ECB reference
rates become observations; a fresh in-memory ``Engine`` evaluates them exactly as the daemon
would, and the result is the event timeline plus a per-rule summary. The same series reader
serves ``report`` (the daemon's stored observations) and the charts.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import IO, Any
from zoneinfo import ZoneInfo

from monitor.core.evaluate import distance
from monitor.core.events import Event, event_from_dict, event_to_dict
from monitor.core.money import FxRate, Money, NoRateError, convert
from monitor.core.valuation import Observation, Ranking, SharesCount
from monitor.errors import InputError, SourceError
from monitor.history.tapebuild import PRICE_QUANTUM, Bar, EcbHistory, bar_day, daily_rows
from monitor.service import Engine, describe_skips
from monitor.settings import RuleConfig, Settings, SymbolConfig
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
) -> Iterator[Observation]:
    """Observations of ``symbol`` from price bars and ECB rates, placeholder bars left out.

    Daily bars are stamped at the exchange close (16:00 local) with the ECB rate of their
    date, exactly as ``tape build`` writes them; intraday bars at the end of the bar, with the
    running day high and the newest ECB rate published before the bar ended.
    """
    if interval not in INTERVALS:
        raise InputError(f"unknown interval {interval!r}", "--interval", "use 1d, 1h or 5m")
    quotes = fx_quotes(settings, symbol)
    ranking = config_ranking(settings)
    counted = SharesCount(shares, "--shares") if shares is not None else None
    cur = symbol.currency
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
        yield Observation(
            stamp, symbol.symbol, bar.close, cur, high, counted, rates, ranking, source
        )


# -- fetching (network ports injected) ----------------------------------------------------
def _price(value: float) -> Decimal:
    # float32 artefacts: 39.54999923706055 is HK$39.55, as in tapebuild
    return Decimal(repr(float(value))).quantize(PRICE_QUANTUM).normalize()


def fetch_yahoo_bars(symbol: str, start: date, end: date, interval: str, session: Any) -> list[Bar]:
    """Price bars from Yahoo's chart API through yfinance, on the given session.

    ``session`` is a ``curl_cffi.requests.Session`` (or a fake of one): nothing is global.
    Unadjusted prices; dividends and splits are not applied (splits change the share count).
    """
    import yfinance

    yf_interval = {"1d": "1d", "1h": "60m", "5m": "5m"}[interval]
    try:
        with warnings.catch_warnings():
            # yfinance's own pandas deprecation noise is not ours to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            frame = yfinance.Ticker(symbol, session=session).history(
                start=start.isoformat(),
                end=(end + timedelta(days=1)).isoformat(),
                interval=yf_interval,
                auto_adjust=False,
                actions=False,
            )
    except Exception as exc:  # noqa: BLE001 - yfinance raises many types; classify them
        from monitor.sources.yahoo import classify

        err = classify(exc, symbol)
        # the daemon's hints talk about polls; a backtest is one-off
        first = err.hint + "; " if err.kind in ("not_found", "network") else ""
        raise SourceError(
            f"price history download failed: {err.what}",
            f"yahoo {symbol} {interval} {start}..{end}",
            f"{first}or pass --prices FILE.csv "
            "(Yahoo keeps 5m bars for 60 days and 1h bars for 730)",
            source="yahoo",
            kind=err.kind,
        ) from None
    bars: list[Bar] = []
    for stamp, row in frame.iterrows():
        values = [row.get(k) for k in ("Open", "High", "Low", "Close")]
        if any(v is None or v != v for v in values):  # NaN rows: no trade in the bar
            continue
        volume = row.get("Volume")
        moment = stamp.to_pydatetime()
        o, h, low, c = (_price(float(v)) for v in values)
        count = int(volume) if volume is not None and volume == volume else 0
        bars.append(Bar(moment, o, h, low, c, count))
    if not bars:
        raise SourceError(
            "Yahoo returned no price bars",
            f"yahoo {symbol} {interval} {start}..{end}",
            "check the symbol and dates, or pass --prices FILE.csv",
            source="yahoo",
            kind="not_found",
        )
    return bars


def fetch_ecb_history(session: Any, base_url: str, timeout: float = 30.0) -> EcbHistory:
    """``eurofxref-hist.zip`` from the ECB over the given ``requests.Session``."""
    url = base_url.rstrip("/") + "/eurofxref-hist.zip"
    try:
        response = session.get(url, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any transport failure is a network error
        raise SourceError(
            f"ECB history download failed: {type(exc).__name__}",
            url,
            "check the network or pass --fx-history eurofxref-hist.csv",
            source="ecb",
            kind="network",
        ) from None
    if response.status_code != 200:
        raise SourceError(
            f"ECB history download failed: HTTP {response.status_code}",
            url,
            "check [fx] ecb_base_url or pass --fx-history eurofxref-hist.csv",
            source="ecb",
            kind="network",
        )
    return EcbHistory.from_zip(response.content, url)


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
@dataclass(frozen=True, slots=True)
class Point:
    """One evaluated observation as one rule saw it."""

    time: datetime
    value: Decimal  # market cap in the rule's currency at the price
    threshold: Decimal
    quote_value: Decimal  # market cap in the quote currency
    position: str  # the rule's position after this observation


@dataclass
class RuleSeries:
    """A rule's values over time, its events, and observations it could not evaluate."""

    rule: RuleConfig
    currency: str
    quote_currency: str
    timezone: str
    points: list[Point] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    unevaluated: int = 0

    @property
    def label(self) -> str:
        return self.rule.label or self.rule.id


def _rates(inputs: dict[str, Any]) -> tuple[FxRate, ...]:
    out = []
    for item in inputs.get("fx", []):
        base, quote = str(item["pair"]).split("/")
        as_of = datetime.fromisoformat(str(item["as_of"]))
        out.append(FxRate(base, quote, Decimal(str(item["rate"])), str(item["source"]), as_of))
    return tuple(out)


def rule_series(
    settings: Settings, store: Store, since: datetime | None = None
) -> list[RuleSeries]:
    """Every rule's series rebuilt from the store's observations and events.

    Values are recomputed from the stored market cap and FX rates with the core's own
    ``convert``, so they equal the engine's figures exactly.
    """
    series = {
        r.id: RuleSeries(
            r,
            "USD" if r.top_n is not None else str(r.currency),
            settings.symbol(r.symbol).currency,
            settings.symbol(r.symbol).timezone,
        )
        for r in settings.rules
    }
    position = {rid: "" for rid in series}
    for row in store.events():
        event = event_from_dict(row)
        if event.rule_id not in series:
            continue
        if since is not None and event.time < since:
            # events before the window only tell where each rule stood when it opened
            position[event.rule_id] = event.position
            continue
        series[event.rule_id].events.append(event)
    by_symbol: dict[str, list[RuleSeries]] = {}
    for s in series.values():
        s.events.sort(key=lambda e: e.time)
        by_symbol.setdefault(s.rule.symbol, []).append(s)
    cursor = {rid: 0 for rid in series}
    for row in store.observations(since=since):
        wanted = by_symbol.get(row["symbol"])
        if not wanted:
            continue
        moment = datetime.fromisoformat(row["local_time"])
        inputs = json.loads(row["inputs"])
        cap = Money(Decimal(row["market_cap"]), row["currency"])
        rates = _rates(inputs)
        for s in wanted:
            rid = s.rule.id
            while cursor[rid] < len(s.events) and s.events[cursor[rid]].time <= moment:
                position[rid] = s.events[cursor[rid]].position
                cursor[rid] += 1
            try:
                value = convert(cap, s.currency, rates).money.amount
            except NoRateError:
                s.unevaluated += 1
                continue
            if s.rule.top_n is not None:
                cut = inputs.get("cutoffs_usd", {}).get(str(s.rule.top_n))
                if cut is None:
                    s.unevaluated += 1
                    continue
                threshold = Decimal(cut)
            else:
                assert s.rule.threshold is not None
                threshold = s.rule.threshold
            s.points.append(Point(moment, value, threshold, cap.amount, position[rid]))
    return list(series.values())


def _first(events: list[Event], kind: str) -> str | None:
    for event in events:
        if event.kind == kind:
            return event.time.date().isoformat()
    return None


def summarise(series: RuleSeries) -> dict[str, object]:
    """First touch and crossing, days above, and the latest distance from the line."""
    zone = ZoneInfo(series.timezone)
    day_end: dict[date, str] = {}
    for p in series.points:
        day_end[p.time.astimezone(zone).date()] = p.position
    counts = {
        k: sum(1 for e in series.events if e.kind == k)
        for k in ("touched_above", "crossed_above", "crossed_below")
    }
    out: dict[str, object] = {
        "rule": series.rule.id,
        "label": series.label,
        "currency": series.currency,
        "threshold": str(series.rule.threshold) if series.rule.threshold is not None else None,
        "top_n": series.rule.top_n,
        "observations": len(series.points),
        "unevaluated": series.unevaluated,
        "first_touched_above": _first(series.events, "touched_above"),
        "first_crossed_above": _first(series.events, "crossed_above"),
        "first_crossed_below": _first(series.events, "crossed_below"),
        "events": counts,
        "days": len(day_end),
        "days_above": sum(1 for pos in day_end.values() if pos == "above"),
    }
    if series.points:
        last = series.points[-1]
        out.update(
            last_time=last.time.isoformat(),
            last_value=str(last.value),
            last_threshold=str(last.threshold),
            position=last.position,
            distance=str(distance(last.value, last.threshold).quantize(Decimal("0.0001"))),
        )
    return out


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
            },
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
