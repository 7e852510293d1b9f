"""The English texts: round thresholds, the event sentence, the digest line."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from monitor import present
from monitor.core.events import Event
from monitor.notify.messages.common import fx_for, fx_text, round_unit


def en_round(amount: Decimal, currency: str) -> str:
    """A threshold: ``CN¥1 trillion``, ``US$500 bn``; figures that are not round get decimals."""
    sym = present.symbol_of(currency)
    for unit, name in ((present.TRILLION, "trillion"), (present.BILLION, "bn")):
        if abs(amount) >= unit:
            whole = round_unit(amount, unit)
            if whole is not None:
                return f"{sym}{int(whole):,} {name}"
            break
    return present.money_long(amount, currency)


EN_VERB = {
    "crossed_above": "crossed above",
    "crossed_below": "crossed below",
    "touched_above": "touched",
    "baseline": "is",
}


def en_sentence(event: Event) -> tuple[str, str]:
    who = f"{event.name or event.symbol} ({event.symbol})"
    at = present.price(event.price, event.price_currency)
    value = present.money_long(event.value, event.currency)
    line = (
        en_round(event.threshold, event.currency)
        if event.top_n is None
        else f"the global top {event.top_n}"
    )
    if event.top_n is not None:
        verb = {
            "crossed_above": "entered",
            "crossed_below": "left",
            "touched_above": "touched",
            "baseline": "is inside" if event.position == "above" else "is outside",
        }[event.kind]
        cutoff = present.money_long(event.threshold, event.currency)
        head = f"{who} {verb} {line}"
        body = f"{head}: {value} vs cutoff {cutoff} at {at}"
    elif event.kind == "touched_above":
        high = present.price(event.day_high or event.price, event.price_currency)
        head = f"{who} touched {line} intraday"
        body = f"{head}: {value} at the day high {high} (last {at})"
    elif event.kind == "baseline":
        head = f"{who} is {event.position} {line}"
        body = f"{head}: {value} at {at}"
    else:
        head = f"{who} {EN_VERB[event.kind]} {line}"
        body = f"{head}: {value} at {at}"
    extras = [f"shares {present.shares(event.shares)}"]
    extras += [fx_text(r) for r in fx_for(event)]
    if event.rank is not None:
        extras.append(f"rank {event.rank}")
    text = f"{body} ({', '.join(extras)})"
    if event.quote_decision:
        text += f". {en_quote_line(event)}"
    return head, text


EN_SOURCE = {"tencent": "Tencent", "sina": "Sina", "yahoo": "Yahoo"}


def en_quote_line(event: Event) -> str:
    """The quote behind an alert: "HK$43.05 from Tencent, confirmed by Sina, quote time ..."."""
    at = present.price(event.price, event.price_currency)
    src = EN_SOURCE.get(event.quote_source, event.quote_source)
    when = event.time.astimezone(ZoneInfo(event.exchange_tz)).strftime("%H:%M:%S %Z")
    if event.quote_decision == "confirmed":
        by = " and ".join(EN_SOURCE.get(s, s) for s in event.confirmed_by)
        return f"{at} from {src}, confirmed by {by}, quote time {when}"
    return f"{at} from {src} alone (no second source confirmed it), quote time {when}"


class DigestRule(Protocol):
    """One rule's reading as the digest line needs it."""

    @property
    def currency(self) -> str: ...
    @property
    def threshold(self) -> Decimal: ...
    @property
    def rank(self) -> int | None: ...
    @property
    def top_n(self) -> int | None: ...
    @property
    def distance(self) -> Decimal: ...


def digest_line(
    symbol: str,
    currency: str,
    market_cap: Decimal,
    price: Decimal,
    previous_close: Decimal | None,
    rules: Sequence[DigestRule],
) -> str:
    """One line per symbol: "1810.HK closed at HK$1.081T, +1.2 %; above HK$1T, rank 112"."""
    text = f"{symbol} closed at {present.money_short(market_cap, currency)}"
    if previous_close is not None and previous_close > 0:
        text += f", {present.percent(price / previous_close - 1)}"
    parts: list[str] = []
    rank: int | None = None
    for rule in rules:
        if rule.top_n is not None:
            rank = rule.rank if rule.rank is not None else rank
            where = "inside" if rule.distance >= 0 else "outside"
            parts.append(f"{where} the top {rule.top_n}")
            continue
        line = present.money_short(rule.threshold, rule.currency)
        if rule.distance >= 0:
            parts.append(f"above {line}")
        else:
            parts.append(f"{present.percent(-rule.distance).lstrip('+')} below {line}")
    if rank is not None:
        parts.append(f"rank {rank}")
    return text + ("; " + ", ".join(parts) if parts else "")
