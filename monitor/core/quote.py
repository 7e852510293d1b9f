"""A quote as any source reports it: a price with its currency, source and own as-of time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Quote:
    """The last price of one instrument and the quote's own time."""

    symbol: str
    price: Decimal
    currency: str
    time: datetime
    exchange_tz: str
    day_high: Decimal | None = None
    exchange: str = ""
    # current regular session as the source reports it (None when the payload lacks it)
    session_start: datetime | None = None
    session_end: datetime | None = None
    source: str = "yahoo"
    # what the real-time HK sources (Tencent, Sina) also report; None where a source lacks it
    previous_close: Decimal | None = None
    open: Decimal | None = None
    day_low: Decimal | None = None
    market_cap: Decimal | None = None  # total, in ``currency``
    total_shares: int | None = None  # every class (for Xiaomi: A + B)
    listed_shares: int | None = None  # the class listed on this exchange (Xiaomi: B only)
    delayed: bool = False  # the source says the quote is delayed (Yahoo's HK quotes: 15 min)
