"""Retry timing of failed deliveries: a fixed schedule with a random spread."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# 5 s, 30 s, 2 min, 10 min, 30 min, then hourly (until the max age)
DEFAULT_SCHEDULE: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
# In-process retries of a command that delivers and exits (`outbox flush`, `replay --notify`).
CLI_SCHEDULE: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class Backoff:
    """Delay before attempt ``n + 1`` after ``n`` failures, with +/- ``jitter`` spread."""

    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    jitter: float = 0.2

    def delay(self, failures: int, rng: random.Random) -> float:
        base = self.schedule[min(max(failures, 1), len(self.schedule)) - 1]
        return base * (1.0 + rng.uniform(-self.jitter, self.jitter))


def span_text(seconds: float) -> str:
    """``42 s``, ``5 min``, ``1.5 h``: how long a delivery was tried."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


# A server's own wait (``Retry-After``, Discord ``retry_after``, ...) may lengthen ours up to
# this cap, never shorten it; beyond SANE_SERVER_WAIT it is nonsense and ignored.
SERVER_WAIT_CAP = 3600.0
SANE_SERVER_WAIT = 86400.0


def server_wait(value: object) -> float | None:
    """A server-supplied wait in seconds, or ``None`` when absent or not believable
    (non-numeric, NaN, infinite, negative, more than a day)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(seconds) or seconds < 0 or seconds > SANE_SERVER_WAIT:
        return None
    return seconds


def retry_delay(own: float, server: float | None, cap: float = SERVER_WAIT_CAP) -> float:
    """The wait before the next attempt: our own backoff ``own`` is the floor, a believable
    server wait may lengthen it up to ``cap``."""
    wait = server_wait(server)
    if wait is None:
        return own
    return max(own, min(wait, max(cap, own)))
