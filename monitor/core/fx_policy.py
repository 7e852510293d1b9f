"""The FX cross-check policy: pure, no I/O, time passed in.

Primary checked against secondary; on disagreement beyond ``tolerance`` the rate closer to the
last accepted one wins (the ECB reference rate when there is none); one failing source is
replaced by the other; with both down the last accepted rate is carried while younger than
``max_age``; after that the pair is blocked and currency rules for it are not evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from monitor.core.money import FxRate


class SourceFault(Protocol):
    """Why a source gave no rate (``SourceError`` is one)."""

    @property
    def source(self) -> str: ...
    @property
    def kind(self) -> str: ...
    def one_line(self) -> str: ...


@dataclass(frozen=True, slots=True)
class StaleRate:
    """A rate older than ``max_age``: it counts as a failure of its source."""

    rate: FxRate
    max_age: timedelta
    kind: str = "stale"

    @property
    def source(self) -> str:
        return self.rate.source

    def one_line(self) -> str:
        when = self.rate.as_of.isoformat()
        return f"rate as of {when} is older than {self.max_age} ({self.rate.pair})"


Outcome = FxRate | SourceFault


@dataclass(frozen=True, slots=True)
class FxDecision:
    """The rate to use for one pair (``None`` when blocked) and what was noticed on the way."""

    pair: str
    rate: FxRate | None  # as used in observations: ``source`` says how it was chosen
    accepted: FxRate | None  # the raw rate to remember as "last accepted"
    kind: str  # agreed | unchecked | fallback | disagreed | carried | blocked
    warnings: tuple[str, ...] = ()
    blocked: str = ""


def _sourced(rate: FxRate, source: str) -> FxRate:
    """The same rate with ``source`` saying how it was chosen."""
    return FxRate(rate.base, rate.quote, rate.rate, source, rate.as_of)


def _pct(fraction: Decimal) -> str:
    return f"{fraction * 100:.2f} %"


def _fresh(outcome: Outcome | None, now: datetime, max_age: timedelta) -> Outcome | None:
    """A rate older than ``max_age`` counts as a failure of its source."""
    if isinstance(outcome, FxRate) and now - outcome.as_of > max_age:
        return StaleRate(outcome, max_age)
    return outcome


def _why(outcome: Outcome | None) -> str:
    if outcome is not None and not isinstance(outcome, FxRate):
        return f"{outcome.source or 'source'}: {outcome.kind}"
    return "none"


def decide(
    primary: Outcome,
    secondary: Outcome | None,
    last: FxRate | None,
    now: datetime,
    *,
    pair: str,
    tolerance: Decimal = Decimal("0.01"),
    max_age: timedelta = timedelta(days=4),
) -> FxDecision:
    """Choose the rate for ``pair`` from the two sources' outcomes and the last accepted rate."""
    primary = _fresh(primary, now, max_age) or primary  # never None for a given outcome
    secondary = _fresh(secondary, now, max_age)
    if isinstance(primary, FxRate) and isinstance(secondary, FxRate):
        gap = abs(primary.rate - secondary.rate) / secondary.rate
        if gap <= tolerance:
            note = f"{primary.source}, checked against {secondary.source} ({_pct(gap)} apart)"
            return FxDecision(pair, _sourced(primary, note), primary, "agreed")
        if last is not None:
            chosen = min((primary, secondary), key=lambda r: abs(r.rate - last.rate) / last.rate)
            why = "closer to the last accepted rate"
        else:
            chosen = primary if primary.source == "ecb" else secondary
            why = "the ECB reference rate, no accepted rate yet"
        other = secondary if chosen is primary else primary
        warning = (
            f"FX sources disagree on {pair}: {primary.source} {primary.rate} vs "
            f"{secondary.source} {secondary.rate} ({_pct(gap)} apart, tolerance "
            f"{_pct(tolerance)}); using {chosen.source}, {why}"
        )
        note = f"{chosen.source} ({other.source} disagreed by {_pct(gap)}; {why})"
        return FxDecision(pair, _sourced(chosen, note), chosen, "disagreed", (warning,))
    if isinstance(primary, FxRate):
        if secondary is None:
            return FxDecision(pair, primary, primary, "unchecked")
        note = f"{primary.source} (unchecked: {_why(secondary)})"
        return FxDecision(pair, _sourced(primary, note), primary, "fallback")
    if isinstance(secondary, FxRate):
        note = f"{secondary.source} (primary failed: {_why(primary)})"
        warning = (
            f"primary FX source failed for {pair} ({primary.one_line()}); using {secondary.source}"
        )
        return FxDecision(pair, _sourced(secondary, note), secondary, "fallback", (warning,))
    reasons = "; ".join(_why(o) for o in (primary, secondary) if o is not None)
    if last is not None and now - last.as_of <= max_age:
        note = f"{last.source} (last accepted, as of {last.as_of.isoformat()}; {reasons})"
        warning = f"no fresh FX rate for {pair} ({reasons}); carrying the last accepted rate"
        return FxDecision(pair, _sourced(last, note), last, "carried", (warning,))
    since = f"; last {last.as_of.date().isoformat()}" if last is not None else ""
    reason = f"no fresh FX rate ({reasons}{since})"
    return FxDecision(pair, None, last, "blocked", (f"{pair}: {reason}",), reason)
