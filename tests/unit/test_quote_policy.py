"""The quote policy (pure): confirmed, single, disagreement, stale quotes dropped."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from monitor.core.quote import Quote
from monitor.core.quote_policy import PolicyConfig, Streak, decide, with_session

HKT = ZoneInfo("Asia/Hong_Kong")
NOW = datetime(2026, 8, 3, 14, 2, 15, tzinfo=HKT)  # a Monday, in the afternoon session
CFG = PolicyConfig(
    order=("tencent", "sina", "yahoo"),
    max_age={
        "tencent": timedelta(seconds=180),
        "sina": timedelta(seconds=180),
        "yahoo": timedelta(seconds=1800),
    },
)


def q(source: str, price: str, age: float, *, delayed: bool = False) -> Quote:
    return Quote(
        symbol="1810.HK",
        price=Decimal(price),
        currency="HKD",
        time=NOW - timedelta(seconds=age),
        exchange_tz="Asia/Hong_Kong",
        exchange="XHKG",
        source=source,
        delayed=delayed,
    )


def quotes(*items: Quote) -> dict[str, Quote]:
    return {item.source: item for item in items}


def test_two_sources_agreeing_confirm_on_the_freshest() -> None:
    d = decide(quotes(q("tencent", "43.05", 4), q("sina", "43.04", 2)), NOW, CFG, "XHKG")
    assert d.kind == "confirmed"
    assert d.quote is not None and d.quote.source == "sina"  # 2 s old beats 4 s old
    assert d.confirmed_by == ("tencent",)


def test_equal_times_prefer_the_configured_order() -> None:
    d = decide(quotes(q("sina", "43.05", 3), q("tencent", "43.05", 3)), NOW, CFG, "XHKG")
    assert d.kind == "confirmed" and d.source == "tencent" and d.confirmed_by == ("sina",)


def test_disagreement_beyond_the_tolerance_evaluates_nothing() -> None:
    d = decide(quotes(q("tencent", "43.05", 4), q("sina", "43.40", 2)), NOW, CFG, "XHKG")
    assert d.kind == "disagreement"
    assert d.quote is None
    assert "tencent 43.05" in d.reason and "sina 43.40" in d.reason


def test_the_tolerance_is_inclusive_at_half_a_percent() -> None:
    # 0.5 % of 40.00 is 0.20
    assert (
        decide(quotes(q("tencent", "40.20", 1), q("sina", "40.00", 1)), NOW, CFG, "XHKG").kind
        == "confirmed"
    )
    assert (
        decide(quotes(q("tencent", "40.21", 1), q("sina", "40.00", 1)), NOW, CFG, "XHKG").kind
        == "disagreement"
    )


def test_delayed_yahoo_is_not_comparable_with_a_real_time_quote() -> None:
    # 15 min apart: Yahoo neither confirms nor contradicts Tencent
    d = decide(
        quotes(q("tencent", "43.05", 3), q("yahoo", "41.00", 900, delayed=True)), NOW, CFG, "XHKG"
    )
    assert d.kind == "single" and d.quote is None  # waits for confirm_single
    again = decide(
        quotes(q("tencent", "43.05", 3), q("yahoo", "41.00", 900, delayed=True)),
        NOW,
        CFG,
        "XHKG",
        d.streak,
    )
    assert again.kind == "single" and again.source == "tencent"
    assert again.streak == Streak("tencent", 2)


def test_a_stale_real_time_quote_is_dropped() -> None:
    d = decide(quotes(q("tencent", "43.05", 600), q("sina", "43.05", 2)), NOW, CFG, "XHKG")
    assert d.stale == ("tencent",)
    assert d.kind == "single" and d.quote is None


def test_only_stale_quotes_give_no_decision() -> None:
    d = decide(quotes(q("tencent", "43.05", 600), q("sina", "43.05", 700)), NOW, CFG, "XHKG")
    assert d.kind == "none" and d.quote is None and d.stale == ("tencent", "sina")


def test_lunch_break_does_not_age_a_quote() -> None:
    at_lunch = datetime(2026, 8, 3, 12, 40, tzinfo=HKT)
    morning = Quote(
        "1810.HK",
        Decimal("43"),
        "HKD",
        datetime(2026, 8, 3, 11, 59, 58, tzinfo=HKT),
        "Asia/Hong_Kong",
        source="tencent",
    )
    other = Quote(
        "1810.HK",
        Decimal("43"),
        "HKD",
        datetime(2026, 8, 3, 11, 59, 59, tzinfo=HKT),
        "Asia/Hong_Kong",
        source="sina",
    )
    assert decide(quotes(morning, other), at_lunch, CFG, "XHKG").kind == "confirmed"
    # 13:01: one minute of trading since 12:00, still fresh; 13:04 is not
    d = decide(quotes(morning, other), at_lunch.replace(hour=13, minute=1), CFG, "XHKG")
    assert d.kind == "confirmed"
    d = decide(quotes(morning, other), at_lunch.replace(hour=13, minute=4), CFG, "XHKG")
    assert d.kind == "none"


def test_after_the_close_the_closing_quotes_stay_fresh() -> None:
    evening = datetime(2026, 8, 3, 20, 0, tzinfo=HKT)
    close = Quote(
        "1810.HK",
        Decimal("43"),
        "HKD",
        datetime(2026, 8, 3, 16, 8, 10, tzinfo=HKT),
        "Asia/Hong_Kong",
        source="tencent",
    )
    assert with_session(close, evening, "XHKG").session_end is not None
    d = decide(
        {"tencent": close, "sina": replace(close, source="sina")},
        evening,
        CFG,
        "XHKG",
    )
    assert d.kind == "confirmed"


def test_one_source_configured_evaluates_at_once() -> None:
    alone = PolicyConfig(order=("yahoo",), max_age=CFG.max_age)
    d = decide(quotes(q("yahoo", "43.05", 900, delayed=True)), NOW, alone, "XHKG")
    assert d.kind == "single" and d.source == "yahoo"


def test_a_switch_of_the_single_source_restarts_the_count() -> None:
    first = decide(quotes(q("tencent", "43", 1)), NOW, CFG, "XHKG")
    switched = decide(quotes(q("sina", "43", 1)), NOW, CFG, "XHKG", first.streak)
    assert switched.quote is None and switched.streak == Streak("sina", 1)


def test_two_agreeing_of_three_confirm_and_name_the_dissenter() -> None:
    d = decide(
        quotes(q("tencent", "43.05", 1), q("sina", "44.00", 1), q("yahoo", "43.04", 1)),
        NOW,
        CFG,
        "XHKG",
    )
    assert d.kind == "confirmed" and d.source == "tencent"
    assert d.confirmed_by == ("yahoo",) and d.dissent == ("sina",)


prices = st.decimals(min_value=Decimal("1"), max_value=Decimal("1000"), places=3)


@given(a=prices, b=prices, age_a=st.integers(0, 100), age_b=st.integers(0, 100))
def test_two_fresh_comparable_quotes_are_confirmed_iff_within_tolerance(
    a: Decimal, b: Decimal, age_a: int, age_b: int
) -> None:
    d = decide(quotes(q("tencent", str(a), age_a), q("sina", str(b), age_b)), NOW, CFG, "XHKG")
    close = abs(a - b) / b <= CFG.price_tolerance or abs(a - b) / a <= CFG.price_tolerance
    if d.kind == "confirmed":
        assert close
        assert d.quote is not None
        assert d.quote.time == max(NOW - timedelta(seconds=age_a), NOW - timedelta(seconds=age_b))
    else:
        assert d.kind == "disagreement" and d.quote is None
        assert not close


@given(age=st.integers(0, 3600), price=prices)
def test_a_single_stale_quote_is_never_evaluated(age: int, price: Decimal) -> None:
    d = decide(quotes(q("tencent", str(price), age)), NOW, CFG, "XHKG", Streak("tencent", 5))
    if age > 180:
        assert d.quote is None and d.stale == ("tencent",)
    else:
        assert d.quote is not None
