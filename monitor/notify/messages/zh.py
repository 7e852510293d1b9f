"""The Chinese texts: figures in 万/亿/万亿, currency names, the event sentence, the digest."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from monitor.core.events import Event
from monitor.notify.messages.common import fixed, fx_for, fx_text, round_unit

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


def zh_number(amount: Decimal) -> str:
    """A figure in Chinese units: ``1.030 万亿``, ``9796.2 亿``, ``35.50 万``."""
    size = abs(amount)
    if size >= WAN_YI:
        return f"{fixed(amount / WAN_YI, 3)} 万亿"
    if size >= YI:
        return f"{fixed(amount / YI, 1)} 亿"
    if size >= WAN:
        return f"{fixed(amount / WAN, 2)} 万"
    return fixed(amount, 2)


def zh_round(amount: Decimal) -> str:
    """A threshold in Chinese units, without decimals when round: ``1 万亿``."""
    for unit, name in ((WAN_YI, "万亿"), (YI, "亿"), (WAN, "万")):
        if abs(amount) >= unit:
            whole = round_unit(amount, unit)
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
    return f"{fixed(amount, places)} {ZH_CURRENCY.get(currency, (currency, currency))[1]}"


def zh_shares(count: int) -> str:
    return f"{fixed(Decimal(count) / YI, 2)} 亿股"


ZH_VERB = {
    "crossed_above": "市值突破",
    "crossed_below": "市值跌破",
    "touched_above": "盘中市值触及",
}


def zh_sentence(event: Event, name_zh: str) -> tuple[str, str]:
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
            head = f"{who} {ZH_VERB[event.kind]} {line}"
        if event.kind == "touched_above":
            high = zh_price(event.day_high or event.price, event.price_currency)
            body = f"{head}：{value}（按最高价 {high}），股价 {at}"
        else:
            body = f"{head}：{value}，股价 {at}"
    extras = [f"股本 {zh_shares(event.shares)}"]
    extras += [fx_text(r, ZH_CURRENCY) for r in fx_for(event)]
    if event.rank is not None:
        extras.append(f"排名第 {event.rank}")
    text = f"{body}（{'；'.join(extras)}）"
    if event.quote_decision:
        text += f"。{zh_quote_line(event)}"
    return head, text


ZH_SOURCE = {"tencent": "腾讯", "sina": "新浪", "yahoo": "雅虎"}


def zh_quote_line(event: Event) -> str:
    """The quote behind an alert: "43.05 港元，来自腾讯，经新浪确认，报价时间 ..."."""
    at = zh_price(event.price, event.price_currency)
    src = ZH_SOURCE.get(event.quote_source, event.quote_source)
    when = event.time.astimezone(ZoneInfo(event.exchange_tz)).strftime("%H:%M:%S %Z")
    if event.quote_decision == "confirmed":
        by = "、".join(ZH_SOURCE.get(s, s) for s in event.confirmed_by)
        return f"{at}，来自{src}，经{by}确认，报价时间 {when}"
    return f"{at}，仅来自{src}（未经第二来源确认），报价时间 {when}"


def zh_digest_line(entry: Mapping[str, Any], names: Mapping[str, str]) -> str:
    symbol = str(entry.get("symbol", ""))
    currency = str(entry.get("currency", ""))
    text = f"{names.get(symbol) or symbol} ({symbol})"
    if entry.get("price") is not None:
        text += f" 收盘 {zh_price(Decimal(str(entry['price'])), currency)}"
    if entry.get("change") is not None:
        change = Decimal(str(entry["change"])) * 100
        text += f"（{'+' if change >= 0 else ''}{fixed(change, 1)}%）"
    if entry.get("market_cap") is not None:
        text += f"，市值 {zh_money(Decimal(str(entry['market_cap'])), currency)}"
    for rule in entry.get("rules") or []:
        label = rule.get("label") or rule.get("rule")
        side = "高于" if rule.get("position") == "above" else "低于"
        text += f"；{label}：{side}门槛"
        if rule.get("distance") is not None:
            text += f" {fixed(Decimal(str(rule['distance'])) * 100, 1)}%"
    return text
