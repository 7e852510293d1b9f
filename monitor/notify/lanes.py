"""What one delivery pass over a sink's lane found, and the totals of a pass."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.ports import DeliveryStats


@dataclass
class LaneResult:
    """One pass over one sink's rows."""

    delivered: int = 0
    failed: int = 0
    dead: int = 0
    held: int = 0
    retry_at: float | None = None  # when this lane has a row to retry
    held_until: float | None = None  # when its quiet hours end, if rows are held
    more: bool = False  # the batch was full: go again at once


@dataclass
class Totals:
    results: list[LaneResult] = field(default_factory=list)

    def stats(self, pending: int) -> DeliveryStats:
        return DeliveryStats(
            delivered=sum(r.delivered for r in self.results),
            failed=sum(r.failed for r in self.results),
            dead=sum(r.dead for r in self.results),
            pending=pending,
        )
