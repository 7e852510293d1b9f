"""Which share count is in force on a day: the newest configured count dated on or before it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from monitor.core.valuation import SharesCount


class DatedCount(Protocol):
    """One entry of a symbol's share-count history."""

    @property
    def since(self) -> date: ...
    @property
    def shares(self) -> int: ...
    @property
    def source(self) -> str: ...


class ShareHistory(Protocol):
    """What a symbol's configuration says about its share count."""

    @property
    def shares(self) -> int: ...
    @property
    def shares_as_of(self) -> date | None: ...
    @property
    def shares_source(self) -> str: ...
    @property
    def shares_history(self) -> Sequence[DatedCount]: ...


def shares_on(cfg: ShareHistory, day: date) -> SharesCount:
    """Shares counted on ``day``: the newest configured count in force then.

    Before the oldest known count, the oldest is used (documented approximation).
    """
    entries = [(c.since, c.shares, c.source) for c in cfg.shares_history]
    entries.append((cfg.shares_as_of or date.min, cfg.shares, cfg.shares_source))
    entries.sort()
    chosen = entries[0]
    for entry in entries:
        if entry[0] <= day:
            chosen = entry
    since, total, source = chosen
    return SharesCount(total, source, None if since == date.min else since)
