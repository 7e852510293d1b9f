"""A recorded tape as an ``ObservationSource``: the whole daemon without the internet.

``speed = 0``: each poll hands out the next row of every polled symbol. ``speed > 0``: tape
time runs ``speed`` times faster than the clock from the first poll on, and a poll hands out
every row whose tape time has come.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from monitor.core.valuation import Observation
from monitor.errors import InputError
from monitor.ports import PollResult, SourceFailure, SourceGauges
from monitor.sources.tape import TapeReader, quality_filtered


class TapeSource:
    """Feeds a CSV tape row by row; rows at or before ``resume_after[symbol]`` are skipped."""

    def __init__(
        self,
        path: Path,
        speed: float = 0.0,
        resume_after: Mapping[str, datetime] | None = None,
        max_jump: Mapping[str, Decimal] | None = None,
        last_prices: Mapping[str, Decimal] | None = None,
    ) -> None:
        """``last_prices``: each symbol's last stored price, the spike check's first reference
        (``Store.last_prices()``)."""
        self.path = path
        self.speed = speed
        self._resume = dict(resume_after or {})
        # rows held back by the live quote-quality (spike) check, per symbol
        self.held: Counter[str] = Counter()
        rows: Iterable[Observation] = TapeReader(path)
        if max_jump is not None:
            rows = quality_filtered(rows, max_jump, self.held, last_prices)
        self._rows: Iterator[Observation] = iter(rows)
        self._queues: dict[str, deque[Observation]] = {}
        self._lookahead: Observation | None = None
        self._done = False
        self._start: tuple[float, datetime] | None = None  # (wall time, tape time) at start
        self.exhausted = False

    def _next_row(self) -> Observation | None:
        while not self._done:
            try:
                obs = next(self._rows)
            except StopIteration:
                self._done = True
                return None
            last = self._resume.get(obs.symbol)
            if last is None or obs.time > last:
                return obs
        return None

    def _fill(self, symbol: str, wanted: set[str]) -> None:
        """Read ahead until ``symbol`` has a queued row (or the tape ends)."""
        queue = self._queues.setdefault(symbol, deque())
        while not queue and not self._done:
            obs = self._next_row()
            if obs is None:
                return
            if obs.symbol in wanted or obs.symbol == symbol:
                self._queues.setdefault(obs.symbol, deque()).append(obs)

    def poll(self, symbols: Sequence[str], now: datetime) -> PollResult:
        """Observations due at ``now`` for ``symbols``; a bad tape row is a source failure."""
        try:
            timed = self.speed > 0
            observations = self._timed(symbols, now) if timed else self._stepped(symbols)
        except InputError as exc:
            self._done = True
            failure = SourceFailure("tape", ",".join(symbols), "bad_data", exc.one_line())
            return PollResult(failures=[failure])
        self.exhausted = self._done and not any(self._queues.values()) and not self._lookahead
        return PollResult(observations=observations)

    def refresh_offhours(self, now: datetime) -> PollResult:
        """Nothing to refresh: a tape carries its own FX rates."""
        return PollResult()

    def refresh_ranking(self, now: datetime) -> PollResult:
        """Nothing to refresh: a tape carries its own ranking cutoffs."""
        return PollResult()

    def verify_symbols(self, now: datetime) -> None:
        """A tape row of an unknown symbol is an input error at its line, when read."""

    def gauges(self) -> SourceGauges:
        """No second source to compare with."""
        return SourceGauges()

    def _stepped(self, symbols: Sequence[str]) -> list[Observation]:
        wanted = set(symbols)
        out: list[Observation] = []
        for symbol in symbols:
            self._fill(symbol, wanted)
            queue = self._queues.get(symbol)
            if queue:
                out.append(queue.popleft())
        return out

    def _timed(self, symbols: Sequence[str], now: datetime) -> list[Observation]:
        wanted = set(symbols)
        if self._lookahead is None:
            self._lookahead = self._next_row()
        if self._lookahead is None:
            return []
        if self._start is None:
            self._start = (now.timestamp(), self._lookahead.time)
        wall0, tape0 = self._start
        elapsed = (now.timestamp() - wall0) * self.speed
        out: list[Observation] = []
        while self._lookahead is not None:
            if (self._lookahead.time - tape0).total_seconds() > elapsed:
                break
            if self._lookahead.symbol in wanted:
                out.append(self._lookahead)
            self._lookahead = self._next_row()
        return out
