"""The global ranking as the live source sees it: the companiesmarketcap export, refreshed
every ``ranking.refresh_hours``, else the shipped universe valued through Yahoo, else the
static cutoff of the config."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from monitor.core.valuation import Ranking
from monitor.errors import SourceError
from monitor.ports import PollResult
from monitor.settings import Settings, SymbolConfig
from monitor.sources import ranking as rk
from monitor.sources.ecb import EcbRates
from monitor.sources.yahoo import YahooChart

# the ~150 largest companies (config/universe.toml, shipped in the package too)
PACKAGED_UNIVERSE = Path(__file__).resolve().parents[1] / "data" / "universe.toml"

Fail = Callable[[PollResult, str, str, str, str], None]


class RankingFeed:
    """Ranks a symbol among the world's largest companies; caches per set of own symbols."""

    def __init__(
        self,
        settings: Settings,
        cmc: rk.CompaniesMarketCap,
        universe_chart: Callable[[], YahooChart],
        universe_cap: rk.CapLookup | None,
        fail: Fail,
    ) -> None:
        self.settings = settings
        self.cmc = cmc
        # a new Yahoo chart client (its own session) to value the universe with
        self.universe_chart = universe_chart
        self.universe_cap = universe_cap
        self._fail = fail
        self.companies: tuple[list[rk.Company], str, datetime | None] | None = None
        self._ranking_at: datetime | None = None
        self._rankings: dict[tuple[str, ...], Ranking] = {}

    def swap_in(self, listed: list[rk.Company], source: str, now: datetime) -> None:
        """Use ``listed`` (valued elsewhere) from now on."""
        self.companies = (listed, source, now)
        self._rankings.clear()

    def ranking(self, cfg: SymbolConfig, now: datetime, result: PollResult) -> Ranking | None:
        rcfg = self.settings.ranking
        if not rcfg.enabled:
            return self.static()
        refresh = timedelta(hours=float(rcfg.refresh_hours))
        if self._ranking_at is None or now - self._ranking_at >= refresh:
            self.refresh(now, result)
        own = [cfg.symbol] + ([cfg.ranking_symbol] if cfg.ranking_symbol else [])
        if self.companies is None:
            return self.static()
        key = tuple(own)
        cached = self._rankings.get(key)
        if cached is None:  # sorting 10,000 caps per symbol per poll is wasted work
            companies, source, as_of = self.companies
            cached = self._rankings[key] = rk.rank_others(companies, own, source, as_of)
        return cached

    def refresh(self, now: datetime, result: PollResult) -> bool:
        """Refresh from the companiesmarketcap export; False (a failure recorded) if it fails."""
        self._ranking_at = now
        self._rankings.clear()
        try:
            companies, fetched = self.cmc.companies(now)
        except SourceError as err:
            self._fail(result, "ranking", rk.SOURCE, err.kind, err.what)
            return False
        self.companies = (companies, rk.SOURCE, fetched)
        return True

    def value_universe(self, ecb: EcbRates, result: PollResult) -> list[rk.Company] | None:
        """The universe's USD market caps (``universe_cap``, else Yahoo + ECB cross rates)."""
        entries = rk.load_universe(self.settings.ranking.universe or PACKAGED_UNIVERSE)
        lookup = self.universe_cap
        if lookup is None:
            # its own session: curl sessions are not shared across threads
            chart = self.universe_chart()

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

    def static(self) -> Ranking | None:
        rcfg = self.settings.ranking
        if rcfg.cutoff_usd is None:
            return None
        return rk.static_ranking(rcfg.cutoff_usd, rcfg.cutoff_top_n, rcfg.cutoff_as_of)
