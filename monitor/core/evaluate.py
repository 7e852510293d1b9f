"""Turn a valued observation into readings, step every rule, and build events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from monitor.core.band import IDENTITY, QuietBand, Rates, quiet_band, rate
from monitor.core.events import Event, EventKind, event_id
from monitor.core.money import FxRate
from monitor.core.rules import RankRule, Reading, Rule, RuleState, is_quiet, step
from monitor.core.valuation import Valuation


@dataclass(frozen=True, slots=True)
class Skipped:
    """A rule that could not be evaluated for one observation, and why (never guessed)."""

    rule_id: str
    symbol: str
    reason: str


class RuleReading(NamedTuple):
    """A reading with the context events need: rates used, rank, where the threshold came from."""

    reading: Reading
    fx: tuple[FxRate, ...]
    rank: int | None
    threshold_source: str


_IDENTITY = IDENTITY
_rate = rate


def read_rule(rule: Rule, val: Valuation, rates: Rates | None = None) -> RuleReading | Skipped:
    """Compute a rule's value and threshold from a valuation, or say what input is missing.

    ``rates`` caches the conversion per target currency across the rules of one valuation.
    """
    obs = val.observation
    found = _rate(val, rule.currency, {} if rates is None else rates)
    if found is None:
        return Skipped(rule.id, obs.symbol, f"no FX rate {obs.currency}->{rule.currency}")
    effective, path = found
    value = val.market_cap.amount * effective
    high_cap = val.high_cap()
    high = None if high_cap is None else high_cap * effective
    rank = None
    if isinstance(rule, RankRule):
        ranking = obs.ranking
        cutoff = None if ranking is None else ranking.cutoff(rule.top_n)
        if cutoff is None or ranking is None:
            return Skipped(rule.id, obs.symbol, f"no top-{rule.top_n} cutoff")
        threshold, source = cutoff, ranking.source
        rank = ranking.rank_of(value)
    else:
        threshold, source = rule.threshold, "config"
    reading = Reading(obs.time, val.trading_day, value, threshold, high)
    return RuleReading(reading, path, rank, source)


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
        quote_source=obs.source if obs.quote_decision else "",
        quote_decision=obs.quote_decision,
        confirmed_by=obs.confirmed_by,
        source="" if obs.quote_decision else obs.source,  # live: ``quote_source`` says it
    )


def evaluate(
    rules: Iterable[Rule],
    states: dict[str, RuleState],
    val: Valuation,
    name: str,
    exchange_tz: str,
    rates: Rates | None = None,
) -> tuple[list[Event], list[Skipped]]:
    """Step every rule on one valuation, updating ``states`` in place.

    Returns the events emitted and the rules skipped for missing inputs. This is the hot
    loop of replays, so values shared by the rules are computed once; ``rates`` (filled here)
    can be handed on to ``quiet_band`` for the same valuation.
    """
    events: list[Event] = []
    skipped: list[Skipped] = []
    if rates is None:
        rates = {}
    obs = val.observation
    cap = val.market_cap.amount
    high_cap = val.high_cap()
    quote_currency = obs.currency
    for rule in rules:
        currency = rule.currency
        if currency == quote_currency:
            found: tuple[Decimal, tuple[FxRate, ...]] | None = _IDENTITY
        elif currency in rates:
            found = rates[currency]
        else:
            found = _rate(val, currency, rates)
        if found is None:
            skipped.append(Skipped(rule.id, obs.symbol, f"no FX rate {obs.currency}->{currency}"))
            continue
        effective = found[0]
        value = cap * effective
        rank = None
        if isinstance(rule, RankRule):
            ranking = obs.ranking
            cutoff = None if ranking is None else ranking.cutoff(rule.top_n)
            if cutoff is None or ranking is None:
                skipped.append(Skipped(rule.id, obs.symbol, f"no top-{rule.top_n} cutoff"))
                continue
            threshold, source = cutoff, ranking.source
        else:
            threshold, source = rule.threshold, "config"
        state = states.get(rule.id)
        # the day high only matters below the line
        high = None
        if high_cap is not None and (state is None or state.position == "below"):
            high = high_cap * effective
        if is_quiet(rule, state, value, threshold, high):
            continue
        if high is None and high_cap is not None:
            high = high_cap * effective
        reading = Reading(obs.time, val.trading_day, value, threshold, high)
        new_state, kinds = step(rule, state, reading)
        states[rule.id] = new_state
        if kinds:
            if isinstance(rule, RankRule) and obs.ranking is not None:
                rank = obs.ranking.rank_of(value)
            rr = RuleReading(reading, found[1], rank, source)
            for kind in kinds:
                events.append(make_event(kind, rule, new_state, rr, val, name, exchange_tz))
    return events, skipped


def distance(value: Decimal, threshold: Decimal) -> Decimal:
    """Signed distance of ``value`` from ``threshold`` as a fraction of the threshold."""
    return (value - threshold) / threshold


__all__ = ["QuietBand", "RuleReading", "Skipped", "evaluate", "quiet_band", "read_rule"]
