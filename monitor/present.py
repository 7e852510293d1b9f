"""Presentation of amounts for people: "HK$1.081 trillion", "CN¥998.2 bn", "+8.1 %"."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from monitor.core.events import Event

# Symbols used when formatting amounts for people.
CURRENCY_SYMBOLS = {"HKD": "HK$", "CNY": "CN¥", "USD": "US$", "EUR": "€", "GBP": "£", "JPY": "¥"}

TRILLION = Decimal(10) ** 12
BILLION = Decimal(10) ** 9


def symbol_of(currency: str) -> str:
    return CURRENCY_SYMBOLS.get(currency, currency + " ")


def _fixed(value: Decimal, places: int) -> str:
    quantum = Decimal(1).scaleb(-places)
    return f"{value.quantize(quantum, rounding=ROUND_HALF_EVEN):,.{places}f}"


def money_long(amount: Decimal, currency: str, places: int = 3) -> str:
    """E.g. ``HK$1.081 trillion`` or ``US$139.2 bn``."""
    sym = symbol_of(currency)
    if abs(amount) >= TRILLION:
        return f"{sym}{_fixed(amount / TRILLION, places)} trillion"
    if abs(amount) >= BILLION:
        return f"{sym}{_fixed(amount / BILLION, 1)} bn"
    return f"{sym}{_fixed(amount, 2)}"


def money_short(amount: Decimal, currency: str) -> str:
    """E.g. ``HK$1.081T``, ``HK$1T`` for round thresholds, ``US$148.1B``."""
    sym = symbol_of(currency)
    for unit, suffix in ((TRILLION, "T"), (BILLION, "B")):
        if abs(amount) >= unit:
            scaled = amount / unit
            if scaled == scaled.to_integral_value():
                return f"{sym}{scaled:,.0f}{suffix}"
            text = _fixed(scaled, 3 if suffix == "T" else 1)
            if "." in text:  # HK$1.1T, not HK$1.100T
                text = text.rstrip("0").rstrip(".")
            return f"{sym}{text}{suffix}"
    return f"{sym}{_fixed(amount, 2)}"


def price(amount: Decimal, currency: str) -> str:
    """A share price, e.g. ``HK$43.05``."""
    places = 3 if amount != amount.quantize(Decimal("0.01")) else 2
    return f"{symbol_of(currency)}{_fixed(amount, places)}"


def percent(fraction: Decimal, places: int = 1) -> str:
    """A signed percentage, e.g. ``+8.1 %``."""
    value = fraction * 100
    sign = "+" if value >= 0 else "-"
    return f"{sign}{_fixed(abs(value), places)} %"


def local_time(moment: datetime, tz: str) -> str:
    """``2025-02-07 16:00 HKT``-style time in the exchange's zone."""
    local = moment.astimezone(ZoneInfo(tz))
    return local.strftime("%Y-%m-%d %H:%M %Z")


def shares(count: int) -> str:
    """E.g. ``25.105 bn``."""
    return f"{_fixed(Decimal(count) / BILLION, 3)} bn"


# -- an event as one line of the replay, events and backtest tables --------------------------
EVENT_HEADER = (
    f"{'time':<22} {'symbol':<9} {'rule':<14} {'event':<14} {'value':>22} {'threshold':>12}  price"
)


def event_line(event: Event) -> str:
    """One readable line per event."""
    when = local_time(event.time, event.exchange_tz)
    value = money_long(event.value, event.currency)
    if event.kind == "touched_above":
        value += " (hi)"
    at = price(event.price, event.price_currency)
    if event.kind == "touched_above" and event.day_high is not None:
        at += f" (high {price(event.day_high, event.price_currency)})"
    extra = ""
    if event.kind == "baseline":
        extra = f" [{event.position}]"
    if event.rank is not None:
        extra += f" rank {event.rank}"
    return (
        f"{when:<22} {event.symbol:<9} {event.rule_id:<14} {event.kind:<14} {value:>22} "
        f"{money_short(event.threshold, event.currency):>12}  {at}{extra}"
    )
