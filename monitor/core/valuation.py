"""Market cap from a price and a share count, and the readings rules compare to thresholds."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from monitor.core.money import Conversion, FxRate, Money, NoRateError, convert, rate_path


class SharesCount(NamedTuple):
    """Shares counted for market cap, with where the number came from."""

    total: int
    source: str
    as_of: date | None = None


class Ranking(NamedTuple):
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


class Observation(NamedTuple):
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
    # the quote policy's decision ("confirmed", "single"; "" for a tape) and who agreed
    quote_decision: str = ""
    confirmed_by: tuple[str, ...] = ()


class Valuation(NamedTuple):
    """An observation valued: its market cap in the quote currency."""

    observation: Observation
    shares: SharesCount
    market_cap: Money
    trading_day: date

    def value_in(self, currency: str) -> Conversion:
        """Market cap in ``currency`` via the observation's FX rates (raises ``NoRateError``)."""
        return convert(self.market_cap, currency, self.observation.fx)

    def rate_to(self, currency: str) -> tuple[Decimal, tuple[FxRate, ...]]:
        """The effective rate quote currency -> ``currency`` and the rates behind it."""
        path = rate_path(self.market_cap.currency, currency, self.observation.fx)
        if len(path) == 1:
            return path[0].rate, path
        effective = Decimal(1)
        for rate in path:
            effective *= rate.rate
        return effective, path

    def high_cap(self) -> Decimal | None:
        """Market cap at the intraday high, in the quote currency, if a day high is known."""
        high = self.observation.day_high
        return None if high is None else high * self.shares.total


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
