"""The rule state machine: baseline, crossings with hysteresis and confirm, day-high touches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from monitor.core.rules import Reading, RuleState, ThresholdRule, is_quiet, step

LINE = Decimal(1000)
RULE = ThresholdRule("r", "X", LINE, "HKD", hysteresis=Decimal("0.01"))
T0 = datetime(2025, 2, 3, 8, 0, tzinfo=UTC)


def feed(rule: ThresholdRule, values: list[tuple[int, int | None]]) -> list[tuple[int, str]]:
    """Feed (value, day high) readings, one a day; return (index, kind) of every event."""
    state: RuleState | None = None
    out: list[tuple[int, str]] = []
    for i, (value, high) in enumerate(values):
        t = T0 + timedelta(days=i)
        reading = Reading(
            t, t.date(), Decimal(value), rule.threshold, None if high is None else Decimal(high)
        )
        state, kinds = step(rule, state, reading)
        out.extend((i, k) for k in kinds)
    return out


def test_first_reading_is_a_baseline_on_its_side_of_the_line() -> None:
    state, kinds = step(RULE, None, Reading(T0, T0.date(), Decimal(1200), LINE))
    assert kinds == ("baseline",) and state.position == "above"
    state, kinds = step(RULE, None, Reading(T0, T0.date(), Decimal(999), LINE))
    assert kinds == ("baseline",) and state.position == "below"


def test_crossing_above_fires_once_at_the_line() -> None:
    assert feed(RULE, [(900, None), (999, None), (1000, None), (1100, None)]) == [
        (0, "baseline"),
        (2, "crossed_above"),
    ]


def test_no_event_while_wiggling_inside_the_hysteresis_band() -> None:
    # above from 1000; the band is [990, 1000): no crossing below until < 990
    wiggles = [(1001, None), (995, None), (1003, None), (991, None), (999, None), (1000, None)]
    assert feed(RULE, [(900, None), *wiggles]) == [(0, "baseline"), (1, "crossed_above")]


def test_crossing_below_needs_the_value_under_the_band() -> None:
    events = feed(RULE, [(900, None), (1000, None), (990, None), (989, None), (995, None)])
    assert events == [(0, "baseline"), (1, "crossed_above"), (3, "crossed_below")]


def test_confirm_requires_consecutive_readings_beyond_the_line() -> None:
    rule = ThresholdRule("r", "X", LINE, "HKD", confirm=2)
    events = feed(rule, [(900, None), (1001, None), (999, None), (1001, None), (1002, None)])
    assert events == [(0, "baseline"), (4, "crossed_above")]


def test_touch_from_the_day_high_fires_at_most_once_a_trading_day() -> None:
    state = RuleState("r", "below", T0)
    day = date(2025, 2, 4)
    r1 = Reading(T0, day, Decimal(990), LINE, Decimal(1010))
    state, kinds = step(RULE, state, r1)
    assert kinds == ("touched_above",)
    state, kinds = step(RULE, state, r1._replace(time=T0 + timedelta(minutes=1)))
    assert kinds == ()
    r2 = Reading(T0 + timedelta(days=1), date(2025, 2, 5), Decimal(990), LINE, Decimal(1005))
    _, kinds = step(RULE, state, r2)
    assert kinds == ("touched_above",)


def test_no_touch_once_above_or_when_the_last_price_itself_crosses() -> None:
    events = feed(RULE, [(900, None), (1001, 1050), (1002, 1050)])
    assert events == [(0, "baseline"), (1, "crossed_above")]


def test_quiet_precheck_agrees_with_step_for_common_cases() -> None:
    below = RuleState("r", "below", T0)
    assert is_quiet(RULE, below, Decimal(900), LINE, Decimal(950))
    assert not is_quiet(RULE, below, Decimal(900), LINE, Decimal(1000))
    above = RuleState("r", "above", T0)
    assert is_quiet(RULE, above, Decimal(990), LINE, None)
    assert not is_quiet(RULE, above, Decimal("989.99"), LINE, None)
    assert not is_quiet(RULE, None, Decimal(1), LINE, None)
