"""HKEX sessions from exchange-calendars (XHKG) and the poll planner, on a fake clock."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.daemon.trading_calendar import PollPlanner, TradingCalendar

HKT = ZoneInfo("Asia/Hong_Kong")


def hkt(day: str, hhmm: str) -> float:
    """Unix time of a Hong Kong wall-clock time."""
    return datetime.fromisoformat(f"{day}T{hhmm}:00").replace(tzinfo=HKT).timestamp()


@pytest.fixture(scope="module")
def xhkg() -> TradingCalendar:
    return TradingCalendar.from_exchange("XHKG", date(2025, 1, 1), date(2025, 12, 31))


def test_a_normal_day_trades_morning_and_afternoon_but_not_at_lunch(xhkg: TradingCalendar) -> None:
    day = "2025-02-10"  # Monday
    assert not xhkg.trading(hkt(day, "09:29"))
    assert xhkg.trading(hkt(day, "09:30"))
    assert xhkg.trading(hkt(day, "11:59"))
    assert not xhkg.trading(hkt(day, "12:30"))  # lunch break 12:00-13:00
    assert xhkg.trading(hkt(day, "13:00"))
    assert xhkg.trading(hkt(day, "15:59"))
    assert not xhkg.trading(hkt(day, "16:00"))


def test_saturday_and_holidays_do_not_trade(xhkg: TradingCalendar) -> None:
    assert not xhkg.trading(hkt("2025-02-08", "10:00"))  # Saturday
    assert not xhkg.trading(hkt("2025-01-29", "10:00"))  # Lunar New Year
    assert not xhkg.trading(hkt("2025-04-18", "10:00"))  # Good Friday
    assert not xhkg.trading(hkt("2025-12-25", "10:00"))  # Christmas


def test_lunar_new_years_eve_is_a_half_day_closing_at_noon(xhkg: TradingCalendar) -> None:
    session = xhkg.session_at(hkt("2025-01-28", "10:00"))
    assert session is not None
    assert session.close == hkt("2025-01-28", "12:00")
    assert session.break_start is None
    assert xhkg.trading(hkt("2025-01-28", "11:59"))
    assert not xhkg.trading(hkt("2025-01-28", "12:00"))
    assert not xhkg.trading(hkt("2025-01-28", "14:00"))  # no afternoon session


def test_next_open_skips_lunch_weekends_and_holidays(xhkg: TradingCalendar) -> None:
    assert xhkg.next_open(hkt("2025-02-10", "12:15")) == hkt("2025-02-10", "13:00")
    assert xhkg.next_open(hkt("2025-02-08", "10:00")) == hkt("2025-02-10", "09:30")
    # Lunar New Year: 28 Jan half day, 29-31 Jan closed, weekend, open Mon 3 Feb
    assert xhkg.next_open(hkt("2025-01-28", "12:30")) == hkt("2025-02-03", "09:30")


def planner(cal: TradingCalendar, delay: float = 0.0) -> PollPlanner:
    return PollPlanner({"XHKG": cal}, {"1810.HK": "XHKG"}, close_delay=delay)


def test_planner_polls_in_session_and_skips_saturday_holiday_and_lunch(
    xhkg: TradingCalendar,
) -> None:
    p = planner(xhkg)
    p.plan(hkt("2025-02-07", "16:05"))  # take Friday's close first
    assert p.plan(hkt("2025-02-07", "10:00")).reasons == {"1810.HK": "session"}
    assert not p.plan(hkt("2025-02-08", "10:00"))  # Saturday
    assert p.plan(hkt("2025-02-10", "10:00")).symbols == ("1810.HK",)
    assert not p.plan(hkt("2025-02-10", "12:30"))  # lunch
    assert p.plan(hkt("2025-02-10", "13:30")).symbols == ("1810.HK",)


def test_planner_skips_a_holiday(xhkg: TradingCalendar) -> None:
    p = planner(xhkg)
    p.plan(hkt("2025-04-17", "10:00"))
    p.plan(hkt("2025-04-17", "16:01"))  # Thursday's close
    for hhmm in ("09:30", "10:00", "14:00", "16:30"):
        assert not p.plan(hkt("2025-04-18", hhmm)), hhmm  # Good Friday


def test_the_first_poll_after_the_close_takes_the_official_close_once(
    xhkg: TradingCalendar,
) -> None:
    p = planner(xhkg, delay=20 * 60)
    assert p.plan(hkt("2025-02-10", "15:59")).reasons == {"1810.HK": "session"}
    assert not p.plan(hkt("2025-02-10", "16:10"))  # waiting for the closing auction
    close = p.plan(hkt("2025-02-10", "16:21"))
    assert close.reasons == {"1810.HK": "close"}
    assert close.closed_sessions["XHKG"].day == date(2025, 2, 10)
    assert not p.plan(hkt("2025-02-10", "16:22"))
    assert not p.plan(hkt("2025-02-10", "23:00"))


def test_the_half_day_close_is_honoured(xhkg: TradingCalendar) -> None:
    p = planner(xhkg, delay=20 * 60)
    assert p.plan(hkt("2025-01-28", "11:59")).reasons == {"1810.HK": "session"}
    assert not p.plan(hkt("2025-01-28", "12:10"))
    close = p.plan(hkt("2025-01-28", "12:20"))
    assert close.reasons == {"1810.HK": "close"}
    assert close.closed_sessions["XHKG"].day == date(2025, 1, 28)
    for hhmm in ("13:00", "14:00", "15:59", "16:30"):
        assert not p.plan(hkt("2025-01-28", hhmm)), hhmm


def test_the_lunch_break_does_not_trigger_a_close_poll(xhkg: TradingCalendar) -> None:
    p = planner(xhkg)
    assert p.plan(hkt("2025-02-10", "11:55"))
    assert not p.plan(hkt("2025-02-10", "12:05"))
    assert not p.plan(hkt("2025-02-10", "12:55"))


def test_a_tape_calendar_is_always_in_session() -> None:
    p = PollPlanner({"ALWAYS": TradingCalendar.always()}, {"T": "ALWAYS"})
    assert p.plan(hkt("2025-02-08", "03:00")).symbols == ("T",)
    assert p.in_session(hkt("2025-12-25", "10:00"))
