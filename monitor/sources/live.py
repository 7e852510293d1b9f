"""``LiveSource``: Yahoo quotes + FX (Yahoo checked against the ECB) + ranking + share counts.

Implements the ``ObservationSource`` port. Per poll: one chart request per symbol and per FX
pair, the ECB at most every ``fx.ecb_refresh``, the ranking at most every
``ranking.refresh_hours``, Yahoo's implied share count once a day per symbol. It keeps what
validation needs between polls: the last accepted price (spike confirmation), the last
accepted FX rate per pair, the rate-limit back-off, the cached ranking.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import structlog

from monitor.core.fx_policy import FxDecision, decide
from monitor.core.money import FxRate
from monitor.core.quality import is_spike, is_stale, jump
from monitor.core.quote_policy import QuoteDecision
from monitor.core.valuation import Observation
from monitor.errors import ConfigError, SourceError
from monitor.ports import BatchQuoteSource, PollResult, SourceFailure, SourceGauges
from monitor.settings import Settings, SymbolConfig
from monitor.sources import ranking as rk
from monitor.sources.ecb import EcbSource
from monitor.sources.ranking_feed import RankingFeed
from monitor.sources.realtime import RealtimeQuotes
from monitor.sources.shares_check import ShareCounts, SymbolDetail
from monitor.sources.yahoo import ChartQuote, YahooChart

log = structlog.get_logger("mcap.sources")

# Exchanges whose Yahoo quotes are delayed (~15 min for Hong Kong).
DELAYED_EXCHANGES = frozenset({"XHKG"})


def backoff_delay(failures: int, max_backoff: timedelta) -> timedelta:
    """1, 2, 4, ... minutes after consecutive HTTP 429s, capped at ``max_backoff``."""
    return min(timedelta(minutes=2 ** max(failures - 1, 0)), max_backoff)


class LiveSource:
    """The live ``ObservationSource``. Construct once; call ``poll`` per tick."""

    def __init__(
        self,
        settings: Settings,
        *,
        chart: YahooChart,
        ecb: EcbSource,
        ranking: rk.CompaniesMarketCap,
        universe_chart: Callable[[], YahooChart],
        universe_cap: rk.CapLookup | None = None,
        check_shares: bool = True,
        realtime: Mapping[str, BatchQuoteSource] | None = None,
        last_prices: Mapping[str, Decimal] | None = None,
    ) -> None:
        """``last_prices``: each symbol's last stored price (``Store.last_prices()``), the
        spike check's reference for the first quote after a restart."""
        self.settings = settings
        self.chart = chart
        self.ecb = ecb
        self.ranking = RankingFeed(settings, ranking, universe_chart, universe_cap, self._fail)
        # what happened, for check / metrics / health
        self.counters: Counter[str] = Counter()
        self.share_counts = ShareCounts(chart, self.counters, check_shares)
        self.share_counts.source_tolerance = settings.source.shares_tolerance
        # Tencent / Sina beside Yahoo; without them (or quotes = ["yahoo"]) Yahoo alone
        self.realtime = RealtimeQuotes(settings, realtime or {}, self.counters, self._fail)
        self._use_yahoo = "yahoo" in settings.source.quotes or not self.realtime.active
        self._symbols = {s.symbol: s for s in settings.symbols}
        # state kept between polls
        self.last_price: dict[str, Decimal] = {
            sym: price for sym, price in (last_prices or {}).items() if price > 0
        }
        self.pending_spike: dict[str, Decimal] = {}
        self.last_fx: dict[str, FxRate] = {}
        self.backoff_until: datetime | None = None
        self.rate_limited_in_row = 0
        # what happened, for check / metrics / health
        self.details: dict[str, SymbolDetail] = {}
        self.fx_decisions: dict[str, FxDecision] = {}
        self.warnings: list[str] = []
        # relative gap between the two FX sources per pair, for the metrics
        self.fx_disagreement: dict[str, Decimal] = {}
        # the daemon's jobs run on several threads; one cycle at a time touches this state
        self._lock = threading.RLock()

    # -- the port ------------------------------------------------------------------------
    def poll(self, symbols: Sequence[str], now: datetime) -> PollResult:
        """One cycle: quotes, FX, ranking, shares -> observations ready for ``Engine``."""
        with self._lock:
            return self._poll(symbols, now)

    def refresh_offhours(self, now: datetime) -> PollResult:
        """Outside sessions: refresh the FX rates, so the session's first poll has fresh ones."""
        with self._lock:
            result = PollResult()
            self._fx({s.currency for s in self.settings.symbols}, now, result, None)
            return result

    def refresh_ranking(self, now: datetime) -> PollResult:
        """Fetch the global ranking now (the daemon's 6-hourly job).

        When the export fails, the universe is valued through Yahoo (one ``info`` per company,
        minutes of work) on its own Yahoo session and without holding the poll's lock, so
        polls go on meanwhile; the result is swapped in at the end.
        """
        result = PollResult()
        if not self.settings.ranking.enabled:
            return result
        with self._lock:
            if self.ranking.refresh(now, result):
                return result
            try:
                ecb = self.ecb.rates(now)
            except SourceError as err:
                self._fail(result, "ranking", "universe", err.kind, f"no ECB rates: {err.what}")
                return result
        listed = self.ranking.value_universe(ecb, result)
        if listed is not None:
            with self._lock:
                self.ranking.swap_in(listed, "yahoo universe", now)
        return result

    def _poll(self, symbols: Sequence[str], now: datetime) -> PollResult:
        result = PollResult()
        self.details = {s: SymbolDetail() for s in symbols}
        self.warnings = []
        yahoo_down: SourceError | None = None
        live = self.realtime
        if self.backoff_until is not None and now < self.backoff_until:
            yahoo_down = SourceError(
                f"backing off after HTTP 429 until {self.backoff_until.isoformat()}",
                source="yahoo",
                kind="rate_limited",
            )
            if not live.active:  # Yahoo alone: nothing to poll
                for sym in symbols:
                    self._fail(result, "yahoo", sym, yahoo_down.kind, yahoo_down.what)
                return result
        quotes: dict[str, ChartQuote] = {}
        decisions: dict[str, QuoteDecision] = {}
        if live.active:
            live.fetch(symbols, now, result)
        for sym in symbols if self._use_yahoo else ():
            cfg = self._config(sym)
            if yahoo_down is not None:
                self._fail(result, "yahoo", sym, yahoo_down.kind, yahoo_down.what)
                continue
            try:
                quote = self.chart.quote(sym)
            except SourceError as err:
                self._on_yahoo_error(err, result, sym, now)
                if err.kind in ("network", "rate_limited"):
                    yahoo_down = err  # do not hammer (or wait for) a source that is down
                continue
            self.rate_limited_in_row = 0
            self.details[sym].quote = quote
            if live.active:  # Yahoo's HK quotes are delayed: say so, for the policy and check
                delayed = quote.delayed or cfg.exchange in DELAYED_EXCHANGES
                live.add_yahoo(replace(quote, delayed=delayed), now)
            elif self._accept(quote, cfg, now, result):
                quotes[sym] = quote
        for sym in symbols if live.active else ():
            cfg = self._config(sym)
            decision = live.decide(cfg, now, result)
            if decision.quote is not None and self._accept(
                decision.quote, cfg, now, result, stale_checked=True
            ):
                quotes[sym], decisions[sym] = decision.quote, decision
                self.details[sym].quote = decision.quote
        if not quotes:
            return result
        fx = self._fx({self._config(s).currency for s in quotes}, now, result, yahoo_down)
        for sym, quote in quotes.items():
            cfg = self._config(sym)
            shares = self.share_counts.shares(
                cfg, quote, now, yahoo_down is None and self._use_yahoo, self.details[sym]
            )
            shares = self.share_counts.check_total(
                cfg, shares, live.arrived.get(sym, {}).values(), now, self.details[sym]
            )
            decided = decisions.get(sym)
            ranking = self.ranking.ranking(cfg, now, result)
            detail = self.details[sym]
            detail.shares, detail.ranking = shares, ranking
            result.observations.append(
                Observation(
                    time=quote.time,
                    symbol=sym,
                    price=quote.price,
                    currency=quote.currency,
                    day_high=quote.day_high,
                    shares=shares,
                    fx=tuple(r for r in fx if r.base == quote.currency),
                    ranking=ranking,
                    source=quote.source,
                    delayed=quote.delayed
                    or (quote.source == "yahoo" and cfg.exchange in DELAYED_EXCHANGES),
                    quote_decision="" if decided is None else decided.kind,
                    confirmed_by=() if decided is None else decided.confirmed_by,
                )
            )
            if sym in self.share_counts.mismatch:  # degraded, not failing, while it stands
                self._fail(
                    result, "shares", sym, "shares_mismatch", self.share_counts.mismatch[sym]
                )
        return result

    @property
    def shares_gap(self) -> dict[str, Decimal]:
        """Relative gap between the configured and Yahoo's implied share count, per symbol."""
        return self.share_counts.gap

    @property
    def exhausted(self) -> bool:
        """Live quotes never run out."""
        return False

    def gauges(self) -> SourceGauges:
        """FX and share-count cross-check gaps, for the metrics."""
        gaps = {**self.shares_gap, **self.share_counts.source_gap}  # the real-time count wins
        return SourceGauges(dict(self.fx_disagreement), gaps, dict(self.realtime.quote_age))

    def verify_symbols(self, now: datetime) -> None:
        """Start-up check: every configured symbol exists on Yahoo, else ``ConfigError``."""
        for sym in self._symbols:
            try:
                self.chart.quote(sym)
            except SourceError as err:
                if err.kind == "not_found":
                    raise ConfigError(err.what, f"[[symbols]] symbol = {sym!r}", err.hint) from err
                raise

    # -- quotes --------------------------------------------------------------------------
    def _config(self, sym: str) -> SymbolConfig:
        cfg = self._symbols.get(sym)
        if cfg is None:
            raise ConfigError(f"symbol {sym!r} is not configured", "[[symbols]]", "add it")
        return cfg

    def _fail(self, result: PollResult, source: str, subject: str, kind: str, msg: str) -> None:
        result.failures.append(SourceFailure(source, subject, kind, msg))
        self.counters[f"{source}_{kind}"] += 1  # logged by the caller (daemon, check)

    def _on_yahoo_error(
        self, err: SourceError, result: PollResult, sym: str, now: datetime
    ) -> None:
        if err.kind == "rate_limited":
            self.rate_limited_in_row += 1
            delay = backoff_delay(
                self.rate_limited_in_row, timedelta(seconds=self.settings.source.max_backoff)
            )
            self.backoff_until = now + delay
            self._fail(
                result,
                "yahoo",
                sym,
                err.kind,
                f"{err.what}; backing off {int(delay.total_seconds())} s",
            )
            return
        message = err.what if err.kind == "network" else err.one_line()
        self._fail(result, "yahoo", sym, err.kind, message)

    def _accept(
        self,
        quote: ChartQuote,
        cfg: SymbolConfig,
        now: datetime,
        result: PollResult,
        *,
        stale_checked: bool = False,
    ) -> bool:
        sym, src = quote.symbol, quote.source
        if quote.currency != cfg.currency:
            self._fail(
                result,
                src,
                sym,
                "bad_data",
                f"quote in {quote.currency}, config says {cfg.currency}",
            )
            return False
        if not stale_checked and is_stale(
            quote, now, timedelta(seconds=cfg.max_quote_age), cfg.exchange
        ):
            result.stale.append(sym)
            age = int((now - quote.time).total_seconds() // 60)
            self._fail(
                result,
                "yahoo",
                sym,
                "stale",
                f"quote of {quote.time.isoformat()} is {age} min old during the session",
            )
            return False
        last = self.last_price.get(sym)
        if last is not None and is_spike(
            quote.price, last, self.pending_spike.get(sym), cfg.max_jump
        ):
            self.pending_spike[sym] = quote.price
            self._fail(
                result,
                src,
                sym,
                "spike",
                f"price {quote.price} jumped {jump(quote.price, last):.1%} from "
                f"{last} (max_jump {cfg.max_jump:.0%}); waiting for the next poll "
                "to confirm",
            )
            return False
        if last is not None and jump(quote.price, last) > cfg.max_jump:
            log.info("spike_confirmed", symbol=sym, price=str(quote.price), last=str(last))
        self.pending_spike.pop(sym, None)
        self.last_price[sym] = quote.price
        return True

    # -- FX ------------------------------------------------------------------------------
    def _fx(
        self, bases: set[str], now: datetime, result: PollResult, yahoo_down: SourceError | None
    ) -> list[FxRate]:
        cfg = self.settings.fx
        rates: list[FxRate] = []
        self.fx_decisions = {}
        for base in sorted(bases):
            for quote in cfg.currencies:
                if quote == base:
                    continue
                pair = f"{base}/{quote}"
                outcomes = {
                    "yahoo": self._yahoo_fx(base, quote, yahoo_down),
                    "ecb": self._ecb_fx(base, quote, now),
                }
                primary = outcomes[cfg.primary]
                secondary = None if cfg.secondary == "none" else outcomes[cfg.secondary]
                if isinstance(primary, FxRate) and isinstance(secondary, FxRate):
                    gap = abs(primary.rate - secondary.rate) / secondary.rate
                    self.fx_disagreement[pair] = gap
                decision = decide(
                    primary,
                    secondary,
                    self.last_fx.get(pair),
                    now,
                    pair=pair,
                    tolerance=cfg.tolerance,
                    max_age=timedelta(days=float(cfg.max_age_days)),
                )
                self.fx_decisions[pair] = decision
                for warning in decision.warnings:
                    self.warnings.append(warning)
                    log.warning("fx_" + decision.kind, pair=pair, detail=warning)
                self.counters[f"fx_{decision.kind}"] += 1
                if decision.accepted is not None and decision.kind != "carried":
                    self.last_fx[pair] = decision.accepted
                if decision.rate is None:
                    result.blocked_pairs[pair] = decision.blocked
                    self._fail(result, "fx", pair, "stale", decision.blocked)
                else:
                    rates.append(decision.rate)
        return rates

    def _yahoo_fx(
        self, base: str, quote: str, yahoo_down: SourceError | None
    ) -> FxRate | SourceError:
        if yahoo_down is not None:
            return yahoo_down
        try:
            q = self.chart.quote(f"{base}{quote}=X")
        except SourceError as err:
            return err
        if q.currency != quote:
            return SourceError(
                f"{base}{quote}=X quoted in {q.currency}", source="yahoo", kind="bad_data"
            )
        return FxRate(base, quote, q.price, "yahoo", q.time)

    def _ecb_fx(self, base: str, quote: str, now: datetime) -> FxRate | SourceError:
        try:
            return self.ecb.rate(base, quote, now)
        except SourceError as err:
            return err
