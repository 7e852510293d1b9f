"""Rule series rebuilt from stored observations and events, and their per-rule summary.

The same series serve ``report`` (the daemon's stored observations), backtests and the charts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from monitor.core.evaluate import distance
from monitor.core.events import Event, event_from_dict
from monitor.core.money import FxRate, Money, NoRateError, convert
from monitor.settings import RuleConfig, Settings
from monitor.store import Store


@dataclass(frozen=True, slots=True)
class Point:
    """One evaluated observation as one rule saw it."""

    time: datetime
    value: Decimal  # market cap in the rule's currency at the price
    threshold: Decimal
    quote_value: Decimal  # market cap in the quote currency
    position: str  # the rule's position after this observation


@dataclass
class RuleSeries:
    """A rule's values over time, its events, and observations it could not evaluate."""

    rule: RuleConfig
    currency: str
    quote_currency: str
    timezone: str
    points: list[Point] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    unevaluated: int = 0

    @property
    def label(self) -> str:
        return self.rule.label or self.rule.id


def _rates(inputs: dict[str, Any], source: str, moment: datetime) -> tuple[FxRate, ...]:
    """The stored rates; a rate stored without source and as-of time is the row's own
    (a tape's rates: the observation's source, as of its time)."""
    out = []
    for item in inputs.get("fx", []):
        base, quote = str(item["pair"]).split("/")
        as_of = datetime.fromisoformat(str(item["as_of"])) if "as_of" in item else moment
        rate = Decimal(str(item["rate"]))
        out.append(FxRate(base, quote, rate, str(item.get("source", source)), as_of))
    return tuple(out)


def rule_series(
    settings: Settings, store: Store, since: datetime | None = None
) -> list[RuleSeries]:
    """Every rule's series rebuilt from the store's observations and events.

    Values are recomputed from the stored market cap and FX rates with the core's own
    ``convert``, so they equal the engine's figures exactly.
    """
    series = {
        r.id: RuleSeries(
            r,
            "USD" if r.top_n is not None else str(r.currency),
            settings.symbol(r.symbol).currency,
            settings.symbol(r.symbol).timezone,
        )
        for r in settings.rules
    }
    position = {rid: "" for rid in series}
    for row in store.events():
        event = event_from_dict(row)
        if event.rule_id not in series:
            continue
        if since is not None and event.time < since:
            # events before the window only tell where each rule stood when it opened
            position[event.rule_id] = event.position
            continue
        series[event.rule_id].events.append(event)
    by_symbol: dict[str, list[RuleSeries]] = {}
    for s in series.values():
        s.events.sort(key=lambda e: e.time)
        by_symbol.setdefault(s.rule.symbol, []).append(s)
    cursor = {rid: 0 for rid in series}
    for row in store.observations(since=since):
        wanted = by_symbol.get(row["symbol"])
        if not wanted:
            continue
        moment = datetime.fromisoformat(row["local_time"])
        inputs = json.loads(row["inputs"])
        cap = Money(Decimal(row["market_cap"]), row["currency"])
        rates = _rates(inputs, str(row["source"]), moment)
        for s in wanted:
            rid = s.rule.id
            while cursor[rid] < len(s.events) and s.events[cursor[rid]].time <= moment:
                position[rid] = s.events[cursor[rid]].position
                cursor[rid] += 1
            try:
                value = convert(cap, s.currency, rates).money.amount
            except NoRateError:
                s.unevaluated += 1
                continue
            if s.rule.top_n is not None:
                cut = inputs.get("cutoffs_usd", {}).get(str(s.rule.top_n))
                if cut is None:
                    s.unevaluated += 1
                    continue
                threshold = Decimal(cut)
            else:
                assert s.rule.threshold is not None
                threshold = s.rule.threshold
            s.points.append(Point(moment, value, threshold, cap.amount, position[rid]))
    return list(series.values())


def _first(events: list[Event], kind: str) -> str | None:
    for event in events:
        if event.kind == kind:
            return event.time.date().isoformat()
    return None


def summarise(series: RuleSeries) -> dict[str, object]:
    """First touch and crossing, days above, and the latest distance from the line."""
    zone = ZoneInfo(series.timezone)
    day_end: dict[date, str] = {}
    for p in series.points:
        day_end[p.time.astimezone(zone).date()] = p.position
    counts = {
        k: sum(1 for e in series.events if e.kind == k)
        for k in ("touched_above", "crossed_above", "crossed_below")
    }
    out: dict[str, object] = {
        "rule": series.rule.id,
        "label": series.label,
        "currency": series.currency,
        "threshold": str(series.rule.threshold) if series.rule.threshold is not None else None,
        "top_n": series.rule.top_n,
        "observations": len(series.points),
        "unevaluated": series.unevaluated,
        "first_touched_above": _first(series.events, "touched_above"),
        "first_crossed_above": _first(series.events, "crossed_above"),
        "first_crossed_below": _first(series.events, "crossed_below"),
        "events": counts,
        "days": len(day_end),
        "days_above": sum(1 for pos in day_end.values() if pos == "above"),
    }
    if series.points:
        last = series.points[-1]
        out.update(
            last_time=last.time.isoformat(),
            last_value=str(last.value),
            last_threshold=str(last.threshold),
            position=last.position,
            distance=str(distance(last.value, last.threshold).quantize(Decimal("0.0001"))),
        )
    return out
