"""The quiet band: prices, FX rates and cutoffs near the current ones at which no rule moves.

A replay's hot loop asks one question of most rows: can this row change anything? For a
symbol whose rules all sit still (no streak in progress), the band answers it with a few
comparisons instead of a full ``evaluate``. The band stays valid while the FX rates and the
top-N cutoffs stay within a small relative distance of those it was computed from, so it
survives rates and cutoffs that move on every row (real tapes).

Why it is exact (``is_quiet`` decides; see ``core.rules``): every rule's value is
``price x shares x e`` where ``e`` is the product of at most two legs, each a tape rate or
its inverse (``money.rate_path``; the path depends only on the rates' pairs and order, which
the band pins). If every rate is within a factor ``1 +- EPS`` of the band's, each leg is
within ``[1 - EPS, 1 + EPS + 2 EPS^2]`` of its old value and ``e`` within ``1 +- 3 EPS``
(for EPS <= 0.1). The bounds take the worst ``e`` and the worst cutoff, then are pulled in
by ``MARGIN`` so that Decimal rounding (28 digits) can never put a price on the wrong side.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from monitor.core.money import FxRate, NoRateError
from monitor.core.rules import RankRule, Rule, RuleState
from monitor.core.valuation import Observation, Valuation

Rates = dict[str, tuple[Decimal, tuple[FxRate, ...]] | None]

IDENTITY: tuple[Decimal, tuple[FxRate, ...]] = (Decimal(1), ())

# how far each FX rate / cutoff may move before the band is rebuilt (relative)
EPS = Decimal("0.0005")
CUT_EPS = Decimal("0.001")
_RATE_SPAN = 3 * EPS  # the effective rate of a two-leg path moves at most this much
# Bounds are pulled in by this much so that the division can never round a price onto the
# wrong side of a line (prices carry a handful of decimals, not 12).
MARGIN = Decimal("1e-12")


def rate(val: Valuation, currency: str, cache: Rates) -> tuple[Decimal, tuple[FxRate, ...]] | None:
    """The effective rate quote currency -> ``currency`` with its path, cached per currency."""
    if currency == val.observation.currency:
        return IDENTITY
    if currency in cache:
        return cache[currency]
    try:
        found: tuple[Decimal, tuple[FxRate, ...]] | None = val.rate_to(currency)
    except NoRateError:
        found = None
    cache[currency] = found
    return found


class QuietBand(NamedTuple):
    """Inputs at which every rule of a symbol is quiet (``is_quiet``).

    ``lo < price < hi`` and ``day_high < high_hi``, the same share count, every FX rate of
    the same pair in the same place and within ``[rate_lo, rate_hi]``, and every cutoff the
    rules read within ``[cut_lo, cut_hi]``: then no rule can change.
    """

    shares: int
    fx: tuple[tuple[str, str, Decimal, Decimal], ...]
    cutoffs: tuple[tuple[int, Decimal, Decimal], ...]
    lo: Decimal
    hi: Decimal | None
    high_hi: Decimal | None

    def admits(self, obs: Observation, shares: int) -> bool:
        """Whether ``obs`` is certainly quiet for every rule (a conservative check)."""
        price = obs.price
        if not self.lo < price or shares != self.shares:
            return False
        if self.hi is not None and not price < self.hi:
            return False
        high = obs.day_high
        if high is not None and self.high_hi is not None and not high < self.high_hi:
            return False
        fx = obs.fx
        if len(fx) != len(self.fx):
            return False
        for r, (base, quote, lo, hi) in zip(fx, self.fx, strict=True):
            if not lo <= r.rate <= hi or r.base != base or r.quote != quote:
                return False
        if self.cutoffs:
            ranking = obs.ranking
            if ranking is None:
                return False
            for n, lo, hi in self.cutoffs:
                cut = ranking.cutoff(n)
                if cut is None or not lo <= cut <= hi:
                    return False
        return True


def quiet_band(
    rules: Iterable[Rule], states: dict[str, RuleState], val: Valuation, rates: Rates | None = None
) -> QuietBand | None:
    """The band inside which every rule stays quiet, or None when there is none.

    ``rates``: the rate cache ``evaluate`` filled for this valuation (shared, not recomputed).
    """
    obs = val.observation
    shares = val.shares.total
    cache: Rates = {} if rates is None else rates
    lo = Decimal(0)
    hi: Decimal | None = None
    cutoffs: list[tuple[int, Decimal, Decimal]] = []
    for rule in rules:
        state = states.get(rule.id)
        if state is None or state.streak:
            return None
        found = rate(val, rule.currency, cache)
        if found is None:
            return None
        below = state.position == "below"
        if isinstance(rule, RankRule):
            cutoff = None if obs.ranking is None else obs.ranking.cutoff(rule.top_n)
            if cutoff is None:
                return None
            cutoffs.append((rule.top_n, cutoff * (1 - CUT_EPS), cutoff * (1 + CUT_EPS)))
            # the worst cutoff: the lowest when below the line, the highest above it
            threshold = cutoff * (1 - CUT_EPS) if below else cutoff * (1 + CUT_EPS)
        else:
            threshold = rule.threshold
        moved = _RATE_SPAN if found[1] else Decimal(0)  # the identity never moves
        if below:
            bound = threshold / (shares * found[0] * (1 + moved)) * (1 - MARGIN)
            hi = bound if hi is None else min(hi, bound)
        else:
            lo = max(lo, threshold * rule.keep / (shares * found[0] * (1 - moved)) * (1 + MARGIN))
    fx = tuple((r.base, r.quote, r.rate * (1 - EPS), r.rate * (1 + EPS)) for r in obs.fx)
    return QuietBand(shares, fx, tuple(cutoffs), lo, hi, hi)
