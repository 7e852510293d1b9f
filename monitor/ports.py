"""Ports: the protocols adapters implement. Fakes satisfy them without inheriting anything."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from monitor.core.valuation import Observation


class Clock(Protocol):
    """Where time comes from; the core never reads the clock itself."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


@dataclass(frozen=True)
class SourceFailure:
    """One source that failed for one symbol (or pair) in a poll, with a metrics label."""

    source: str  # "yahoo", "ecb", "ranking", "tape"
    subject: str  # symbol or FX pair
    kind: str  # "network", "rate_limited", "not_found", "bad_data", "stale", "spike"
    message: str


@dataclass
class PollResult:
    """What one poll cycle brought in: observations to evaluate and what went wrong."""

    observations: list[Observation] = field(default_factory=list)
    failures: list[SourceFailure] = field(default_factory=list)
    # symbols whose quote was stale (not evaluated) in this poll
    stale: list[str] = field(default_factory=list)
    # e.g. "HKD/CNY": "no fresh FX rate (yahoo: network; ecb: network; last 2025-02-01)"
    blocked_pairs: dict[str, str] = field(default_factory=dict)


class ObservationSource(Protocol):
    """Live inputs (Yahoo + FX + ranking) or a tape, as observations ready to evaluate."""

    def poll(self, symbols: Sequence[str], now: datetime) -> PollResult:
        """Fetch, validate and assemble one observation per symbol (where possible)."""
        ...


@dataclass(frozen=True)
class DeliveryStats:
    """What one dispatcher pass did."""

    delivered: int = 0
    failed: int = 0
    dead: int = 0
    pending: int = 0


class Dispatcher(Protocol):
    """Sends due outbox rows; marks a row delivered only after the receiver's success."""

    def deliver_due(self, now: float) -> DeliveryStats:
        """Attempt every delivery due at ``now`` (unix seconds) once."""
        ...
