"""Share counts for the live source: the configured count in force, Yahoo's implied count
when ``shares_mode`` asks for it, and the daily cross-check between the two."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import structlog

from monitor.core.quote import Quote
from monitor.core.shares import shares_on
from monitor.core.valuation import Ranking, SharesCount
from monitor.errors import SourceError
from monitor.settings import SymbolConfig
from monitor.sources.yahoo import ChartQuote, YahooChart

log = structlog.get_logger("mcap.sources")


@dataclass
class SymbolDetail:
    """What one poll learnt about one symbol, for ``check`` and health."""

    quote: ChartQuote | None = None
    shares: SharesCount | None = None
    implied_shares: Decimal | None = None
    ranking: Ranking | None = None
    warnings: list[str] = field(default_factory=list)


class ShareCounts:
    """The share count per symbol and poll, with the state the daily check keeps."""

    def __init__(self, chart: YahooChart, counters: Counter[str], check_shares: bool) -> None:
        self.chart = chart
        self.counters = counters
        self.check_shares = check_shares
        self._shares_checked: dict[str, date] = {}
        self._implied: dict[str, SharesCount] = {}
        # relative gap between the configured and Yahoo's implied share count, per symbol
        self.gap: dict[str, Decimal] = {}
        # the same against a real-time source's total count (Tencent), and the last mismatch
        self.source_gap: dict[str, Decimal] = {}
        self.mismatch: dict[str, str] = {}
        self._total_checked: dict[str, date] = {}
        self.source_tolerance = Decimal("0.003")

    def shares(
        self,
        cfg: SymbolConfig,
        quote: ChartQuote,
        now: datetime,
        yahoo_up: bool,
        detail: SymbolDetail,
    ) -> SharesCount:
        """The count to value ``quote`` with; once a day, cross-checked against Yahoo."""
        day = quote.time.astimezone(ZoneInfo(cfg.timezone)).date()
        configured = shares_on(cfg, day)
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
            self._cross_check(cfg, configured, today, detail)
        implied = self._implied.get(cfg.symbol)
        if cfg.shares_mode == "yahoo_implied" and implied is not None:
            return implied
        if cfg.shares_mode == "source_plus_unlisted" and implied is not None:
            # implied carries Yahoo's listed count in its source; see _cross_check
            return implied
        return configured

    def _cross_check(
        self, cfg: SymbolConfig, configured: SharesCount, today: date, detail: SymbolDetail
    ) -> None:
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
        self.gap[cfg.symbol] = gap
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

    def check_total(
        self,
        cfg: SymbolConfig,
        counted: SharesCount,
        quotes: Iterable[Quote],
        now: datetime,
        detail: SymbolDetail,
    ) -> SharesCount:
        """Cross-check the configured count with a source's total (A + B) share count.

        Beyond ``source.shares_tolerance`` the mismatch is logged once a day and kept (for
        status, /healthz, metrics) until a check agrees. ``shares_mode = "auto"`` values with
        the source's count; every other mode keeps ``counted``.
        """
        total = next((q for q in quotes if q.total_shares), None)
        if total is None or total.total_shares is None:
            return counted
        day = total.time.astimezone(ZoneInfo(cfg.timezone)).date()
        configured = shares_on(cfg, day)
        gap = Decimal(abs(total.total_shares - configured.total)) / configured.total
        self.source_gap[cfg.symbol] = gap
        if gap > self.source_tolerance:
            msg = (
                f"{total.source} reports {total.total_shares:,} total shares "
                f"(quote of {day}), the configured count is {configured.total:,} "
                f"({configured.source}, as of {configured.as_of or 'unknown'}): "
                f"{gap:.2%} apart (tolerance {self.source_tolerance:.1%}); check the latest "
                "HKEX monthly return"
            )
            detail.warnings.append(msg)
            self.mismatch[cfg.symbol] = msg
            today = now.astimezone(ZoneInfo(cfg.timezone)).date()
            if self._total_checked.get(cfg.symbol) != today:
                self._total_checked[cfg.symbol] = today
                self.counters["shares_mismatch"] += 1
                log.warning(
                    "shares_mismatch",
                    symbol=cfg.symbol,
                    source=total.source,
                    source_shares=total.total_shares,
                    source_date=str(day),
                    configured=configured.total,
                    configured_source=configured.source,
                    configured_as_of=str(configured.as_of),
                    gap=f"{gap:.4f}",
                )
        else:
            self.mismatch.pop(cfg.symbol, None)
        if cfg.shares_mode == "auto":
            return SharesCount(
                total.total_shares, f"{total.source} real-time total (all classes)", day
            )
        return counted
