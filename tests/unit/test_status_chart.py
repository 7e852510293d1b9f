"""The status page's chart window: 30 trading days and the newest one, downsampled."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from monitor.daemon.status_page.chart import BUCKET, DAYS, RuleWindow
from monitor.history.series import Point

HK = ZoneInfo("Asia/Hong_Kong")


def point(moment: datetime, value: int) -> Point:
    return Point(moment, Decimal(value), Decimal(1000), Decimal(value), "below")


def filled(days: int, minutes_last_day: int) -> tuple[RuleWindow, list[Point]]:
    window = RuleWindow("HKD", HK, Decimal("0.01"))
    start = datetime(2025, 1, 2, 16, 0, tzinfo=HK)
    added = [point(start + timedelta(days=d), 900 + d) for d in range(days)]
    last_day = (start + timedelta(days=days)).replace(hour=9, minute=30)
    added += [point(last_day + timedelta(minutes=m), 950 + m) for m in range(minutes_last_day)]
    for p in added:
        window.add(p)
    return window, added


def test_the_window_keeps_one_close_per_day_for_30_days_and_the_newest_day() -> None:
    window, added = filled(45, 0)
    assert len(window.days) == DAYS + 1
    xs = [x for x, _ in window.points()]
    assert xs == [float(i) for i in range(DAYS + 1)]
    assert window.points()[-1][1] == added[-1]
    assert window.points()[0][1] == added[-(DAYS + 1)]


def test_the_newest_day_is_shown_in_buckets_not_every_minute() -> None:
    window, added = filled(10, 120)
    today = [p for x, p in window.points() if x >= 10]
    assert len(today) == 120 // int(BUCKET.total_seconds() // 60)
    assert today[-1] == added[-1]  # each bucket shows its last observation
    # yesterday's intraday buckets are gone once a new day starts
    window.add(point(added[-1].time + timedelta(days=1), 1200))
    assert len(window.points()) == 12


def test_an_event_sits_at_its_day_or_at_its_time_on_the_newest_day() -> None:
    window, added = filled(10, 120)
    assert window.x_of(added[3].time) == 3.0
    assert window.x_of(added[0].time - timedelta(days=40)) is None
    xs = [x for x, _ in window.points()]
    late = window.x_of(added[-1].time)
    assert late == xs[-1]
    early = window.x_of(added[11].time + timedelta(minutes=1))
    assert early is not None and 10 <= early < late


def test_a_point_already_folded_in_is_not_counted_twice() -> None:
    window, added = filled(5, 0)
    before = window.points()
    window.add(added[-1])
    assert window.points() == before
