"""Retry timing of failed deliveries: a fixed schedule with a random spread."""

from __future__ import annotations

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
