"""One tick: valuate observations, evaluate rules, persist and enqueue, in one transaction."""

from __future__ import annotations

import bisect
import contextlib
import functools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from monitor.core.band import Rates
from monitor.core.evaluate import QuietBand, Skipped, evaluate, quiet_band, read_rule
from monitor.core.events import Event, event_to_dict, stable_id
from monitor.core.money import BOUNDS, path_legs
from monitor.core.prefilter import LineRows, effective_rates, line_rows, may_fall, may_rise
from monitor.core.rules import RankRule, Rule, RuleState, ThresholdRule
from monitor.core.shares import shares_on
from monitor.core.valuation import Observation, SharesCount, valuate
from monitor.errors import InputError
from monitor.ports import ObservationBlock, Store
from monitor.settings import RuleConfig, Settings, SinkConfig, SymbolConfig
from monitor.store.blocks import RecordedRows, SymbolSpan, pack
from monitor.store.schema import WATERMARK
from monitor.store.sqlite import LastReading, utc_iso
from monitor.store.sqlite import Store as SqliteStore

SUMMARY_SENT = "baseline_summary_sent"
# each symbol's newest evaluated observation (or a block's row, read when wanted), with its
# shares and trading day
_Newest = dict[str, tuple[Observation | Callable[[], Observation], SharesCount, date]]
# after this many quiet bands in a row that missed the very next row, the next BAND_REST
# evaluated rows build none (the band is only ever a shortcut: results are the same)
BAND_MISSES = 4
BAND_REST = 16
_PRICE_BOUNDS = BOUNDS["price"]


def build_rule(cfg: RuleConfig) -> Rule:
    """The core rule for one ``[[rules]]`` entry."""
    notify = frozenset(cfg.notify_on)
    if cfg.top_n is not None:
        return RankRule(
            cfg.id, cfg.symbol, cfg.top_n,
            hysteresis=cfg.hysteresis, confirm=cfg.confirm, notify_on=notify,
        )  # fmt: skip
    assert cfg.threshold is not None and cfg.currency is not None
    return ThresholdRule(
        cfg.id, cfg.symbol, cfg.threshold, cfg.currency,
        hysteresis=cfg.hysteresis, confirm=cfg.confirm, notify_on=notify,
    )  # fmt: skip


def wants(sink: SinkConfig, rule: RuleConfig, kind: str) -> bool:
    """Whether a sink subscribes to one event kind of one rule."""
    if kind not in rule.notify_on:
        return False
    if sink.rules is not None and rule.id not in sink.rules:
        return False
    return sink.kinds is None or kind in sink.kinds


class _Day(NamedTuple):
    """One local trading day of a symbol as a UTC window, with the shares counted then."""

    start: datetime
    end: datetime
    day: date
    shares: SharesCount
    start_ts: float  # the window in seconds since the epoch
    end_ts: float


@dataclass
class _SymbolContext:
    """What the hot loop needs per symbol, looked up once, and what it last learned."""

    cfg: SymbolConfig
    zone: ZoneInfo
    rules: tuple[Rule, ...]
    name: str
    day: _Day | None = None
    band: QuietBand | None = None
    # bands that missed on their next row in a row, and rows left before building one again
    misses: int = 0
    cooldown: int = 0
    # the shares counted on every day (None: a dated share history counts them per day)
    shares: SharesCount | None = field(init=False)

    def __post_init__(self) -> None:
        self.shares = None if self.cfg.shares_history else shares_on(self.cfg, date.min)


# how a block values a rule in floats: its FX legs (``path_legs``) and its cutoff column
# (None: its threshold)
_How = tuple[tuple[tuple[int, bool], ...], int | None]
# a symbol's rows of a block to store: the rows, their days, each row's day (None: one)
_Stored = tuple[str, npt.NDArray[np.int64], list[_Day], npt.NDArray[np.int64] | None]


def _upto(
    first: Observation | ObservationBlock,
    rest: Iterator[Observation | ObservationBlock],
    rows: int,
) -> Iterator[Observation | ObservationBlock]:
    """``first``, then items of ``rest`` until some ``rows`` rows are given (a block counts
    its rows and is never split)."""
    item = first
    count = 0
    while True:
        yield item
        count += 1 if type(item) is Observation else len(item)
        if count >= rows:
            return
        following = next(rest, None)
        if following is None:
            return
        item = following


@functools.lru_cache(maxsize=1024)
def _day_window(zone: ZoneInfo, day: date) -> tuple[datetime, datetime, float, float]:
    """A local day as a window: its first moment and the next day's, and as seconds."""
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start, end, start.timestamp(), end.timestamp()


def _trading_day(ctx: _SymbolContext, moment: datetime) -> _Day:
    day = moment.astimezone(ctx.zone).date()
    start, end, start_ts, end_ts = _day_window(ctx.zone, day)
    counted = ctx.shares or shares_on(ctx.cfg, day)
    return _Day(start, end, day, counted, start_ts, end_ts)


@dataclass
class BatchResult:
    """What one batch did: events emitted, rows skipped and why."""

    events: list[Event] = field(default_factory=list)
    observations: int = 0
    already_seen: int = 0
    skipped: Counter[tuple[str, str]] = field(default_factory=Counter)
    enqueued: int = 0
    # events handed to ``emit`` instead of being kept in ``events``
    emitted: int = 0

    def hand_over(self, emit: Callable[[list[Event]], None]) -> None:
        """Pass the events found so far to ``emit`` and let them go."""
        if self.events:
            emit(self.events)
            self.emitted += len(self.events)
            self.events = []


class Engine:
    """Evaluates observations against the configured rules with state kept in a ``Store``."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        record_observations: bool = True,
        notify: bool = True,
        fast_path: bool = True,
        baseline_summary: bool = True,
        store_events: bool = True,
    ) -> None:
        self.settings = settings
        # False: events are returned, not written to the store (a throwaway in-memory one)
        self.store_events = store_events
        # False: record events and state, enqueue no deliveries (a quiet history replay)
        self.notify = notify
        # skip evaluating rows that provably change nothing (see core.evaluate.quiet_band)
        self.fast_path = fast_path
        # True (the daemon): the first run ever sends one summary of all baselines instead of
        # one message each. False (replay --notify): every event is its own message.
        self.baseline_summary = baseline_summary
        # An ephemeral replay has no use for its observations; the daemon keeps them.
        self.record_observations = record_observations
        self._packer: ThreadPoolExecutor | None = None  # compresses stored blocks
        self._unwritten: RecordedRows | None = None  # the newest of them, to be written
        self.store = store
        self._symbols = {s.symbol: s for s in settings.symbols}
        self._rule_cfg = {r.id: r for r in settings.rules}
        self._rules: dict[str, list[Rule]] = {}
        for cfg in settings.rules:
            self._rules.setdefault(cfg.symbol, []).append(build_rule(cfg))
        self._contexts = {
            s.symbol: _SymbolContext(
                s, ZoneInfo(s.timezone), tuple(self._rules.get(s.symbol, ())), s.display_name
            )
            for s in settings.symbols
        }
        self.states: dict[str, RuleState] = store.rule_states()
        self.last_times: dict[str, datetime] = self._floors()
        # (rule, quote currency, a block's FX pairs and cutoffs) -> ``_valued``
        self._how: dict[tuple[object, ...], _How | None]
        self._how = {}

    def _floors(self) -> dict[str, datetime]:
        """Per symbol, the time at or before which nothing is evaluated: the stored resume
        point, or a rule's last evaluated time if later (pruning removes neither)."""
        floors = self.store.last_times()
        if isinstance(self.store, SqliteStore):
            for rule_id, reading in self.store.last_readings().items():
                cfg = self._rule_cfg.get(rule_id)
                if cfg is None:
                    continue
                old = floors.get(cfg.symbol)
                if old is None or reading.time > old:
                    floors[cfg.symbol] = reading.time
        return floors

    def _reload(self) -> None:
        """Re-read state under the write lock: another process may have moved it on."""
        states = self.store.rule_states()
        if states != self.states:
            for ctx in self._contexts.values():
                ctx.band = None
        self.states = states
        self.last_times = self._floors()

    def process(
        self,
        observations: Iterable[Observation | ObservationBlock],
        now: float,
        *,
        where: str = "",
        emit: Callable[[list[Event]], None] | None = None,
    ) -> BatchResult:
        """Evaluate a batch in one transaction; nothing is written if any row is rejected.

        State is read after the write lock is taken (``BEGIN IMMEDIATE``), so two processes
        evaluating one database serialise: the second sees the first's rows as already seen.

        ``emit``: the events go to it, in order, instead of into the result's ``events``
        (only ``emitted`` counts them). When they are neither stored nor enqueued, they go
        as they are found, so a long replay never holds them all; else after the batch.
        An error part-way leaves events already emitted: the caller discards them.
        """
        result = BatchResult()
        stream = emit if not (self.store_events or self.notify) else None
        before = dict(self.states)
        before_times = dict(self.last_times)
        try:
            with self.store.transaction():
                self._reload()
                first_run = self.store.meta(SUMMARY_SENT) is None and not self.states
                self._process(observations, result, stream)
                self._enqueue(result, now, first_run)
        except BaseException:
            self.states = before
            self.last_times = before_times
            for ctx in self._contexts.values():
                ctx.band = None
            raise
        if emit is not None:
            result.hand_over(emit)
        return result

    def process_batched(
        self,
        observations: Iterable[Observation | ObservationBlock],
        now: float,
        *,
        batch: int = 100_000,
        ready: Callable[[bool], bool] | None = None,
        emit: Callable[[list[Event]], None] | None = None,
    ) -> BatchResult:
        """``process`` in transactions of about ``batch`` rows (a block is never split), so
        a long replay never holds the write lock for long; the results are summed.

        ``ready(done)`` says whether the rows may be committed yet (e.g. the whole tape was
        validated; it raises when they must not be). Until it does, the batches join one
        transaction. It is asked before the first batch and after every one with ``done``
        False, and once every row was read with ``done`` True.
        ``emit``: as ``process``'s, batch by batch."""
        total = BatchResult()
        rows = iter(observations)
        with contextlib.ExitStack() as held:
            if ready is not None and not ready(False):
                held.enter_context(self.store.transaction())  # nothing commits yet
            while True:
                first = next(rows, None)
                if first is None:
                    break
                # the batch is read as it is evaluated (never gathered first): the reader
                # scans its next chunk meanwhile
                part = self.process(_upto(first, rows, batch), now, emit=emit)
                total.events.extend(part.events)
                total.emitted += part.emitted
                total.observations += part.observations
                total.already_seen += part.already_seen
                total.skipped.update(part.skipped)
                total.enqueued += part.enqueued
                if ready is not None and ready(False):
                    held.close()  # commits what was held; each batch commits from now on
            if ready is not None:
                ready(True)  # every row was read: raises (and what is held rolls back) if bad
        return total

    def _process(
        self,
        observations: Iterable[Observation | ObservationBlock],
        result: BatchResult,
        stream: Callable[[list[Event]], None] | None = None,
    ) -> None:
        rows: list[tuple[object, ...]] = []
        newest: _Newest = {}
        fast = self.fast_path
        try:
            for item in observations:
                if type(item) is Observation:
                    self._row(item, result, newest, rows, fast)
                else:
                    assert not isinstance(item, Observation)
                    self._block(item, result, newest, rows)
                del item  # a block is let go before the next one is read
                if stream is not None and result.events:
                    result.hand_over(stream)
                if len(rows) >= 2000:
                    self._store_rows(rows)
            self._store_rows(rows)
        finally:
            self._unwritten = None
        store = self.store
        for symbol, (obs, shares, day_) in newest.items():
            if not isinstance(obs, Observation):
                obs = obs()
                newest[symbol] = (obs, shares, day_)
            store.set_meta(WATERMARK + symbol, utc_iso(obs.time))
        store.put_rule_states(self._last_readings(newest))
        if self.store_events:
            store.add_events(result.events)

    def _context(self, obs: Observation) -> _SymbolContext:
        ctx = self._contexts.get(obs.symbol)
        if ctx is None:
            raise InputError(
                f"symbol {obs.symbol!r} is not configured",
                f"observation at {obs.time.isoformat()} from {obs.source}",
                "add it to [[symbols]] or remove its rows",
            )
        return ctx

    def _row(
        self,
        obs: Observation,
        result: BatchResult,
        newest: _Newest,
        rows: list[tuple[object, ...]] | None,
        fast: bool,
    ) -> None:
        """Evaluate one observation (``fast``: through the quiet band when it has one);
        its row to store goes to ``rows`` (None: it is stored another way, in a block)."""
        ctx = self._context(obs)
        low, high = _PRICE_BOUNDS
        if not low <= obs.price <= high:  # any source: never store what cannot render
            result.skipped[(obs.symbol, f"price {obs.price} outside the sane range")] += 1
            return
        moment = obs.time
        last = self.last_times.get(obs.symbol)
        if last is not None and moment <= last:
            result.already_seen += 1
            return
        self.last_times[obs.symbol] = moment
        day_ = ctx.day
        if day_ is None or not day_.start <= moment < day_.end:
            day_ = ctx.day = _trading_day(ctx, moment)
        shares = obs.shares or day_.shares
        newest[obs.symbol] = (obs, shares, day_.day)
        result.observations += 1
        band = ctx.band
        if fast and band is not None and band.admits(obs, shares.total):
            ctx.misses = 0  # every rule is certainly quiet: nothing can change
        else:
            if band is not None:
                ctx.misses += 1
                if ctx.misses >= BAND_MISSES:  # near a line: stop building for a while
                    ctx.misses, ctx.cooldown = 0, BAND_REST
            val = valuate(obs, shares, day_.day)
            rates: Rates = {}  # one rate cache for the rules and the band
            events, skipped = evaluate(
                ctx.rules, self.states, val, ctx.name, ctx.cfg.timezone, rates
            )
            if events:
                result.events.extend(events)
            for skip in skipped:
                result.skipped[(skip.rule_id, skip.reason)] += 1
            if fast and not ctx.cooldown:
                ctx.band = quiet_band(ctx.rules, self.states, val, rates)
            else:
                ctx.band = None
                ctx.cooldown = max(ctx.cooldown - 1, 0)
        if self.record_observations and rows is not None:
            rows.append(observation_row(obs, shares, obs.price * shares.total))

    def _block(
        self,
        block: ObservationBlock,
        result: BatchResult,
        newest: _Newest,
        rows: list[tuple[object, ...]],
    ) -> None:
        """A block of rows: each symbol's rows that may move a rule (``core.prefilter``) are
        stepped exactly, one by one; the rest change nothing and are only counted. Events
        come out in tape order, as row by row."""
        by_symbol = block.rows_of()
        if not self.fast_path or not all(symbol in self._contexts for symbol in by_symbol):
            # one is not configured (or no shortcut wanted): each row goes the exact way
            for j in sorted(int(j) for at in by_symbol.values() for j in at):
                self._row(block.observation(j), result, newest, rows, self.fast_path)
            return
        start = len(result.events)
        tags: list[tuple[int, int, int]] = []  # (row, first event, end) of each exact row
        # each symbol's evaluated rows with their days, when every row is stored
        stored: list[_Stored] = []
        segments: list[tuple[_SymbolContext, npt.NDArray[np.int64], npt.NDArray[np.int64]]]
        segments = []
        for symbol, at in by_symbol.items():
            ctx = self._contexts[symbol]
            times = block.time[at]
            last = self.last_times.get(symbol)
            if last is not None:
                seen = int(np.searchsorted(times, last.timestamp(), side="right"))
                result.already_seen += seen
                at, times = at[seen:], times[seen:]
            if len(at):
                segments.append((ctx, at, times))
        packed: Future[bytes] | None = None
        if self.record_observations and segments:
            # every row is stored: its lines are compressed on another thread meanwhile
            every = segments[0][1]
            if len(segments) > 1:
                every = np.sort(np.concatenate([at for _, at, _ in segments]))
            if self._packer is None:
                self._packer = ThreadPoolExecutor(1, thread_name_prefix="pack")
            packed = self._packer.submit(pack, block.lines(every))
        # many symbols: their quiet first rows found for all at once
        quiet = {} if self.record_observations else self._quiet_heads(block, segments)
        for ctx, at, times in segments:
            head = quiet.get(ctx.cfg.symbol, 0)
            if head:
                result.observations += head
                if head == len(at):
                    self._settle(ctx, block, int(at[-1]), newest)
                    continue
                at, times = at[head:], times[head:]
            currency = block.currency[at]
            if not (currency == currency[0]).all():
                days, day_of, _ = self._days(ctx, times)
                stored.append((ctx.cfg.symbol, at, days, day_of))
                for j in at.tolist():
                    self._exact(block, j, result, newest, tags)
                continue
            code = block.currencies[int(currency[0])]
            days, day_of = self._segment(ctx, block, at, times, code, result, newest, tags)
            stored.append((ctx.cfg.symbol, at, days, day_of))
        if len(by_symbol) > 1 and len(result.events) > start:
            events = result.events
            events[start:] = [e for _, a, b in sorted(tags) for e in events[a:b]]
        if packed is not None:
            self._store_rows(rows)  # the rows before it are stored before it
            # and it is written after the next block is evaluated: its lines are compressed
            # on another thread meanwhile, never waited for
            self._unwritten = self._recorded(block, stored, packed.result)

    def _store_rows(self, rows: list[tuple[object, ...]]) -> None:
        """Store the block waiting to be written, then the table rows after it."""
        if self._unwritten is not None:
            self.store.add_observation_blocks([self._unwritten])
            self._unwritten = None
        if rows:
            self.store.add_observations(rows)
            rows.clear()

    def _exact(
        self,
        block: ObservationBlock,
        j: int,
        result: BatchResult,
        newest: _Newest,
        tags: list[tuple[int, int, int]],
    ) -> None:
        """Step row ``j`` of a block exactly; ``tags`` says which events it made."""
        before = len(result.events)
        self._row(block.observation(j), result, newest, None, False)
        tags.append((j, before, len(result.events)))

    def _settle(
        self,
        ctx: _SymbolContext,
        block: ObservationBlock,
        j: int,
        newest: _Newest,
    ) -> None:
        """Row ``j`` is a symbol's newest, evaluated and quiet: it moves the resume point,
        the trading day and the readings."""
        moment = datetime.fromtimestamp(int(block.time[j]), UTC)  # the row's instant
        day_ = ctx.day
        if day_ is None or not day_.start <= moment < day_.end:
            day_ = ctx.day = _trading_day(ctx, moment)
        symbol = ctx.cfg.symbol
        self.last_times[symbol] = moment
        newest[symbol] = (block.later(j), day_.shares, day_.day)  # a block's row: no shares

    def _quiet_heads(
        self,
        block: ObservationBlock,
        segments: list[tuple[_SymbolContext, npt.NDArray[np.int64], npt.NDArray[np.int64]]],
    ) -> dict[str, int]:
        """For each symbol that can take it, how many of its first rows are certainly quiet
        (``core.prefilter`` bounds, its rules in the positions they are in now), found over
        the whole block at once: per symbol, only the rest is looked at."""
        if len(segments) < 2:
            return {}
        code_of = {name: k for k, name in enumerate(block.symbols)}
        n_codes = len(block.symbols)
        shares = np.zeros(n_codes)
        rows_in = np.zeros(len(block), dtype=np.bool_)
        # rules by how they are valued: FX legs, cutoff column, and which of a symbol's
        # rules of that kind they are (each group is one row-wide computation)
        groups: dict[tuple[object, ...], list[tuple[int, Rule, RuleState]]] = {}
        heads: dict[str, int] = {}
        for ctx, at, _times in segments:
            cfg = ctx.cfg
            if cfg.shares_history:  # a dated share count: the per-symbol path counts days
                continue
            if len(block.currencies) > 1:
                currency = block.currency[at]
                if not (currency == currency[0]).all():
                    continue
                quote = block.currencies[int(currency[0])]
            else:
                quote = block.currencies[0]
            members: list[tuple[tuple[object, ...], Rule, RuleState]] = []
            for rule in ctx.rules:
                state = self.states.get(rule.id)
                if state is None or state.streak:
                    break
                valued = self._valued(rule, quote, block)
                if valued is None:
                    break
                members.append((valued, rule, state))
            else:
                code = code_of[cfg.symbol]
                assert ctx.shares is not None  # no dated share history
                shares[code] = ctx.shares.total
                rows_in[at] = True
                heads[cfg.symbol] = len(at)
                taken: Counter[tuple[object, ...]] = Counter()
                for way, rule, state in members:
                    taken[way] += 1
                    groups.setdefault((*way, taken[way]), []).append((code, rule, state))
        if len(heads) < 2:
            return {}
        sym = block.symbol
        cap = block.price * shares[sym]
        high_cap = block.high * shares[sym]
        moving = np.zeros(len(block), dtype=np.bool_)
        for (how, kind, _nth), rules in groups.items():
            member = np.zeros(n_codes, dtype=np.bool_)
            below = np.zeros(n_codes, dtype=np.bool_)
            keep = np.ones(n_codes)
            threshold = np.ones(n_codes)
            for code, rule, state in rules:
                member[code] = True
                below[code] = state.position == "below"
                keep[code] = float(rule.keep)
                if isinstance(rule, ThresholdRule):
                    threshold[code] = float(rule.threshold)
            assert isinstance(how, tuple)
            line = block.cutoffs[kind] if isinstance(kind, int) else threshold[sym]
            with np.errstate(over="ignore", invalid="ignore"):
                scale = effective_rates(block.fx, how) / line
                ratio = cap * scale
                up = may_rise(ratio) | may_rise(high_cap * scale)
                down = may_fall(ratio, keep[sym])
            moving |= np.where(below[sym], up, down) & member[sym]
        moving &= rows_in
        found = np.flatnonzero(moving)
        if len(found):
            codes, first = np.unique(sym[found], return_index=True)
            by_code = {code_of[ctx.cfg.symbol]: at for ctx, at, _ in segments}
            for code, k in zip(codes.tolist(), first.tolist(), strict=True):
                name = block.symbols[code]
                if name in heads:
                    at = by_code[code]
                    heads[name] = int(np.searchsorted(at, found[k]))
        return heads

    def _valued(self, rule: Rule, quote: str, block: ObservationBlock) -> _How | None:
        """How a block values ``rule`` for a quote currency, as one row-wide computation:
        its FX legs and its cutoff column (None: a threshold); None when a float cannot
        stand for it there (no FX path or cutoff, a threshold no float holds)."""
        key = (rule.id, quote, block.pairs, block.tops)
        if key in self._how:
            return self._how[key]
        how: _How | None = None
        legs = path_legs(quote, rule.currency, block.pairs)
        if legs is not None:
            if isinstance(rule, RankRule):
                if rule.top_n in block.tops:
                    how = (legs, block.tops.index(rule.top_n))
            elif 0 < float(rule.threshold) < np.inf:
                how = (legs, None)
        self._how[key] = how
        return how

    def _recorded(
        self, block: ObservationBlock, stored: list[_Stored], packed: Callable[[], bytes]
    ) -> RecordedRows:
        """Every evaluated row of a block, to be stored as the chunk's lines with each
        symbol's span and share counts (``store.blocks``): what ``observation_row`` would
        store for each, row by row."""
        spans: dict[str, SymbolSpan] = {}
        for symbol, at, days, day_of in stored:
            which = np.zeros(len(at), dtype=np.int64) if day_of is None else day_of
            runs: list[tuple[int, int, str]] = []
            starts = [0, *(np.flatnonzero(np.diff(which)) + 1).tolist()]
            for k, day in zip(starts, which[starts].tolist(), strict=True):
                shares = days[day].shares
                if not runs or runs[-1][1:] != (shares.total, shares.source):
                    runs.append((k, shares.total, shares.source))
            spans[symbol] = SymbolSpan(
                datetime.fromtimestamp(int(block.time[at[0]]), UTC),
                datetime.fromtimestamp(int(block.time[at[-1]]), UTC),
                len(at),
                tuple(runs),
            )
        cols = block.plan
        return RecordedRows(
            packed,
            sum(len(s[1]) for s in stored),
            cols.time,
            cols.symbol,
            cols.price,
            cols.currency,
            cols.day_high,
            cols.fx,
            block.pairs,
            cols.cutoffs,
            block.tops,
            spans,
        )

    def _segment(
        self,
        ctx: _SymbolContext,
        block: ObservationBlock,
        at: npt.NDArray[np.int64],
        times: npt.NDArray[np.int64],
        currency: str,
        result: BatchResult,
        newest: _Newest,
        tags: list[tuple[int, int, int]],
    ) -> tuple[list[_Day], npt.NDArray[np.int64] | None]:
        """One symbol's rows of a block: returns their days and each row's day (None: one)."""
        n = len(at)
        days, day_of, first_row = self._days(ctx, times)
        shares: npt.NDArray[np.float64] | float
        if day_of is None:
            shares = float(days[0].shares.total)
        else:
            shares = np.array([d.shares.total for d in days], dtype=np.float64)[day_of]
        cap = block.price[at] * shares
        high_cap = block.high[at] * shares
        fx = [column[at] for column in block.fx]
        lines: list[tuple[Rule, LineRows]] = []
        missing: list[tuple[str, str]] = []
        for rule in ctx.rules:
            legs = path_legs(currency, rule.currency, block.pairs)
            if legs is None:
                missing.append((rule.id, f"no FX rate {currency}->{rule.currency}"))
                continue
            threshold: npt.NDArray[np.float64] | float
            if isinstance(rule, RankRule):
                if rule.top_n not in block.tops:
                    missing.append((rule.id, f"no top-{rule.top_n} cutoff"))
                    continue
                threshold = block.cutoffs[block.tops.index(rule.top_n)][at]
            else:
                threshold = float(rule.threshold)
            rate = effective_rates(fx, legs)
            lines.append((rule, line_rows(cap, high_cap, rate, threshold, float(rule.keep))))
        dates = [d.day for d in days]
        states = self.states
        ctx.band = None
        exact = 0
        last_exact = -1
        i = 0
        while i < n:
            j = n
            for rule, rows_ in lines:
                state = states.get(rule.id)
                if state is None or state.streak:
                    j = i
                    break
                touch_from = 0
                if state.touched_day is not None:
                    later = bisect.bisect_right(dates, state.touched_day)
                    touch_from = first_row[later] if later < len(days) else n
                j = min(j, rows_.next_move(state.position == "below", i, touch_from, j))
            if j >= n:
                break
            self._exact(block, int(at[j]), result, newest, tags)
            exact += 1
            last_exact = j
            i = j + 1
        quiet = n - exact
        result.observations += quiet
        for key in missing:
            result.skipped[key] += quiet
        if last_exact != n - 1:  # the newest row moves the resume point and the readings
            self._settle(ctx, block, int(at[-1]), newest)
        return days, day_of

    def _days(
        self, ctx: _SymbolContext, times: npt.NDArray[np.int64]
    ) -> tuple[list[_Day], npt.NDArray[np.int64] | None, list[int]]:
        """The local trading days of sorted times: the days, each row's day (None: all on
        one), each day's first row."""
        day_ = ctx.day
        if day_ is not None and day_.start_ts <= times[0] and times[-1] < day_.end_ts:
            return [day_], None, [0]
        days: list[_Day] = []
        first_row: list[int] = []
        n = len(times)
        k = 0
        while k < n:
            moment = int(times[k])
            if day_ is None or not day_.start_ts <= moment < day_.end_ts:
                day_ = _trading_day(ctx, datetime.fromtimestamp(moment, UTC))
            days.append(day_)
            first_row.append(k)
            k = int(np.searchsorted(times, day_.end_ts, side="left"))
        counts = np.diff(np.array([*first_row, n]))
        return days, np.repeat(np.arange(len(days)), counts), first_row

    def _last_readings(self, newest: _Newest) -> Iterator[tuple[RuleState, LastReading]]:
        """Each rule's state with its reading on the newest observation of its symbol."""
        for symbol, (obs, shares, day) in newest.items():
            assert isinstance(obs, Observation)  # read by ``_process``
            val = valuate(obs, shares, day)
            for rule in self._contexts[symbol].rules:
                rr = read_rule(rule, val)
                if isinstance(rr, Skipped) or rule.id not in self.states:
                    continue
                reading = rr.reading
                yield (
                    self.states[rule.id],
                    LastReading(reading.time, reading.value, reading.threshold),
                )

    def _enqueue(self, result: BatchResult, now: float, first_run: bool) -> None:
        baselines = [e for e in result.events if e.kind == "baseline"]
        if not self.notify:
            if baselines:
                self.store.set_meta(SUMMARY_SENT, "1")
            return
        if first_run and baselines and self.baseline_summary:
            for sink in self.settings.sinks:
                subscribed = [
                    e for e in baselines if wants(sink, self._rule_cfg[e.rule_id], "baseline")
                ]
                if subscribed:
                    summary = summary_payload(subscribed)
                    if self.store.enqueue(str(summary["id"]), sink.id, "summary", summary, now):
                        result.enqueued += 1
        if first_run or baselines:
            self.store.set_meta(SUMMARY_SENT, "1")
        for event in result.events:
            if event.kind == "baseline" and self.baseline_summary:
                continue
            rule = self._rule_cfg[event.rule_id]
            payload: dict[str, object] | None = None
            for sink in self.settings.sinks:
                if wants(sink, rule, event.kind):
                    payload = payload or event_to_dict(event)
                    if self.store.enqueue(event.id, sink.id, event.kind, payload, now):
                        result.enqueued += 1


def summary_payload(baselines: list[Event]) -> dict[str, object]:
    """The one start-up summary of every rule's first reading."""
    return {
        "id": stable_id("sum", *sorted(e.id for e in baselines)),
        "kind": "summary",
        "time": max(e.time for e in baselines).isoformat(),
        "baselines": [event_to_dict(e) for e in baselines],
    }


@functools.lru_cache(maxsize=256)
def _json_text(text: str) -> str:
    return json.dumps(text)


def observation_row(obs: Observation, shares: SharesCount, cap: Decimal) -> tuple[object, ...]:
    """The stored form of one observation."""
    # a rate from the row itself (a tape's: its source, as of its time) is stored without
    # either; readers take the row's (``history.series``)
    fx = ",".join(
        f'{{"pair":"{r.base}/{r.quote}","rate":"{r.rate}"}}'
        if r.source == obs.source and r.as_of == obs.time
        else f'{{"pair":"{r.base}/{r.quote}","rate":"{r.rate}","source":{_json_text(r.source)},'
        f'"as_of":"{r.as_of.isoformat()}"}}'
        for r in obs.fx
    )
    cut = ""
    if obs.ranking is not None:
        cut = ",".join(f'"{n}":"{v}"' for n, v in obs.ranking.cutoffs_usd)
    quote = ""
    if obs.quote_decision:  # live: the quote policy's decision and who confirmed the price
        by = json.dumps(list(obs.confirmed_by))
        quote = f',"quote":{{"decision":{_json_text(obs.quote_decision)},"confirmed_by":{by}}}'
    inputs = f'{{"fx":[{fx}],"cutoffs_usd":{{{cut}}}{quote}}}'
    return (
        obs.symbol,
        utc_iso(obs.time),
        obs.time.isoformat(),
        str(obs.price),
        obs.currency,
        None if obs.day_high is None else str(obs.day_high),
        shares.total,
        shares.source,
        str(cap),
        inputs,
        obs.source,
    )


def describe_skips(skipped: Counter[tuple[str, str]]) -> list[str]:
    """Human lines for rules skipped for missing inputs."""
    return [
        f"rule {rule} skipped on {n} row{'s' if n != 1 else ''}: {reason}"
        for (rule, reason), n in sorted(skipped.items())
    ]


__all__ = ["BatchResult", "Engine", "Skipped", "build_rule", "shares_on", "summary_payload"]
