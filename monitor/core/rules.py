"""Rules and their state machine: a Schmitt trigger with confirmation and day-high touches.

A step is a pure function ``step(rule, state, reading) -> (new_state, kinds)``; it reads no
clock and does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from monitor.core.events import EVENT_KINDS, EventKind, Position


@dataclass(frozen=True, slots=True, kw_only=True)
class _Trigger:
    """How a rule's line behaves: hysteresis band, confirmation, what is delivered."""

    hysteresis: Decimal = Decimal("0.01")
    confirm: int = 1
    notify_on: frozenset[str] = frozenset(EVENT_KINDS)
    # 1 - hysteresis: above the line, the value stays "above" while >= threshold x keep
    keep: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keep", 1 - self.hysteresis)


@dataclass(frozen=True, slots=True)
class ThresholdRule(_Trigger):
    """Market cap converted into ``currency`` compared with ``threshold``."""

    id: str
    symbol: str
    threshold: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class RankRule(_Trigger):
    """USD market cap compared with the N-th largest other company's (the cutoff)."""

    id: str
    symbol: str
    top_n: int

    @property
    def currency(self) -> str:
        return "USD"


Rule = ThresholdRule | RankRule


class RuleState(NamedTuple):
    """What the state machine remembers between observations.

    The last reading itself is not part of it: ``step`` returns the very same object when
    a reading changes nothing, which keeps long replays cheap.
    """

    rule_id: str
    position: Position
    since: datetime
    streak: int = 0
    touched_day: date | None = None


class Reading(NamedTuple):
    """A rule's inputs for one observation: value at the last price and at the day high."""

    time: datetime
    trading_day: date
    value: Decimal
    threshold: Decimal
    high_value: Decimal | None = None


NO_EVENTS: tuple[EventKind, ...] = ()


def is_quiet(
    rule: Rule,
    state: RuleState | None,
    value: Decimal,
    threshold: Decimal,
    high_value: Decimal | None,
) -> bool:
    """True when ``step`` would return ``state`` unchanged and emit nothing.

    A cheap pre-check for long replays: no streak in progress, the value on its own side of
    the line and (below it) the day high too. Property-tested against ``step``.
    """
    if state is None or state.streak:
        return False
    if state.position == "below":
        return value < threshold and (high_value is None or high_value < threshold)
    return value >= threshold * rule.keep


def step(
    rule: Rule, state: RuleState | None, reading: Reading
) -> tuple[RuleState, tuple[EventKind, ...]]:
    """Advance ``state`` by one reading and return the new state and the events it emits.

    below -> above when value >= threshold (``confirm`` readings in a row); above -> below
    only when value < threshold x (1 - hysteresis); nothing happens inside the band.
    ``touched_above``: the day high reached the line while the last price is below it, at
    most once per rule per trading day.
    """
    value, threshold = reading.value, reading.threshold
    if state is None:
        position: Position = "above" if value >= threshold else "below"
        return RuleState(rule.id, position, reading.time), ("baseline",)

    below = state.position == "below"
    beyond = value >= threshold if below else value < threshold * rule.keep

    if beyond:
        streak = state.streak + 1
        if streak >= rule.confirm:
            if below:
                return RuleState(rule.id, "above", reading.time, 0, state.touched_day), (
                    "crossed_above",
                )
            return RuleState(rule.id, "below", reading.time, 0, state.touched_day), (
                "crossed_below",
            )
    else:
        streak = 0

    high = reading.high_value
    if (
        below
        and high is not None
        and high >= threshold
        and value < threshold
        and state.touched_day != reading.trading_day
    ):
        return RuleState(rule.id, "below", state.since, streak, reading.trading_day), (
            "touched_above",
        )
    if streak == state.streak:
        return state, NO_EVENTS
    return RuleState(rule.id, state.position, state.since, streak, state.touched_day), NO_EVENTS
