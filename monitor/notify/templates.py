"""Message templates per event kind, in English and Simplified Chinese.

Every sink renders the same ``Message``: a headline, one sentence with the figures, a few labelled
facts and a footer with the quote time. The machine-readable ``data`` goes to generic webhooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from monitor import present
from monitor.core.events import Event, event_from_dict
from monitor.core.money import FxRate

Language = Literal["en", "zh"]

WAN = Decimal(10) ** 4
YI = Decimal(10) ** 8
WAN_YI = Decimal(10) ** 12

# Chinese currency names: the long form after a round threshold ("1 万亿元人民币"), the short
# one after a figure ("1.030 万亿元").
ZH_CURRENCY: dict[str, tuple[str, str]] = {
    "CNY": ("元人民币", "元"),
    "HKD": ("港元", "港元"),
    "USD": ("美元", "美元"),
    "EUR": ("欧元", "欧元"),
    "GBP": ("英镑", "英镑"),
    "JPY": ("日元", "日元"),
}


@dataclass(frozen=True)
class Message:
    """One alert, ready for any sink. ``id`` is the idempotency key (stable across retries)."""

    id: str
    kind: str
    title: str
    text: str
    footer: str
    facts: tuple[tuple[str, str], ...] = ()
    lines: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    time: str = ""
    test: bool = False
    language: Language = "en"

    def plain(self) -> str:
        """The whole message as plain text (console, fallbacks)."""
        parts = [self.text, *self.lines]
        if self.footer:
            parts.append(self.footer)
        return "\n".join(parts)


# -- number formatting --------------------------------------------------------------------------
def _fixed(value: Decimal, places: int) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):.{places}f}"


def _round_unit(amount: Decimal, unit: Decimal) -> str | None:
    scaled = amount / unit
    return f"{scaled:.0f}" if scaled == scaled.to_integral_value() else None


def zh_number(amount: Decimal) -> str:
    """A figure in Chinese units: ``1.030 万亿``, ``9796.2 亿``, ``35.50 万``."""
    size = abs(amount)
    if size >= WAN_YI:
        return f"{_fixed(amount / WAN_YI, 3)} 万亿"
    if size >= YI:
        return f"{_fixed(amount / YI, 1)} 亿"
    if size >= WAN:
        return f"{_fixed(amount / WAN, 2)} 万"
    return _fixed(amount, 2)


def zh_round(amount: Decimal) -> str:
    """A threshold in Chinese units, without decimals when round: ``1 万亿``."""
    for unit, name in ((WAN_YI, "万亿"), (YI, "亿"), (WAN, "万")):
        if abs(amount) >= unit:
            whole = _round_unit(amount, unit)
            return f"{whole} {name}" if whole is not None else zh_number(amount)
    return zh_number(amount)


def zh_money(amount: Decimal, currency: str, *, threshold: bool = False) -> str:
    """``1.030 万亿元`` for a figure, ``1 万亿元人民币`` for a round threshold."""
    long, short = ZH_CURRENCY.get(currency, (currency, currency))
    if threshold:
        return f"{zh_round(amount)}{long}"
    return f"{zh_number(amount)}{short}"


def zh_price(amount: Decimal, currency: str) -> str:
    """A share price: ``43.75 港元``."""
    places = 3 if amount != amount.quantize(Decimal("0.01")) else 2
    return f"{_fixed(amount, places)} {ZH_CURRENCY.get(currency, (currency, currency))[1]}"


def en_round(amount: Decimal, currency: str) -> str:
    """A threshold: ``CN¥1 trillion``, ``US$500 bn``; figures that are not round get decimals."""
    sym = present.symbol_of(currency)
    for unit, name in ((present.TRILLION, "trillion"), (present.BILLION, "bn")):
        if abs(amount) >= unit:
            whole = _round_unit(amount, unit)
            if whole is not None:
                return f"{sym}{int(whole):,} {name}"
            break
    return present.money_long(amount, currency)


# -- event messages -----------------------------------------------------------------------------
def _fx_for(event: Event) -> list[FxRate]:
    direct = [r for r in event.fx if r.base == event.price_currency and r.quote == event.currency]
    if direct or event.currency == event.price_currency:
        return direct
    return list(event.fx)


def _fx_text(rate: FxRate, language: Language) -> str:
    day = rate.as_of.date().isoformat()
    value = _fixed(rate.rate, 4)
    if language == "zh":
        base = ZH_CURRENCY.get(rate.base, (rate.base, rate.base))[0]
        quote = ZH_CURRENCY.get(rate.quote, (rate.quote, rate.quote))[0]
        return f"1 {base} = {value} {quote}，{rate.source} {day}"
    return f"1 {rate.base} = {value} {rate.quote}, {rate.source} {day}"


def _zh_shares(count: int) -> str:
    return f"{_fixed(Decimal(count) / YI, 2)} 亿股"


_EN_VERB = {
    "crossed_above": "crossed above",
    "crossed_below": "crossed below",
    "touched_above": "touched",
    "baseline": "is",
}
_ZH_VERB = {
    "crossed_above": "市值突破",
    "crossed_below": "市值跌破",
    "touched_above": "盘中市值触及",
}


def _en_sentence(event: Event) -> tuple[str, str]:
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
        head = f"{who} {_EN_VERB[event.kind]} {line}"
        body = f"{head}: {value} at {at}"
    extras = [f"shares {present.shares(event.shares)}"]
    extras += [_fx_text(r, "en") for r in _fx_for(event)]
    if event.rank is not None:
        extras.append(f"rank {event.rank}")
    return head, f"{body} ({', '.join(extras)})"


def _zh_sentence(event: Event, name_zh: str) -> tuple[str, str]:
    who = f"{name_zh or event.name or event.symbol} ({event.symbol})"
    at = zh_price(event.price, event.price_currency)
    value = zh_money(event.value, event.currency)
    if event.top_n is not None:
        top = f"全球市值前 {event.top_n} 名"
        if event.kind == "baseline":
            head = f"{who} 当前{'位于' if event.position == 'above' else '不在'}{top}之内"
        else:
            verb = {"crossed_above": "进入", "crossed_below": "跌出", "touched_above": "盘中触及"}
            head = f"{who} {verb[event.kind]}{top}"
        cutoff = zh_money(event.threshold, event.currency)
        body = f"{head}：{value}，门槛 {cutoff}，股价 {at}"
    else:
        line = zh_money(event.threshold, event.currency, threshold=True)
        if event.kind == "baseline":
            side = "高于" if event.position == "above" else "低于"
            head = f"{who} 当前市值{side} {line}"
        else:
            head = f"{who} {_ZH_VERB[event.kind]} {line}"
        if event.kind == "touched_above":
            high = zh_price(event.day_high or event.price, event.price_currency)
            body = f"{head}：{value}（按最高价 {high}），股价 {at}"
        else:
            body = f"{head}：{value}，股价 {at}"
    extras = [f"股本 {_zh_shares(event.shares)}"]
    extras += [_fx_text(r, "zh") for r in _fx_for(event)]
    if event.rank is not None:
        extras.append(f"排名第 {event.rank}")
    return head, f"{body}（{'；'.join(extras)}）"


def _footer(event: Event, language: Language) -> str:
    when = present.local_time(event.time, event.exchange_tz)
    if language == "zh":
        text = f"报价时间 {when}"
        if event.delayed:
            text += "（延迟行情）"
        return f"{text} · mcap-monitor"
    text = f"quote time {when}"
    if event.delayed:
        text += " (delayed data)"
    return f"{text} · mcap-monitor"


def _facts(event: Event, language: Language) -> tuple[tuple[str, str], ...]:
    if language == "zh":
        out = [
            ("市值", zh_money(event.value, event.currency)),
            ("门槛", zh_money(event.threshold, event.currency, threshold=event.top_n is None)),
            ("股价", zh_price(event.price, event.price_currency)),
            ("股本", f"{_zh_shares(event.shares)}（{event.shares_source}）"),
        ]
        if event.day_high is not None:
            out.append(("最高价", zh_price(event.day_high, event.price_currency)))
    else:
        out = [
            ("Market cap", present.money_long(event.value, event.currency)),
            ("Threshold", en_round(event.threshold, event.currency)),
            ("Price", present.price(event.price, event.price_currency)),
            ("Shares", f"{present.shares(event.shares)} ({event.shares_source})"),
        ]
        if event.day_high is not None:
            out.append(("Day high", present.price(event.day_high, event.price_currency)))
    for rate in event.fx:
        out.append(("汇率" if language == "zh" else "FX", _fx_text(rate, language)))
    return tuple(out)


def make_event_message(
    event: Event,
    language: Language = "en",
    *,
    name_zh: str = "",
    superseded_by: str | None = None,
) -> Message:
    """The alert for one event. ``superseded_by`` marks an alert overtaken by a later one."""
    if language == "zh":
        head, text = _zh_sentence(event, name_zh)
    else:
        head, text = _en_sentence(event)
    if superseded_by:
        if language == "zh":
            head = f"【已被取代】{head}"
            text += f"（此提醒在等待期间已被后续提醒取代：{superseded_by}）"
        else:
            head = f"[superseded] {head}"
            text += f" (superseded while held: later {superseded_by})"
    return Message(
        id=event.id,
        kind=event.kind,
        title=head,
        text=text,
        footer=_footer(event, language),
        facts=_facts(event, language),
        time=event.time.isoformat(),
        language=language,
    )


def make_summary_message(
    payload: Mapping[str, Any], language: Language = "en", names_zh: Mapping[str, str] | None = None
) -> Message:
    """The start-up summary: every rule's first reading in one message."""
    names = names_zh or {}
    raw = payload.get("baselines") or []
    events = [event_from_dict(dict(b)) for b in raw]
    lines = tuple(
        make_event_message(e, language, name_zh=names.get(e.symbol, "")).text for e in events
    )
    if language == "zh":
        title = f"mcap-monitor 已启动：{len(events)} 条规则的当前状态"
        footer = "mcap-monitor"
    else:
        title = f"mcap-monitor started: current state of {len(events)} rule(s)"
        footer = "mcap-monitor"
    if events:
        footer = _footer(max(events, key=lambda e: e.time), language)
    return Message(
        id=str(payload.get("id", "")),
        kind="summary",
        title=title,
        text=title,
        footer=footer,
        lines=lines,
        time=str(payload.get("time", "")),
        language=language,
    )


def _zh_digest_line(entry: Mapping[str, Any], names: Mapping[str, str]) -> str:
    symbol = str(entry.get("symbol", ""))
    currency = str(entry.get("currency", ""))
    text = f"{names.get(symbol) or symbol} ({symbol})"
    if entry.get("price") is not None:
        text += f" 收盘 {zh_price(Decimal(str(entry['price'])), currency)}"
    if entry.get("change") is not None:
        change = Decimal(str(entry["change"])) * 100
        text += f"（{'+' if change >= 0 else ''}{_fixed(change, 1)}%）"
    if entry.get("market_cap") is not None:
        text += f"，市值 {zh_money(Decimal(str(entry['market_cap'])), currency)}"
    for rule in entry.get("rules") or []:
        label = rule.get("label") or rule.get("rule")
        side = "高于" if rule.get("position") == "above" else "低于"
        text += f"；{label}：{side}门槛"
        if rule.get("distance") is not None:
            text += f" {_fixed(Decimal(str(rule['distance'])) * 100, 1)}%"
    return text


def make_digest_message(
    payload: Mapping[str, Any], language: Language = "en", names_zh: Mapping[str, str] | None = None
) -> Message:
    """The daily digest (payload kind ``digest``): one line per watched symbol."""
    day = str(payload.get("day", ""))
    if language == "zh":
        title = f"mcap-monitor 每日摘要 {day}"
        entries = payload.get("symbols") or []
        lines = tuple(_zh_digest_line(e, names_zh or {}) for e in entries)
    else:
        title = f"mcap-monitor daily digest {day}"
        lines = tuple(str(payload.get("text", "")).splitlines())
    return Message(
        id=str(payload.get("id", "")),
        kind="digest",
        title=title,
        text=title,
        footer="mcap-monitor",
        lines=lines,
        time=day,
        language=language,
    )


def make_test_message(sink_id: str, message_id: str, now: datetime, language: Language) -> Message:
    """A clearly marked test message; no market event happened."""
    if language == "zh":
        title = "【测试】mcap-monitor 测试消息"
        text = f"【测试】通道 {sink_id} 的投递正常。这不是行情提醒，并无市场事件发生。"
    else:
        title = "[TEST] mcap-monitor test alert"
        text = (
            f"[TEST] Delivery to sink '{sink_id}' works. "
            "This is not a market alert; no market event happened."
        )
    return Message(
        id=message_id,
        kind="test",
        title=title,
        text=text,
        footer=f"{now.isoformat(timespec='seconds')} · mcap-monitor",
        time=now.isoformat(),
        test=True,
        language=language,
    )


def message_for_row(
    kind: str,
    payload: Mapping[str, Any],
    language: Language,
    *,
    names_zh: Mapping[str, str] | None = None,
    superseded_by: str | None = None,
) -> Message:
    """Render a stored outbox payload (an event dict or the start-up summary)."""
    names = names_zh or {}
    if kind == "summary":
        message = make_summary_message(payload, language, names)
    elif kind == "digest":
        message = make_digest_message(payload, language, names)
    else:
        event = event_from_dict(dict(payload))
        message = make_event_message(
            event, language, name_zh=names.get(event.symbol, ""), superseded_by=superseded_by
        )
    return Message(
        id=message.id,
        kind=message.kind,
        title=message.title,
        text=message.text,
        footer=message.footer,
        facts=message.facts,
        lines=message.lines,
        data=dict(payload),
        time=message.time,
        language=language,
    )


def describe_later(kinds: Sequence[tuple[str, str]], language: Language) -> str:
    """``crossed_below at 2025-02-13T16:00:00+08:00`` for the superseded marker."""
    kind, when = kinds[-1]
    if language == "zh":
        return f"{kind} @ {when}"
    return f"{kind} at {when}"
