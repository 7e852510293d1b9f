"""Each rule's chart window, kept in memory and downsampled as observations arrive.

The window is the last ``DAYS`` trading days (one point per day: its last observation) plus
the newest day intraday (one point per ``BUCKET``). The first build reads the window once;
later ones read only what the poll added, so a request never scans a year of rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, cast
from zoneinfo import ZoneInfo

from monitor.core.events import Event, event_from_dict
from monitor.history.series import Point, rule_series
from monitor.settings import Settings

if TYPE_CHECKING:
    from monitor.store import Store

DAYS = 30  # trading days before the newest one
BUCKET = timedelta(minutes=5)  # intraday resolution of the newest day
LOOKBACK = timedelta(days=DAYS * 7 // 5 + 21)  # calendar days that hold DAYS trading days
MARKED = ("touched_above", "crossed_above", "crossed_below")


class SeriesReader(Protocol):
    """What ``history.series.rule_series`` and the events list read."""

    def observations(self, since: datetime | None = None) -> list[dict[str, Any]]: ...
    def events(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]: ...


@dataclass
class RuleWindow:
    """One rule's points: a close per past day and the newest day's buckets."""

    currency: str
    zone: ZoneInfo
    hysteresis: Decimal
    days: dict[date, Point] = field(default_factory=dict)
    today: dict[datetime, Point] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    last: datetime | None = None

    def add(self, point: Point) -> None:
        if self.last is not None and point.time <= self.last:
            return  # already folded in (the incremental read starts at the last time)
        self.last = point.time
        day = point.time.astimezone(self.zone).date()
        newest = max(self.days) if self.days else None
        if newest is not None and day > newest:
            self.today = {}
        self.days[day] = point
        bucket = point.time - (point.time - datetime.min.replace(tzinfo=point.time.tzinfo)) % BUCKET
        self.today[bucket] = point
        for old in sorted(self.days)[: -(DAYS + 1)]:
            del self.days[old]

    def points(self) -> list[tuple[float, Point]]:
        """(x, point): past day i at x = i, the newest day spread over the last slot(s)."""
        if not self.days:
            return []
        ordered = sorted(self.days)
        out = [(float(i), self.days[d]) for i, d in enumerate(ordered[:-1])]
        base = float(len(ordered) - 1)
        intraday = [self.today[k] for k in sorted(self.today)]
        if len(intraday) <= 1:
            return [*out, (base, self.days[ordered[-1]])]
        span = max(1.0, base / 4)
        first, last = intraday[0].time, intraday[-1].time
        whole = (last - first).total_seconds()
        return out + [(base + span * (p.time - first).total_seconds() / whole, p) for p in intraday]

    def x_of(self, moment: datetime) -> float | None:
        """Where an event at ``moment`` sits on the x axis (None: outside the window)."""
        pts = self.points()
        if not pts:
            return None
        day = moment.astimezone(self.zone).date()
        ordered = sorted(self.days)
        if day == ordered[-1]:
            today = [(x, p) for x, p in pts if p.time.astimezone(self.zone).date() == day]
            before = [x for x, p in today if p.time <= moment]
            return before[-1] if before else today[0][0]
        if day in self.days:
            return float(ordered.index(day))
        return None


class ChartCache:
    """Every rule's window, refreshed from the store once per poll (by the caller)."""

    def __init__(self) -> None:
        self.windows: dict[str, RuleWindow] = {}
        self._settings: Settings | None = None
        self._since: datetime | None = None

    def refresh(
        self, settings: Settings, store: SeriesReader, latest: Mapping[str, dict[str, Any]]
    ) -> None:
        """Fold in what was stored since the last refresh (all of the window the first time,
        back from the newest of ``latest``, the store's latest observations)."""
        if settings is not self._settings:
            self._settings, self._since, self.windows = settings, None, {}
        since = self._since
        if since is None:
            times = [datetime.fromisoformat(str(o["time"])) for o in latest.values()]
            if not times:
                return
            since = max(times) - LOOKBACK
            self.windows = {
                r.id: RuleWindow(
                    "USD" if r.top_n is not None else str(r.currency),
                    ZoneInfo(settings.symbol(r.symbol).timezone),
                    r.hysteresis,
                )
                for r in settings.rules
            }
        newest = since
        # rule_series is typed for the SQLite store; any store with these reads will do
        for series in rule_series(settings, cast("Store", store), since=since):
            window = self.windows.get(series.rule.id)
            if window is None:
                continue
            for point in series.points:
                window.add(point)
                newest = max(newest, point.time)
        starts = [
            datetime.combine(min(w.days), time.min, w.zone) for w in self.windows.values() if w.days
        ]
        for window in self.windows.values():
            window.events = []
        for row in store.events(since=min(starts)) if starts else ():
            event = event_from_dict(row)
            window = self.windows.get(event.rule_id)
            if window is None or not window.days or event.kind not in MARKED:
                continue
            if event.time.astimezone(window.zone).date() >= min(window.days):
                window.events.append(event)
        self._since = newest
