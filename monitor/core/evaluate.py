"""Turn a valued observation into readings, step every rule, and build events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from monitor.core.events import Event, EventKind, event_id
from monitor.core.money import FxRate, NoRateError
from monitor.core.rules import RankRule, Reading, Rule, RuleState, step
from monitor.core.valuation import Valuation


@dataclass(frozen=True, slots=True)
class Skipped:
    """A rule that could not be evaluated for one observation, and why (never guessed)."""

    rule_id: str
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class RuleReading:
    """A reading with the context events need: rates used, rank, where the threshold came from."""

    reading: Reading
    fx: tuple[FxRate, ...]
    rank: int | None
    threshold_source: str


def read_rule(rule: Rule, val: Valuation) -> RuleReading | Skipped:
    """Compute a rule's value and threshold from a valuation, or say what input is missing."""
    obs = val.observation
    try:
        conv = val.value_in(rule.currency)
        high = val.high_value_in(rule.currency)
    except NoRateError:
        return Skipped(rule.id, obs.symbol, f"no FX rate {obs.currency}->{rule.currency}")
    rank = None
    if isinstance(rule, RankRule):
        if obs.ranking is None:
            return Skipped(rule.id, obs.symbol, f"no top-{rule.top_n} cutoff")
        cutoff = obs.ranking.cutoff(rule.top_n)
        if cutoff is None:
            return Skipped(rule.id, obs.symbol, f"no top-{rule.top_n} cutoff")
        threshold, source = cutoff, obs.ranking.source
        rank = obs.ranking.rank_of(conv.money.amount)
    else:
        threshold, source = rule.threshold, "config"
    reading = Reading(
        obs.time,
        val.trading_day,
        conv.money.amount,
        threshold,
        high.money.amount if high is not None else None,
    )
    return RuleReading(reading, conv.rates, rank, source)


def make_event(
    kind: EventKind,
    rule: Rule,
    state: RuleState,
    rr: RuleReading,
    val: Valuation,
    name: str,
    exchange_tz: str,
) -> Event:
    """Build the event record for one kind emitted by ``step``."""
    obs = val.observation
    reading = rr.reading
    value = reading.value
    if kind == "touched_above" and reading.high_value is not None:
        value = reading.high_value
    return Event(
        id=event_id(obs.symbol, rule.id, kind, obs.time),
        kind=kind,
        time=obs.time,
        symbol=obs.symbol,
        name=name,
        rule_id=rule.id,
        value=value,
        value_at_price=reading.value,
        currency=rule.currency,
        threshold=reading.threshold,
        hysteresis=rule.hysteresis,
        position=state.position,
        price=obs.price,
        price_currency=obs.currency,
        day_high=obs.day_high,
        shares=val.shares.total,
        shares_source=val.shares.source,
        market_cap=val.market_cap.amount,
        fx=rr.fx,
        top_n=rule.top_n if isinstance(rule, RankRule) else None,
        rank=rr.rank,
        exchange_tz=exchange_tz,
        delayed=obs.delayed,
        threshold_source=rr.threshold_source,
    )


def evaluate(
    rules: Iterable[Rule],
    states: Mapping[str, RuleState],
    val: Valuation,
    name: str,
    exchange_tz: str,
) -> tuple[dict[str, RuleState], list[Event], list[Skipped]]:
    """Step every rule on one valuation; return changed states, events and skipped rules."""
    changed: dict[str, RuleState] = {}
    events: list[Event] = []
    skipped: list[Skipped] = []
    for rule in rules:
        rr = read_rule(rule, val)
        if isinstance(rr, Skipped):
            skipped.append(rr)
            continue
        new_state, kinds = step(rule, states.get(rule.id), rr.reading)
        changed[rule.id] = new_state
        for kind in kinds:
            events.append(make_event(kind, rule, new_state, rr, val, name, exchange_tz))
    return changed, events, skipped


def distance(value: Decimal, threshold: Decimal) -> Decimal:
    """Signed distance of ``value`` from ``threshold`` as a fraction of the threshold."""
    return (value - threshold) / threshold
