"""Message templates per event kind, in English and Simplified Chinese.

Every sink renders the same ``Message``: a headline, one sentence with the figures, a few labelled
facts and a footer with the quote time. The machine-readable ``data`` goes to generic webhooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from monitor import present
from monitor.core.events import TAPE_SOURCE, Event, event_from_dict
from monitor.notify.message import Language, Message
from monitor.notify.messages.common import fx_text
from monitor.notify.messages.en import EN_SOURCE, en_round, en_sentence
from monitor.notify.messages.zh import (
    ZH_CURRENCY,
    ZH_SOURCE,
    zh_digest_line,
    zh_money,
    zh_price,
    zh_sentence,
    zh_shares,
)

# -- event messages -----------------------------------------------------------------------------
# the direction at the start of an alert's title (the same in both languages; baselines none)
ARROWS = {"crossed_above": "▲", "touched_above": "▲", "crossed_below": "▼"}

# the price sources without a live quote policy, by name (live ones: EN_SOURCE / ZH_SOURCE)
EN_PRICE_SOURCE = EN_SOURCE | {
    "tape": "tape (recorded data)",
    "yahoo-csv": "Yahoo price history (CSV file)",
    "yahoo-history": "Yahoo price history",
}
ZH_PRICE_SOURCE = ZH_SOURCE | {
    "tape": "录制数据（tape）",
    "yahoo-csv": "雅虎历史行情（CSV 文件）",
    "yahoo-history": "雅虎历史行情",
}


def price_source(event: Event, language: Language) -> str:
    """Where the price came from, by name; "" when the event does not say."""
    source = event.quote_source or event.source
    names = ZH_PRICE_SOURCE if language == "zh" else EN_PRICE_SOURCE
    return names.get(source, source)


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
            ("股本", f"{zh_shares(event.shares)}（{event.shares_source}）"),
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
    source = price_source(event, language)
    if source:
        out.append(("行情来源" if language == "zh" else "Price source", source))
    if event.currency != event.price_currency:  # what the converted figure came from
        if language == "zh":
            out.insert(1, ("原币市值", zh_money(event.market_cap, event.price_currency)))
        else:
            cap = present.money_long(event.market_cap, event.price_currency)
            out.insert(1, (f"Market cap in {event.price_currency}", cap))
    for rate in event.fx:
        out.append(
            (
                "汇率" if language == "zh" else "FX",
                fx_text(rate, ZH_CURRENCY if language == "zh" else None),
            )
        )
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
        head, text = zh_sentence(event, name_zh)
    else:
        head, text = en_sentence(event)
    if event.kind in ARROWS:
        head = f"{ARROWS[event.kind]} {head}"
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


def make_digest_message(
    payload: Mapping[str, Any], language: Language = "en", names_zh: Mapping[str, str] | None = None
) -> Message:
    """The daily digest (payload kind ``digest``): one line per watched symbol."""
    day = str(payload.get("day", ""))
    if language == "zh":
        title = f"mcap-monitor 每日摘要 {day}"
        entries = payload.get("symbols") or []
        lines = tuple(zh_digest_line(e, names_zh or {}) for e in entries)
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
        if payload.get("mode") == "replay" and not (event.source or event.quote_source):
            event = replace(event, source=TAPE_SOURCE)  # a replay's prices come from a tape
        message = make_event_message(
            event, language, name_zh=names.get(event.symbol, ""), superseded_by=superseded_by
        )
    if payload.get("mode") == "replay":
        message = mark_replay(message, language)
    return replace(message, data=dict(payload), language=language)


def mark_replay(message: Message, language: Language) -> Message:
    """Mark an alert built from replayed history (``"mode": "replay"`` in its payload)."""
    if language == "zh":
        return replace(
            message,
            title=f"【回放】{message.title}",
            text=f"【回放】{message.text}",
            facts=(("模式", "历史数据回放，非实时行情"), *message.facts),
        )
    return replace(
        message,
        title=f"[REPLAY] {message.title}",
        text=f"[REPLAY] {message.text}",
        facts=(("Mode", "replay of recorded data, not live"), *message.facts),
    )
