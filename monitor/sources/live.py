"""``LiveSource``: Yahoo quotes + FX (Yahoo checked against the ECB) + ranking + share counts.

Implements the ``ObservationSource`` port. Per poll: one chart request per symbol and per FX
pair, the ECB at most every ``fx.ecb_refresh``, the ranking at most every
``ranking.refresh_hours``, Yahoo's implied share count once a day per symbol. It keeps what
validation needs between polls: the last accepted price (spike confirmation), the last
accepted FX rate per pair, the rate-limit back-off, the cached ranking.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
import structlog

from monitor.core.fx_policy import FxDecision, decide
from monitor.core.money import FxRate
from monitor.core.valuation import Observation, Ranking, SharesCount
from monitor.errors import ConfigError, SourceError
from monitor.ports import PollResult, SourceFailure
from monitor.service import shares_on
from monitor.settings import Settings, SymbolConfig
from monitor.sources import ranking as rk
from monitor.sources.ecb import EcbRates, EcbSource
from monitor.sources.yahoo import ChartQuote, YahooChart, YahooSession, configure_yfinance

log = structlog.get_logger("mcap.sources")

# Lunch breaks during which a quote does not age (exchange MIC -> local start, end).
LUNCH_BREAKS = {"XHKG": (time(12, 0), time(13, 0))}
# Exchanges whose Yahoo quotes are delayed (~15 min for Hong Kong).
DELAYED_EXCHANGES = frozenset({"XHKG"})


@dataclass
class SymbolDetail:
    """What one poll learnt about one symbol, for ``check`` and health."""

    quote: ChartQuote | None = None
    shares: SharesCount | None = None
    implied_shares: Decimal | None = None
    ranking: Ranking | None = None
    warnings: list[str] = field(default_factory=list)


def is_stale(quote: ChartQuote, now: datetime, max_age: timedelta, exchange: str) -> bool:
    """Older than ``max_age`` of trading time while the exchange is in its regular session."""
    start, end = quote.session_start, quote.session_end
    if start is None or end is None or not start <= now < end:
        return False  # outside the session (or unknown): the last close is the right price
    age = now - quote.time
    lunch = LUNCH_BREAKS.get(exchange)
    if lunch is not None:
        tz = ZoneInfo(quote.exchange_tz)
        local = now.astimezone(tz)
        l_start = datetime.combine(local.date(), lunch[0], tz)
        l_end = datetime.combine(local.date(), lunch[1], tz)
        if l_start <= local < l_end:
            return False  # lunch break: no trading, no fresher quote to expect
        if quote.time < l_start <= local:
            age -= l_end - l_start
    return age > max_age


def backoff_delay(failures: int, max_backoff: timedelta) -> timedelta:
    """1, 2, 4, ... minutes after consecutive HTTP 429s, capped at ``max_backoff``."""
    return min(timedelta(minutes=2 ** max(failures - 1, 0)), max_backoff)


class LiveSource:
    """The live ``ObservationSource``. Construct once; call ``poll`` per tick."""

    def __init__(
        self,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        yahoo_session: Any = None,
        state_dir: Path | None = None,
        universe_cap: rk.CapLookup | None = None,
        universe_session: Any = None,
        check_shares: bool = True,
        timeout: float | None = None,
    ) -> None:
        self.settings = settings
        src = settings.source
        timeout = timeout or src.timeout
        cache_dir = src.cache_dir or (state_dir / "yfinance" if state_dir else None)
        configure_yfinance(cache_dir)
        self.yahoo_session = yahoo_session or YahooSession(
            timeout=timeout, base_url=src.yahoo_base_url
        )
        self.http = session or requests.Session()
        self.chart = YahooChart(
            self.yahoo_session,
            timeout=timeout,
            timezones={s.symbol: s.timezone for s in settings.symbols},
        )
        fx = settings.fx
        self.ecb = EcbSource(
            self.http, fx.ecb_base_url, timeout=timeout, refresh=timedelta(seconds=fx.ecb_refresh)
        )
        rcfg = settings.ranking
        cache_file = rcfg.cache_file or (
            state_dir / "companiesmarketcap.csv" if state_dir else None
        )
        self.cmc = rk.CompaniesMarketCap(
            self.http,
            rcfg.base_url,
            cache_file=cache_file,
            refresh=timedelta(hours=float(rcfg.refresh_hours)),
            timeout=timeout,
            user_agent=rcfg.user_agent or rk.USER_AGENT,
        )
        self.universe_cap = universe_cap
        # the Yahoo session used to value the universe (a new one per refresh by default)
        self.universe_session = universe_session
        self.check_shares = check_shares
        self._symbols = {s.symbol: s for s in settings.symbols}
        # state kept between polls
        self.last_price: dict[str, Decimal] = {}
        self.pending_spike: dict[str, Decimal] = {}
        self.last_fx: dict[str, FxRate] = {}
        self.backoff_until: datetime | None = None
        self.rate_limited_in_row = 0
        self._companies: tuple[list[rk.Company], str, datetime | None] | None = None
        self._ranking_at: datetime | None = None
        self._rankings: dict[tuple[str, ...], Ranking] = {}
        self._shares_checked: dict[str, date] = {}
        self._implied: dict[str, SharesCount] = {}
        # what happened, for check / metrics / health
        self.counters: Counter[str] = Counter()
        self.details: dict[str, SymbolDetail] = {}
        self.fx_decisions: dict[str, FxDecision] = {}
        self.warnings: list[str] = []
        # relative gap between the two FX sources per pair, for the metrics
        self.fx_disagreement: dict[str, Decimal] = {}
        # relative gap between the configured and Yahoo's implied share count, per symbol
        self.shares_gap: dict[str, Decimal] = {}
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
            if self._refresh_ranking(now, result):
                return result
            try:
                ecb = self.ecb.rates(now)
            except SourceError as err:
                self._fail(result, "ranking", "universe", err.kind, f"no ECB rates: {err.what}")
                return result
        listed = self._value_universe(ecb, result)
        if listed is not None:
            with self._lock:
                self._companies = (listed, "yahoo universe", now)
                self._rankings.clear()
        return result

    def _poll(self, symbols: Sequence[str], now: datetime) -> PollResult:
        result = PollResult()
        self.details = {s: SymbolDetail() for s in symbols}
        self.warnings = []
        if self.backoff_until is not None and now < self.backoff_until:
            for sym in symbols:
                self._fail(
                    result,
                    "yahoo",
                    sym,
                    "rate_limited",
                    f"backing off after HTTP 429 until {self.backoff_until.isoformat()}",
                )
            return result
        yahoo_down: SourceError | None = None
        quotes: dict[str, ChartQuote] = {}
        for sym in symbols:
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
            if self._accept(quote, cfg, now, result):
                quotes[sym] = quote
        if not quotes:
            return result
        fx = self._fx({self._config(s).currency for s in quotes}, now, result, yahoo_down)
        for sym, quote in quotes.items():
            cfg = self._config(sym)
            shares = self._shares(cfg, quote, now, yahoo_down is None)
            ranking = self._ranking(cfg, now, result)
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
                    source="yahoo",
                    delayed=cfg.exchange in DELAYED_EXCHANGES,
                )
            )
        return result

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
        self.counters[f"{source}_{kind}"] += 1
        log.warning("source_failed", source=source, subject=subject, kind=kind, reason=msg)

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
        self, quote: ChartQuote, cfg: SymbolConfig, now: datetime, result: PollResult
    ) -> bool:
        sym = quote.symbol
        if quote.currency != cfg.currency:
            self._fail(
                result,
                "yahoo",
                sym,
                "bad_data",
                f"quote in {quote.currency}, config says {cfg.currency}",
            )
            return False
        if is_stale(quote, now, timedelta(seconds=cfg.max_quote_age), cfg.exchange):
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
        if last is not None and abs(quote.price - last) / last > cfg.max_jump:
            pending = self.pending_spike.get(sym)
            if pending is None or abs(quote.price - pending) / pending > cfg.max_jump:
                self.pending_spike[sym] = quote.price
                self._fail(
                    result,
                    "yahoo",
                    sym,
                    "spike",
                    f"price {quote.price} jumped {abs(quote.price - last) / last:.1%} from "
                    f"{last} (max_jump {cfg.max_jump:.0%}); waiting for the next poll "
                    "to confirm",
                )
                return False
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

    # -- shares --------------------------------------------------------------------------
    def _shares(
        self, cfg: SymbolConfig, quote: ChartQuote, now: datetime, yahoo_up: bool
    ) -> SharesCount:
        day = quote.time.astimezone(ZoneInfo(cfg.timezone)).date()
        configured = shares_on(cfg, day)
        detail = self.details[cfg.symbol]
        if configured.as_of is not None and (day - configured.as_of).days > cfg.shares_max_age_days:
            detail.warnings.append(
                f"share count as of {configured.as_of} is {(day - configured.as_of).days} days "
                f"old (over {cfg.shares_max_age_days}); update shares from the latest HKEX "
                "monthly return"
            )
        today = now.astimezone(ZoneInfo(cfg.timezone)).date()
        wants_yahoo = cfg.shares_mode != "static"
        if (
            yahoo_up
            and (self.check_shares or wants_yahoo)
            and self._shares_checked.get(cfg.symbol) != today
        ):
            self._cross_check(cfg, configured, today)
        implied = self._implied.get(cfg.symbol)
        if cfg.shares_mode == "yahoo_implied" and implied is not None:
            return implied
        if cfg.shares_mode == "source_plus_unlisted" and implied is not None:
            # implied carries Yahoo's listed count in its source; see _cross_check
            return implied
        return configured

    def _cross_check(self, cfg: SymbolConfig, configured: SharesCount, today: date) -> None:
        detail = self.details[cfg.symbol]
        self._shares_checked[cfg.symbol] = today
        try:
            cap, price, listed = self.chart.implied_shares(cfg.symbol)
        except SourceError as err:
            # never blocks the poll (the configured count stays in use), and is not retried
            # before tomorrow; counted and logged so a Yahoo that stopped answering shows
            self.counters["shares_check_failed"] += 1
            detail.warnings.append(f"daily share cross-check skipped: {err.what}")
            log.warning("shares_check_failed", symbol=cfg.symbol, kind=err.kind, reason=err.what)
            return
        implied = cap / price
        detail.implied_shares = implied
        if cfg.shares_mode == "yahoo_implied":
            self._implied[cfg.symbol] = SharesCount(
                round(implied), "Yahoo implied (marketCap / regularMarketPrice)", today
            )
        elif cfg.shares_mode == "source_plus_unlisted" and listed is not None:
            self._implied[cfg.symbol] = SharesCount(
                listed + cfg.unlisted_shares,
                f"Yahoo sharesOutstanding + {cfg.unlisted_shares:,} unlisted (config)",
                today,
            )
        gap = abs(implied - configured.total) / configured.total
        self.shares_gap[cfg.symbol] = gap
        self.counters["shares_checked"] += 1
        if gap > cfg.shares_tolerance:
            self.counters["shares_mismatch"] += 1
            msg = (
                f"Yahoo's implied share count {implied:,.0f} differs from the configured "
                f"{configured.total:,} by {gap:.1%} (tolerance {cfg.shares_tolerance:.0%}); "
                "check the latest HKEX monthly return"
            )
            detail.warnings.append(msg)
            log.warning("shares_mismatch", symbol=cfg.symbol, gap=f"{gap:.4f}")

    # -- ranking -------------------------------------------------------------------------
    def _ranking(self, cfg: SymbolConfig, now: datetime, result: PollResult) -> Ranking | None:
        rcfg = self.settings.ranking
        if not rcfg.enabled:
            return self._static()
        refresh = timedelta(hours=float(rcfg.refresh_hours))
        if self._ranking_at is None or now - self._ranking_at >= refresh:
            self._refresh_ranking(now, result)
        own = [cfg.symbol] + ([cfg.ranking_symbol] if cfg.ranking_symbol else [])
        if self._companies is None:
            return self._static()
        key = tuple(own)
        cached = self._rankings.get(key)
        if cached is None:  # sorting 10,000 caps per symbol per poll is wasted work
            companies, source, as_of = self._companies
            cached = self._rankings[key] = rk.rank_others(companies, own, source, as_of)
        return cached

    def _refresh_ranking(self, now: datetime, result: PollResult) -> bool:
        """Refresh from the companiesmarketcap export; False (a failure recorded) if it fails."""
        self._ranking_at = now
        self._rankings.clear()
        try:
            companies, fetched = self.cmc.companies(now)
        except SourceError as err:
            self._fail(result, "ranking", rk.SOURCE, err.kind, err.what)
            return False
        self._companies = (companies, rk.SOURCE, fetched)
        return True

    def _value_universe(self, ecb: EcbRates, result: PollResult) -> list[rk.Company] | None:
        """The universe's USD market caps (``universe_cap``, else Yahoo + ECB cross rates)."""
        entries = rk.load_universe(self.settings.ranking.universe or PACKAGED_UNIVERSE)
        lookup = self.universe_cap
        if lookup is None:
            # its own session: curl sessions are not shared across threads
            session = self.universe_session or YahooSession(
                timeout=self.settings.source.timeout, base_url=self.settings.source.yahoo_base_url
            )
            chart = YahooChart(session, timeout=self.settings.source.timeout)

            def yahoo_cap(symbol: str) -> Decimal:
                amount, currency = chart.market_cap(symbol)
                return amount if currency == "USD" else amount * ecb.cross(currency, "USD").rate

            lookup = yahoo_cap
        listed: list[rk.Company] = []
        for entry in entries:
            try:
                listed.append(rk.Company(0, entry.name, entry.yahoo, lookup(entry.yahoo)))
            except SourceError:
                continue
        if len(listed) >= 0.8 * len(entries):  # a thin list would put the cutoff too low
            return listed
        self._fail(
            result,
            "ranking",
            "universe",
            "bad_data",
            f"could value only {len(listed)} of {len(entries)} universe companies",
        )
        return None

    def _static(self) -> Ranking | None:
        rcfg = self.settings.ranking
        if rcfg.cutoff_usd is None:
            return None
        return rk.static_ranking(rcfg.cutoff_usd, rcfg.cutoff_top_n, rcfg.cutoff_as_of)


# the ~150 largest companies (config/universe.toml, shipped in the package too)
PACKAGED_UNIVERSE = Path(__file__).resolve().parents[1] / "data" / "universe.toml"


def default_state_dir() -> Path:
    """``$STATE_DIRECTORY`` or the XDG state directory (for ``check`` run by hand)."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "mcap-monitor"


def utc_now() -> datetime:
    """The real time; only entry points call it."""
    return datetime.now(UTC)
