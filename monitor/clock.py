"""The real clock: the one place the program reads the wall-clock time."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """The real time, timezone-aware (UTC) (``ports.Clock``)."""

    def now(self) -> datetime:
        return datetime.now(UTC)
