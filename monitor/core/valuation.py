"""Market cap from a price and a share count, and the readings rules compare to thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from monitor.core.money import Conversion, FxRate, Money, NoRateError, convert


@dataclass(frozen=True, slots=True)
class SharesCount:
    """Shares counted for market cap, with where the number came from."""

    total: int
    source: str
    as_of: date | None = None


@dataclass(frozen=True, slots=True)
class Ranking:
    """The USD market caps of the largest companies *other than* the watched one.

    ``others_usd`` is sorted largest first and may be empty when only explicit cutoffs are
    known (a tape's ``top100_cutoff_usd`` column).
    """

    source: str
    as_of: datetime | None
    others_usd: tuple[Decimal, ...] = ()
    cutoffs_usd: tuple[tuple[int, Decimal], ...] = ()

    def cutoff(self, top_n: int) -> Decimal | None:
        """USD market cap of the N-th largest other company, if known."""
        for n, amount in self.cutoffs_usd:
            if n == top_n:
                return amount
        if len(self.others_usd) >= top_n:
            return self.others_usd[top_n - 1]
        return None

    def rank_of(self, value_usd: Decimal) -> int | None:
        """1 + the number of other companies worth more than ``value_usd``; None if unknown."""
        if not self.others_usd:
            return None
        return 1 + sum(1 for other in self.others_usd if other > value_usd)


@dataclass(frozen=True, slots=True)
class Observation:
    """One quote of one symbol with every input needed to value it, as of ``time``."""

    time: datetime
    symbol: str
    price: Decimal
    currency: str
    day_high: Decimal | None = None
    shares: SharesCount | None = None
    fx: tuple[FxRate, ...] = ()
    ranking: Ranking | None = None
    source: str = "tape"
    delayed: bool = False
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Valuation:
    """An observation valued: its market cap in the quote currency."""

    observation: Observation
    shares: SharesCount
    market_cap: Money
    trading_day: date

    def value_in(self, currency: str) -> Conversion:
        """Market cap in ``currency`` via the observation's FX rates (raises ``NoRateError``)."""
        return convert(self.market_cap, currency, self.observation.fx)

    def high_value_in(self, currency: str) -> Conversion | None:
        """Market cap at the intraday high in ``currency``, if a day high is known."""
        high = self.observation.day_high
        if high is None:
            return None
        cap = Money(high * self.shares.total, self.market_cap.currency)
        return convert(cap, currency, self.observation.fx)


def valuate(obs: Observation, shares: SharesCount, trading_day: date) -> Valuation:
    """Market cap = price x shares counted, in the quote currency."""
    counted = obs.shares or shares
    return Valuation(obs, counted, Money(obs.price * counted.total, obs.currency), trading_day)


__all__ = [
    "Conversion",
    "FxRate",
    "Money",
    "NoRateError",
    "Observation",
    "Ranking",
    "SharesCount",
    "Valuation",
    "valuate",
]
