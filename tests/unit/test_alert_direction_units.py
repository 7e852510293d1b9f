"""The alert's direction arrow and price source, per event kind and where the price came from;
the event's ``source`` field round-trips and old payloads / tape events stay as they were."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from monitor.core.events import Event, event_from_dict, event_to_dict, payload_text
from monitor.core.money import FxRate
from monitor.notify.templates import make_event_message, make_summary_message, message_for_row
from monitor.service import summary_payload


def event(kind: str = "crossed_above", **over: object) -> Event:
    base: dict[str, object] = dict(
        id="evt_test", kind=kind,
        time=datetime(2025, 2, 10, 16, 0, tzinfo=ZoneInfo("Asia/Hong_Kong")),
        symbol="1810.HK", name="Xiaomi", rule_id="cny-1t",
        value=Decimal("1029955356250.0"), value_at_price=Decimal("1029955356250.0"),
        currency="CNY", threshold=Decimal("1000000000000"), hysteresis=Decimal("0.01"),
        position="above", price=Decimal("43.75"), price_currency="HKD", day_high=Decimal("44.0"),
        shares=25_105_000_000, shares_source="press 2025-02-04",
        market_cap=Decimal("1098343750000"),
        fx=(FxRate("HKD", "CNY", Decimal("0.93772"), "ECB", datetime(2025, 2, 10, tzinfo=UTC)),),
        top_n=None, rank=None, exchange_tz="Asia/Hong_Kong", delayed=False,
    )  # fmt: skip
    base.update(over)
    return Event(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "position", "en", "zh"),
    [
        ("crossed_above", "above", "▲ Xiaomi (1810.HK) crossed above CN¥1 trillion", "▲ "),
        ("touched_above", "below", "▲ Xiaomi (1810.HK) touched CN¥1 trillion intraday", "▲ "),
        ("crossed_below", "below", "▼ Xiaomi (1810.HK) crossed below CN¥1 trillion", "▼ "),
        ("baseline", "above", "Xiaomi (1810.HK) is above CN¥1 trillion", ""),
    ],
)
def test_the_title_starts_with_the_direction(kind: str, position: str, en: str, zh: str) -> None:
    e = event(kind, position=position)
    assert make_event_message(e, "en").title == en
    zh_title = make_event_message(e, "zh", name_zh="小米集团").title
    assert zh_title.startswith(zh + "小米集团") if zh else zh_title.startswith("小米集团")


def test_superseded_and_summary_titles() -> None:
    superseded = make_event_message(event(), "en", superseded_by="crossed_below").title
    assert superseded == "[superseded] ▲ Xiaomi (1810.HK) crossed above CN¥1 trillion"
    summary = make_summary_message(summary_payload([event("baseline")]))
    assert summary.title == "mcap-monitor started: current state of 1 rule(s)"
    assert summary.lines[0].startswith("Xiaomi (1810.HK) is above")  # no arrow on a baseline


@pytest.mark.parametrize(
    ("over", "en", "zh"),
    [
        ({"source": "yahoo-csv"}, "Yahoo price history (CSV file)", "雅虎历史行情（CSV 文件）"),
        ({"source": "yahoo"}, "Yahoo", "雅虎"),
        (
            {"quote_source": "tencent", "quote_decision": "confirmed", "confirmed_by": ("sina",)},
            "Tencent",
            "腾讯",
        ),
    ],
)
def test_the_price_source_is_a_fact(over: dict[str, object], en: str, zh: str) -> None:
    e = event(**over)
    assert ("Price source", en) in make_event_message(e, "en").facts
    assert ("行情来源", zh) in make_event_message(e, "zh").facts


def test_an_event_without_a_known_source_has_no_source_fact() -> None:
    facts = make_event_message(event(), "en").facts
    assert [k for k, _ in facts if k == "Price source"] == []


def test_a_replayed_payload_names_the_tape() -> None:
    payload = event_to_dict(event(source="tape")) | {"mode": "replay"}
    message = message_for_row("crossed_above", payload, "en")
    assert ("Price source", "tape (recorded data)") in message.facts
    assert message.title == "[REPLAY] ▲ Xiaomi (1810.HK) crossed above CN¥1 trillion"


def test_source_round_trips_and_is_omitted_when_empty_or_recorded() -> None:
    with_source = event(source="yahoo")  # a live Yahoo-only price: no quote policy decided
    data = event_to_dict(with_source)
    assert data["source"] == "yahoo"
    assert event_from_dict(json.loads(json.dumps(data))) == with_source
    assert "source" not in event_to_dict(event())
    for recorded in ("tape", "yahoo-csv", "yahoo-history"):  # replay / backtest JSON as before
        assert "source" not in event_to_dict(event(source=recorded))
    old = event_to_dict(event())  # a payload written before the field existed
    assert event_from_dict(old).source == ""


def test_an_events_json_text_is_its_dict_encoded_once_and_never_carried_to_a_copy() -> None:
    e = event()
    text = payload_text(e)
    assert json.loads(text) == event_to_dict(e)
    assert payload_text(e) is text  # encoded once: a replay stores and prints the same text
    assert e == event() and repr(e) == repr(event())  # the cache changes neither
    later = replace(e, price=Decimal("44.00"))  # a copy with a field changed
    assert json.loads(payload_text(later)) == event_to_dict(later) != event_to_dict(e)
