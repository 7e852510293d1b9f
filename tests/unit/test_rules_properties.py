"""Hypothesis properties of the rule state machine."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.rules import Reading, RuleState, ThresholdRule, is_quiet, step

T0 = datetime(2025, 1, 1, tzinfo=UTC)
values = st.lists(st.integers(min_value=800, max_value=1200), min_size=1, max_size=60)
rules = st.builds(
    ThresholdRule,
    id=st.just("r"),
    symbol=st.just("X"),
    threshold=st.just(Decimal(1000)),
    currency=st.just("HKD"),
    hysteresis=st.sampled_from([Decimal(0), Decimal("0.01"), Decimal("0.05")]),
    confirm=st.integers(min_value=1, max_value=3),
)


def run(rule: ThresholdRule, series: list[int], highs: list[int] | None = None) -> list[str]:
    state: RuleState | None = None
    kinds: list[str] = []
    for i, v in enumerate(series):
        t = T0 + timedelta(hours=i)
        high = None if highs is None else Decimal(max(v, highs[i % len(highs)]))
        state, out = step(rule, state, Reading(t, t.date(), Decimal(v), rule.threshold, high))
        kinds.extend(out)
    return kinds


@given(rules, values)
def test_crossings_alternate_never_twice_the_same_way_without_rearming(
    rule: ThresholdRule, series: list[int]
) -> None:
    crossings = [k for k in run(rule, series) if k.startswith("crossed")]
    for a, b in itertools.pairwise(crossings):
        assert a != b


@given(rules, st.lists(st.floats(min_value=0, max_value=0.999), min_size=1, max_size=40))
def test_no_event_while_the_value_stays_inside_the_band(
    rule: ThresholdRule, fractions: list[float]
) -> None:
    low = rule.threshold * (1 - rule.hysteresis)
    # start above, then move only inside [low, threshold): nothing may happen
    state = RuleState("r", "above", T0)
    for i, f in enumerate(fractions):
        value = low + (rule.threshold - low) * Decimal(repr(f))
        t = T0 + timedelta(minutes=i)
        state, kinds = step(rule, state, Reading(t, t.date(), value, rule.threshold))
        assert kinds == ()
        assert state.position == "above"


@given(rules, values, st.lists(st.integers(min_value=800, max_value=1300), min_size=1))
def test_quiet_precheck_never_hides_a_change(
    rule: ThresholdRule, series: list[int], highs: list[int]
) -> None:
    state: RuleState | None = None
    for i, v in enumerate(series):
        t = T0 + timedelta(hours=i)
        high = Decimal(max(v, highs[i % len(highs)]))
        reading = Reading(t, t.date(), Decimal(v), rule.threshold, high)
        quiet = is_quiet(rule, state, reading.value, reading.threshold, high)
        new, kinds = step(rule, state, reading)
        if quiet:
            assert new is state and kinds == ()
        state = new


@settings(max_examples=50)
@given(rules, values, st.integers(min_value=0, max_value=60))
def test_splitting_a_series_in_two_runs_gives_the_same_events(
    rule: ThresholdRule, series: list[int], cut: int
) -> None:
    whole = run(rule, series)
    state: RuleState | None = None
    split: list[str] = []
    for part in (series[:cut], series[cut:]):
        for i, v in enumerate(part, start=0 if part is series[:cut] else cut):
            t = T0 + timedelta(hours=i)
            state, out = step(rule, state, Reading(t, t.date(), Decimal(v), rule.threshold))
            split.extend(out)
    assert split == whole
