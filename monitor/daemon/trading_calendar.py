"""Exchange sessions (open, lunch break, close, half days, holidays) and when to poll.

Sessions come from the maintained ``exchange-calendars`` package (``XHKG`` for Hong Kong) and
are copied once into plain floats (unix seconds), so asking "is it trading now?" on every poll
costs a bisect, not a pandas lookup. Time is always an argument: nothing here reads the clock.
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from monitor.errors import ConfigError

ALWAYS_OPEN = "ALWAYS"  # pseudo-exchange for tapes: every moment is in session


@dataclass(frozen=True, slots=True)
class Session:
    """One trading day: times in unix seconds; no break on half days."""

    day: date
    open: float
    close: float
    break_start: float | None = None
    break_end: float | None = None

    def trading(self, t: float) -> bool:
        """Whether the continuous market is open at ``t`` (inside the session, not at lunch)."""
        if not self.open <= t < self.close:
            return False
        if self.break_start is not None and self.break_end is not None:
            return not self.break_start <= t < self.break_end
        return True


class TradingCalendar:
    """An exchange's sessions over a window of days."""

    def __init__(self, code: str, sessions: Iterable[Session], *, always_open: bool = False):
        self.code = code
        self.always_open = always_open
        self.sessions: tuple[Session, ...] = tuple(sorted(sessions, key=lambda s: s.open))
        self._opens = [s.open for s in self.sessions]
        self._closes = [s.close for s in self.sessions]

    @classmethod
    def always(cls) -> TradingCalendar:
        """A calendar that is always in session (tape mode)."""
        return cls(ALWAYS_OPEN, (), always_open=True)

    @classmethod
    def from_exchange(cls, code: str, start: date, end: date) -> TradingCalendar:
        """Sessions of exchange ``code`` (e.g. ``XHKG``) from ``start`` to ``end`` inclusive."""
        # exchange-calendars trips pandas deprecation warnings of its own; they are not ours
        # to fix and must not break a strict ``-W error`` run.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            import exchange_calendars as xcals  # heavy (pandas): only the daemon needs it

            try:
                cal = xcals.get_calendar(code, start=start.isoformat(), end=end.isoformat())
            except xcals.errors.InvalidCalendarName:
                raise ConfigError(
                    f"unknown exchange calendar {code!r}",
                    "symbols.exchange",
                    "use an ISO 10383 MIC known to exchange-calendars, e.g. XHKG for Hong Kong",
                ) from None
            schedule = cal.schedule
        sessions: list[Session] = []
        has_breaks = "break_start" in schedule.columns
        for label, row in schedule.iterrows():
            brk_s = row["break_start"] if has_breaks else None
            brk_e = row["break_end"] if has_breaks else None
            sessions.append(
                Session(
                    label.date(),
                    row["open"].timestamp(),
                    row["close"].timestamp(),
                    None if brk_s is None or brk_s != brk_s else brk_s.timestamp(),
                    None if brk_e is None or brk_e != brk_e else brk_e.timestamp(),
                )
            )
        return cls(code, sessions)

    @property
    def covers_until(self) -> float:
        """The last close this calendar knows (inf for an always-open calendar)."""
        if self.always_open:
            return float("inf")
        return self._closes[-1] if self._closes else float("-inf")

    def session_at(self, t: float) -> Session | None:
        """The session whose open <= t < close (lunch break included), if any."""
        i = bisect.bisect_right(self._opens, t) - 1
        if i >= 0 and t < self.sessions[i].close:
            return self.sessions[i]
        return None

    def trading(self, t: float) -> bool:
        """Whether the continuous market is open at ``t``."""
        if self.always_open:
            return True
        found = self.session_at(t)
        return found is not None and found.trading(t)

    def last_closed(self, t: float) -> Session | None:
        """The latest session that closed at or before ``t``."""
        i = bisect.bisect_right(self._closes, t) - 1
        return self.sessions[i] if i >= 0 else None

    def next_open(self, t: float) -> float | None:
        """The first moment at or after ``t`` when trading runs: now, a break's end or an open."""
        if self.always_open:
            return t
        current = self.session_at(t)
        if current is not None:
            if current.trading(t):
                return t
            if current.break_end is not None and t < current.break_end:
                return current.break_end
        i = bisect.bisect_right(self._opens, t)
        return self.sessions[i].open if i < len(self.sessions) else None


def build_calendars(
    exchanges: Iterable[str], now: datetime, *, always_open: bool = False
) -> dict[str, TradingCalendar]:
    """One calendar per exchange covering a week back and a year ahead of ``now``."""
    if always_open:
        return {code: TradingCalendar.always() for code in set(exchanges)}
    start = (now - timedelta(days=10)).date()
    end = (now + timedelta(days=370)).date()
    return {code: TradingCalendar.from_exchange(code, start, end) for code in set(exchanges)}


PollReason = Literal["session", "close"]


@dataclass(frozen=True)
class PollPlan:
    """Which symbols one poll tick fetches, and why (``close``: the official close)."""

    symbols: tuple[str, ...]
    reasons: Mapping[str, PollReason]
    closed_sessions: Mapping[str, Session]  # exchange -> session whose close is being taken

    def __bool__(self) -> bool:
        return bool(self.symbols)


class PollPlanner:
    """Decides per tick which symbols are worth a quote request.

    In session: every symbol of that exchange. Outside sessions: nothing, except once after
    each close (``close_delay`` seconds later, for the closing auction and delayed quotes) to
    evaluate the official close.
    """

    def __init__(
        self,
        calendars: Mapping[str, TradingCalendar],
        symbol_exchange: Mapping[str, str],
        *,
        close_delay: float = 0.0,
        closes_taken: Mapping[str, float] | None = None,
    ) -> None:
        self.calendars = dict(calendars)
        self.close_delay = close_delay
        self._by_exchange: dict[str, list[str]] = {}
        for symbol, code in symbol_exchange.items():
            self._by_exchange.setdefault(code, []).append(symbol)
        # exchange -> close time (unix) of the last session whose close poll was made
        self.closes_taken: dict[str, float] = dict(closes_taken or {})

    def in_session(self, t: float) -> bool:
        """Whether any watched exchange is trading at ``t``."""
        return any(self.calendars[code].trading(t) for code in self._by_exchange)

    def plan(self, t: float) -> PollPlan:
        """The symbols to poll at ``t``; marks a close as taken once it is planned."""
        symbols: list[str] = []
        reasons: dict[str, PollReason] = {}
        closed: dict[str, Session] = {}
        for code, members in self._by_exchange.items():
            cal = self.calendars[code]
            reason: PollReason | None = None
            if cal.trading(t):
                reason = "session"
                # Quotes taken in this session supersede any earlier close still owed.
                prev = cal.last_closed(t)
                if prev is not None:
                    self.closes_taken[code] = max(
                        self.closes_taken.get(code, prev.close), prev.close
                    )
            else:
                last = cal.last_closed(t - self.close_delay)
                if last is not None and self.closes_taken.get(code, float("-inf")) < last.close:
                    reason = "close"
                    self.closes_taken[code] = last.close
                    closed[code] = last
            if reason is not None:
                for symbol in members:
                    symbols.append(symbol)
                    reasons[symbol] = reason
        return PollPlan(tuple(symbols), reasons, closed)

    def next_trading(self, t: float) -> float | None:
        """The earliest moment after ``t`` any watched exchange trades."""
        found = [self.calendars[c].next_open(t) for c in self._by_exchange]
        known = [x for x in found if x is not None]
        return min(known) if known else None
