"""Per rule: state, since, last value, distance and the price that reaches the line.

Shared by ``mcap-monitor status`` and the status page (``daemon/status_page``), so both
show the same figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from monitor import present
from monitor.core.evaluate import distance
from monitor.core.rules import RuleState
from monitor.settings import Settings
from monitor.store.sqlite import LastReading
from monitor.store.values import readable_decimal

UNREADABLE = "unreadable"
"""Shown for a stored value this program cannot read (and left out of every computation)."""


@runtime_checkable
class StatusReader(Protocol):
    """The reads the status figures need (the SQLite store has them all)."""

    unreadable_rules: set[str]

    def rule_states(self) -> dict[str, RuleState]: ...
    def last_readings(self) -> dict[str, LastReading]: ...
    def latest_observations(self) -> dict[str, dict[str, Any]]: ...


def rule_status(
    settings: Settings,
    store: StatusReader,
    latest: Mapping[str, dict[str, Any]] | None = None,
) -> list[dict[str, object]]:
    """Per rule: state, since, last value, distance in % and the price that reaches the line.
    ``latest``: the store's ``latest_observations()`` when the caller has already read them."""
    states = store.rule_states()
    readings = store.last_readings()
    if latest is None:
        latest = store.latest_observations()
    out: list[dict[str, object]] = []
    for rule in settings.rules:
        sym = settings.symbol(rule.symbol)
        state = states.get(rule.id)
        last = readings.get(rule.id)
        item: dict[str, object] = {"rule": rule.id, "symbol": rule.symbol, "label": rule.label}
        if rule.id in store.unreadable_rules:
            item["state"] = "unreadable"  # a stored row no version of this program writes
            out.append(item)
            continue
        if state is None or last is None:
            item["state"] = "unknown"
            out.append(item)
            continue
        currency = "USD" if rule.top_n is not None else str(rule.currency)
        value, threshold = last.value, last.threshold
        dist = None
        if value is not None and threshold is not None and threshold != 0:
            dist = distance(value, threshold)
        item.update(
            state=state.position,
            since=state.since.isoformat(),
            last_time=last.time.isoformat(),
            as_of=present.local_time(last.time, sym.timezone),
            value=UNREADABLE if value is None else str(value),
            currency=currency,
            threshold=UNREADABLE if threshold is None else str(threshold),
            distance=UNREADABLE if dist is None else str(dist),
        )
        obs = latest.get(rule.symbol)
        item["quote"] = quote_of(obs)
        if obs is not None:
            price = readable_decimal(obs["price"])
            item["price"] = UNREADABLE if price is None else str(price)
            item["price_currency"] = obs["currency"]
            item["shares_as_of"] = sym.shares_as_of.isoformat() if sym.shares_as_of else None
            if dist is not None and price is not None and value is not None and value > 0:
                # value is proportional to the price: the price that puts value on the line
                # (above it, the line that matters is the bottom of the hysteresis band)
                line = threshold or Decimal(0)
                if state.position == "above":
                    line = line * (1 - rule.hysteresis)
                needed = (price * line / value).quantize(Decimal("0.01"))
                item["needs_price"] = str(needed)
        out.append(item)
    return out


def quote_of(obs: dict[str, object] | None) -> dict[str, object] | None:
    """The quote policy's decision behind a stored observation: ``{"decision", "source",
    "confirmed_by"}``; None for a tape (or an older row, or unreadable inputs)."""
    if obs is None:
        return None
    try:
        quote = json.loads(str(obs.get("inputs"))).get("quote")
        decision, by = str(quote["decision"]), [str(s) for s in quote["confirmed_by"]]
    except (ValueError, TypeError, AttributeError, KeyError):
        return None
    return {"decision": decision, "source": str(obs.get("source", "")), "confirmed_by": by}
