"""Rules and their state machine: a Schmitt trigger with confirmation and day-high touches.

A step is a pure function ``step(rule, state, reading) -> (new_state, kinds)``; it reads no
clock and does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from monitor.core.events import EVENT_KINDS, EventKind, Position


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """Market cap converted into ``currency`` compared with ``threshold``."""

    id: str
    symbol: str
    threshold: Decimal
    currency: str
    hysteresis: Decimal = Decimal("0.01")
    confirm: int = 1
    notify_on: frozenset[str] = frozenset(EVENT_KINDS)


@dataclass(frozen=True, slots=True)
class RankRule:
    """USD market cap compared with the N-th largest other company's (the cutoff)."""

    id: str
    symbol: str
    top_n: int
    hysteresis: Decimal = Decimal("0.01")
    confirm: int = 1
    notify_on: frozenset[str] = frozenset(EVENT_KINDS)

    @property
    def currency(self) -> str:
        return "USD"


Rule = ThresholdRule | RankRule


@dataclass(frozen=True, slots=True)
class RuleState:
    """What a rule remembers between observations."""

    rule_id: str
    position: Position
    since: datetime
    last_time: datetime
    last_value: Decimal
    last_threshold: Decimal
    streak: int = 0
    touched_day: date | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """A rule's inputs for one observation: value at the last price and at the day high."""

    time: datetime
    trading_day: date
    value: Decimal
    threshold: Decimal
    high_value: Decimal | None = None


def step(
    rule: Rule, state: RuleState | None, reading: Reading
) -> tuple[RuleState, tuple[EventKind, ...]]:
    """Advance ``state`` by one reading and return the new state and the events it emits.

    below -> above when value >= threshold (``confirm`` readings in a row); above -> below
    only when value < threshold x (1 - hysteresis); nothing happens inside the band.
    """
    value, threshold = reading.value, reading.threshold
    if state is None:
        position: Position = "above" if value >= threshold else "below"
        first = RuleState(
            rule.id, position, reading.time, reading.time, value, threshold, 0, None
        )
        return first, ("baseline",)

    if state.position == "below":
        beyond = value >= threshold
    else:
        beyond = value < threshold * (1 - rule.hysteresis)
    streak = state.streak + 1 if beyond else 0

    if beyond and streak >= rule.confirm:
        new_position: Position = "above" if state.position == "below" else "below"
        kind: EventKind = "crossed_above" if new_position == "above" else "crossed_below"
        new = RuleState(
            rule.id, new_position, reading.time, reading.time, value, threshold, 0,
            state.touched_day,
        )
        return new, (kind,)

    touched_day = state.touched_day
    kinds: tuple[EventKind, ...] = ()
    if (
        state.position == "below"
        and reading.high_value is not None
        and value < threshold
        and reading.high_value >= threshold
        and touched_day != reading.trading_day
    ):
        touched_day = reading.trading_day
        kinds = ("touched_above",)
    new = RuleState(
        rule.id, state.position, state.since, reading.time, value, threshold, streak, touched_day
    )
    return new, kinds
