"""Ports: the protocols adapters implement. Fakes satisfy them without inheriting anything.

``bootstrap`` builds the adapters; everything else receives them typed by these protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from monitor.core.events import Event
from monitor.core.money import FxRate
from monitor.core.quote import Quote
from monitor.core.rules import RuleState
from monitor.core.valuation import Observation
from monitor.errors import SourceError
from monitor.notify.message import Message
from monitor.settings import SinkConfig
from monitor.store.blocks import RecordedRows
from monitor.store.outbox import OutboxRow
from monitor.store.sqlite import LastReading

if TYPE_CHECKING:
    import requests


class Clock(Protocol):
    """Where time comes from; the core never reads the clock itself."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


# -- inputs --------------------------------------------------------------------------------
class QuoteSource(Protocol):
    """One quote per symbol, carrying its source name and its own as-of time."""

    name: str

    def quote(self, symbol: str) -> Quote:
        """The latest quote of ``symbol``; ``SourceError`` (with a ``kind``) when there is none."""
        ...


class BatchQuoteSource(Protocol):
    """A quote source that answers many symbols in one request (Tencent, Sina).

    Each symbol maps to its ``Quote`` or to the ``SourceError`` (with a ``kind``:
    ``network``, ``bad_data``, ``not_found``, ``stale``...) that stands for it; one request per
    batch of at most the endpoint's list limit.
    """

    name: str

    def quotes(self, symbols: Sequence[str], now: datetime) -> Mapping[str, Quote | SourceError]:
        """The latest quote of every symbol in ``symbols``."""
        ...


class FxSource(Protocol):
    """Exchange rates with their source and as-of date."""

    def rate(self, base: str, quote: str, now: datetime) -> FxRate:
        """``base/quote`` as known at ``now``; ``SourceError`` when unavailable."""
        ...


class RankingSource(Protocol):
    """The global market-cap ranking: every company's cap in USD, largest first."""

    def companies(self, now: datetime) -> tuple[list[Any], datetime]:
        """The ranked companies and when they were fetched; ``SourceError`` on failure."""
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


class ObservationBlock(Protocol):
    """Rows of observations as columns (a tape's chunk read whole): what the engine's
    block path reads. Floats only pick rows; ``observation(j)`` is row ``j`` read exactly."""

    time: npt.NDArray[np.int64]  # seconds since the epoch
    symbol: npt.NDArray[np.int32]  # index into ``symbols``
    symbols: tuple[str, ...]
    currency: npt.NDArray[np.int32]  # index into ``currencies``
    currencies: tuple[str, ...]
    price: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]  # NaN: no day high
    fx: tuple[npt.NDArray[np.float64], ...]
    cutoffs: tuple[npt.NDArray[np.float64], ...]

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(base, quote) of each ``fx`` column."""
        ...

    @property
    def tops(self) -> tuple[int, ...]:
        """The N of each cutoff column."""
        ...

    def __len__(self) -> int: ...

    def rows_of(self) -> dict[str, npt.NDArray[np.int64]]:
        """Each symbol's rows to evaluate, in time order."""
        ...

    def observation(self, j: int) -> Observation:
        """Row ``j``, exactly as the row-by-row path reads it."""
        ...

    def later(self, j: int) -> Callable[[], Observation]:
        """``observation(j)`` when called: it holds row ``j``'s text, not the block."""
        ...

    @property
    def plan(self) -> Any:
        """Which column holds what: ``time``, ``price``, ``day_high``, ``fx``, ``cutoffs``."""
        ...

    def lines(self, rows: npt.NDArray[np.int64]) -> bytes:
        """The lines of ``rows`` (ascending) as written, each ending in a newline."""
        ...


class ObservationSource(Protocol):
    """Live inputs (quotes + FX + ranking) or a tape, as observations ready to evaluate.

    Besides ``poll``, the daemon's periodic jobs call the hooks below; a source with nothing
    to do for one returns an empty ``PollResult`` (or nothing).
    """

    def poll(self, symbols: Sequence[str], now: datetime) -> PollResult:
        """Fetch, validate and assemble one observation per symbol (where possible)."""
        ...

    def refresh_offhours(self, now: datetime) -> PollResult:
        """Outside sessions: refresh what the first poll of the next session needs."""
        ...

    def refresh_ranking(self, now: datetime) -> PollResult:
        """Refresh the global ranking (the daemon's slow job)."""
        ...

    def verify_symbols(self, now: datetime) -> None:
        """Start-up check: ``ConfigError`` for a symbol the source does not know."""
        ...

    @property
    def exhausted(self) -> bool:
        """True once a finite source (a tape) has nothing more to give."""
        ...

    def gauges(self) -> SourceGauges:
        """Cross-check gaps for the metrics."""
        ...


@dataclass(frozen=True)
class SourceGauges:
    """Relative gaps between independent sources, exported as metrics."""

    fx_disagreement: Mapping[str, Decimal] = field(default_factory=dict)
    shares_gap: Mapping[str, Decimal] = field(default_factory=dict)
    # seconds from each quote source's freshest quote to the poll, per source
    quote_age: Mapping[str, float] = field(default_factory=dict)


# -- state -----------------------------------------------------------------------------------
class Store(Protocol):
    """The state database (``monitor.store.Store`` is the SQLite one)."""

    def transaction(self) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...
    def meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def rule_states(self) -> dict[str, RuleState]: ...
    def last_times(self) -> dict[str, datetime]: ...
    def put_rule_states(self, rows: Iterable[tuple[RuleState, LastReading]]) -> None: ...
    def add_observations(self, rows: list[tuple[object, ...]]) -> None: ...
    def add_observation_blocks(self, blocks: Iterable[RecordedRows]) -> None: ...
    def add_events(self, events: Iterable[Event]) -> None: ...
    def last_price_before(self, symbol: str, moment: datetime) -> Decimal | None: ...
    def prune_observations(self, before: datetime) -> int: ...
    def enqueue(
        self, message_id: str, sink_id: str, kind: str, payload: dict[str, Any], now: float
    ) -> bool: ...
    def outbox_counts(self) -> dict[str, int]: ...
    def outbox_counts_by_sink(self) -> dict[tuple[str, str], int]: ...
    def outbox_pending(self, sink_id: str, limit: int = 100) -> list[OutboxRow]: ...
    def outbox_pending_sinks(self) -> set[str]: ...
    def outbox_age_base(self, row_id: int) -> float: ...
    def mark_delivered(self, row_id: int, now: float) -> None: ...
    def mark_failed(self, row_id: int, now: float, error: str, next_attempt_at: float) -> None: ...
    def mark_dead(self, row_id: int, now: float, error: str, *, attempted: bool = True) -> None: ...
    def hold(self, row_id: int, until: float, now: float) -> None: ...


# -- delivery --------------------------------------------------------------------------------
class Sink(Protocol):
    """One configured destination."""

    config: SinkConfig

    @property
    def where(self) -> str:
        """The sink as shown in errors: id and URL with secrets masked."""
        ...

    def deliver(self, message: Message, session: requests.Session, now: float) -> str:
        """Send ``message``; return a short success note or raise ``DeliveryError``."""
        ...


@dataclass(frozen=True)
class DeliveryStats:
    """What one dispatcher pass did."""

    delivered: int = 0
    failed: int = 0
    dead: int = 0
    pending: int = 0


class DeliveryClaim(Protocol):
    """The right to deliver from a shared outbox: one process (or instance) at a time."""

    @property
    def held(self) -> bool:
        """Whether this process has it (as of its last ``try_acquire``)."""
        ...

    def try_acquire(self) -> bool:
        """Take or keep it; True while this process has it."""
        ...

    def release(self) -> None: ...

    def holder(self) -> str:
        """Who has it (a pid, an instance name), ``?`` when unknown."""
        ...


class Dispatcher(Protocol):
    """Sends due outbox rows; marks a row delivered only after the receiver's success."""

    def deliver_due(self, now: float) -> DeliveryStats:
        """Attempt every delivery due at ``now`` (unix seconds) once."""
        ...

    def close(self) -> None:
        """Stop background work and release the database."""
        ...


# -- several instances on one database -------------------------------------------------------
@dataclass(frozen=True)
class RoleView:
    """What this instance is now: ``leader`` (polls, evaluates, writes) or ``follower``."""

    role: str  # "leader" or "follower"
    me: str  # this instance, "host:pid"
    leader: str  # the leading instance ("" when unknown)
    epoch: int  # the leader epoch (0 with one instance on SQLite)
    since: datetime | None  # when ``leader`` took over, if known
    shared: bool = False  # True when instances share the database (PostgreSQL)
    note: str = ""  # why this instance cannot lead now (the server unreachable...)

    @property
    def leading(self) -> bool:
        return self.role == "leader"

    def describe(self) -> str:
        """``leader`` or ``follower of HOST:PID since ...`` (``STATUS=``, ``status``)."""
        if self.leading:
            return f"leader (epoch {self.epoch})" if self.shared else "leader"
        since = f" since {self.since.isoformat(timespec='seconds')}" if self.since else ""
        return f"follower of {self.leader or '?'}{since}"


class Role(Protocol):
    """Leadership among instances sharing one database; one instance alone always leads."""

    interval: float
    """Seconds between two ``check`` calls (the daemon's ``lead`` job)."""

    def check(self) -> RoleView:
        """Take or keep leadership if possible; what this instance is now."""
        ...

    def lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` (raised by a write) means leadership or the database was lost; if so,
        this instance is a follower until the next ``check`` wins again."""
        ...

    def release(self) -> None:
        """Give leadership (and any lease) up, at stop."""
        ...
