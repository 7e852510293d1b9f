"""Events the rule state machine emits; each has a stable id used as the idempotency key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal, get_args

from monitor.core.money import FxRate

EventKind = Literal["baseline", "crossed_above", "crossed_below", "touched_above"]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
Position = Literal["above", "below"]


def stable_id(prefix: str, *parts: str) -> str:
    """``prefix_`` and 24 hex digits of the SHA-256 of ``parts``: the same parts, the same id."""
    return f"{prefix}_" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def event_id(symbol: str, rule_id: str, kind: str, time: datetime) -> str:
    """Stable id: the same rule, kind and observation time always give the same id."""
    return stable_id("evt", symbol, rule_id, kind, time.isoformat())


@dataclass(frozen=True, slots=True)
class Event:
    """A rule's state change (or first reading), with every input that produced it.

    ``value`` is the figure compared with ``threshold``: the market cap in ``currency`` at the
    last price, or at the day high for ``touched_above``. ``value_at_price`` is always the
    figure at the last price.
    """

    id: str
    kind: EventKind
    time: datetime
    symbol: str
    name: str
    rule_id: str
    value: Decimal
    value_at_price: Decimal
    currency: str
    threshold: Decimal
    hysteresis: Decimal
    position: Position
    price: Decimal
    price_currency: str
    day_high: Decimal | None
    shares: int
    shares_source: str
    market_cap: Decimal
    fx: tuple[FxRate, ...]
    top_n: int | None
    rank: int | None
    exchange_tz: str
    delayed: bool
    threshold_source: str = ""
    # the live quote policy: which source, its decision, which sources confirmed it
    quote_source: str = ""
    quote_decision: str = ""
    confirmed_by: tuple[str, ...] = ()
    # where the price came from when no quote policy decided ("yahoo-csv", "tape"); "" if unknown
    source: str = ""
    # its JSON text, once ``payload_text`` encoded it (a replay stores and prints it alike)
    _text: str | None = field(default=None, init=False, compare=False, repr=False)


# a tape row's source: implied by a replay
TAPE_SOURCE = "tape"
# recorded prices (a tape, a price-history file or download): implied by the command that read
# them, so not written; replay and backtest JSON stay as they were, and equal for the same data
RECORDED_SOURCES = frozenset({TAPE_SOURCE, "yahoo-csv", "yahoo-history"})


def _fx_dict(rate: FxRate) -> dict[str, str]:
    return {
        "base": rate.base,
        "quote": rate.quote,
        "rate": str(rate.rate),
        "source": rate.source,
        "as_of": rate.as_of.isoformat(),
    }


def event_to_dict(event: Event) -> dict[str, object]:
    """A JSON-ready dict: Decimals as strings (exact), times as ISO 8601 with offset.

    The quote policy's keys are present only for live events, ``source`` only for a live price
    without a quote policy (Yahoo alone); tape and backtest events stay as they were.
    """
    out: dict[str, object] = {
        "id": event.id,
        "kind": event.kind,
        "time": event.time.isoformat(),
        "symbol": event.symbol,
        "name": event.name,
        "rule": event.rule_id,
        "value": str(event.value),
        "value_at_price": str(event.value_at_price),
        "currency": event.currency,
        "threshold": str(event.threshold),
        "threshold_source": event.threshold_source,
        "hysteresis": str(event.hysteresis),
        "position": event.position,
        "price": str(event.price),
        "price_currency": event.price_currency,
        "day_high": None if event.day_high is None else str(event.day_high),
        "shares": event.shares,
        "shares_source": event.shares_source,
        "market_cap": str(event.market_cap),
        "fx": [_fx_dict(r) for r in event.fx],
        "top_n": event.top_n,
        "rank": event.rank,
        "exchange_tz": event.exchange_tz,
        "delayed": event.delayed,
    }
    if event.quote_decision:
        out["quote_source"] = event.quote_source
        out["quote_decision"] = event.quote_decision
        out["confirmed_by"] = list(event.confirmed_by)
    if event.source and event.source not in RECORDED_SOURCES:
        out["source"] = event.source
    return out


def event_from_dict(data: dict[str, object]) -> Event:
    """Inverse of ``event_to_dict``."""

    def dec(key: str) -> Decimal:
        return Decimal(str(data[key]))

    fx_items = data.get("fx") or []
    assert isinstance(fx_items, list)
    fx = tuple(
        FxRate(
            str(r["base"]),
            str(r["quote"]),
            Decimal(str(r["rate"])),
            str(r["source"]),
            datetime.fromisoformat(str(r["as_of"])),
        )
        for r in fx_items
    )
    high = data.get("day_high")
    top_n = data.get("top_n")
    rank = data.get("rank")
    shares = data["shares"]
    assert isinstance(shares, int)
    confirmed = data.get("confirmed_by")
    return Event(
        id=str(data["id"]),
        kind=str(data["kind"]),  # type: ignore[arg-type]
        time=datetime.fromisoformat(str(data["time"])),
        symbol=str(data["symbol"]),
        name=str(data.get("name", "")),
        rule_id=str(data["rule"]),
        value=dec("value"),
        value_at_price=dec("value_at_price"),
        currency=str(data["currency"]),
        threshold=dec("threshold"),
        hysteresis=dec("hysteresis"),
        position=str(data["position"]),  # type: ignore[arg-type]
        price=dec("price"),
        price_currency=str(data["price_currency"]),
        day_high=None if high is None else Decimal(str(high)),
        shares=shares,
        shares_source=str(data.get("shares_source", "")),
        market_cap=dec("market_cap"),
        fx=fx,
        top_n=top_n if isinstance(top_n, int) else None,
        rank=rank if isinstance(rank, int) else None,
        exchange_tz=str(data.get("exchange_tz", "UTC")),
        delayed=bool(data.get("delayed", False)),
        threshold_source=str(data.get("threshold_source", "")),
        quote_source=str(data.get("quote_source", "")),
        quote_decision=str(data.get("quote_decision", "")),
        confirmed_by=tuple(str(s) for s in confirmed) if isinstance(confirmed, list) else (),
        source=str(data.get("source", "")),
    )


def payload_text(event: Event) -> str:
    """``event_to_dict`` as JSON text, encoded once per event however often it is asked for."""
    text = event._text
    if text is None:
        text = json.dumps(event_to_dict(event))
        object.__setattr__(event, "_text", text)  # a cache: equality and repr ignore it
    return text
