"""Quiet hours: a daily window, in the sink's time zone, during which alerts are held."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.store.outbox import OutboxRow

CROSSINGS = ("crossed_above", "crossed_below", "touched_above")


@dataclass(frozen=True)
class QuietHours:
    """``start``-``end`` local times; a window that wraps midnight (23:00-07:00) is fine."""

    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, spec: str | None, timezone: str) -> QuietHours | None:
        """``"23:00-07:00"`` (validated by the settings) or ``None``."""
        if not spec:
            return None
        first, second = spec.split("-")
        start = time.fromisoformat(first.strip())
        end = time.fromisoformat(second.strip())
        if start == end:
            return None
        return cls(start, end, ZoneInfo(timezone))

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def held_until(self, now: float) -> float | None:
        """If ``now`` is inside the window, when the window ends (unix seconds); else ``None``."""
        moment = datetime.fromtimestamp(now, self.zone)
        if not self.contains(moment):
            return None
        day = moment.date()
        for offset in (0, 1):
            end = datetime.combine(day + timedelta(days=offset), self.end, tzinfo=self.zone)
            if end > moment:
                return end.timestamp()
        return None  # pragma: no cover - one of the two days always ends later


def superseded_by(row: OutboxRow, later: Sequence[OutboxRow]) -> str | None:
    """For a row held by quiet hours: the later crossing of the same rule, if any."""
    held = row.attempts == 0 and row.next_attempt_at > row.created_at
    if row.kind not in CROSSINGS or not held:
        return None
    rule = row.payload.get("rule")
    newer = [r for r in later if r.kind in CROSSINGS and r.payload.get("rule") == rule]
    if not newer:
        return None
    last = newer[-1]
    return f"{last.kind} at {last.payload.get('time', '')}"
