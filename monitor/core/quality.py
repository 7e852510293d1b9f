"""Quote quality checks: is a quote too old to act on, and is a price jump believable."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from monitor.core.quote import Quote

# Lunch breaks during which a quote does not age (exchange MIC -> local start, end).
LUNCH_BREAKS = {"XHKG": (time(12, 0), time(13, 0))}


def is_stale(quote: Quote, now: datetime, max_age: timedelta, exchange: str) -> bool:
    """Older than ``max_age`` of trading time while the exchange is in its regular session."""
    start, end = quote.session_start, quote.session_end
    if start is None or end is None or not start <= now < end:
        return False  # outside the session (or unknown): the last close is the right price
    age = now - quote.time
    lunch = LUNCH_BREAKS.get(exchange)
    if lunch is not None:
        tz = ZoneInfo(quote.exchange_tz)
        local = now.astimezone(tz)
        l_start = datetime.combine(local.date(), lunch[0], tz)
        l_end = datetime.combine(local.date(), lunch[1], tz)
        if l_start <= local < l_end:
            return False  # lunch break: no trading, no fresher quote to expect
        if quote.time < l_start <= local:
            age -= l_end - l_start
    return age > max_age


def jump(price: Decimal, reference: Decimal) -> Decimal:
    """The relative move from ``reference`` to ``price``."""
    return abs(price - reference) / reference


def is_spike(
    price: Decimal, last: Decimal | None, pending: Decimal | None, max_jump: Decimal
) -> bool:
    """A jump over ``max_jump`` from the last accepted price, not yet confirmed by a second
    quote near the same level (``pending``)."""
    if last is None or jump(price, last) <= max_jump:
        return False
    return pending is None or jump(price, pending) > max_jump
