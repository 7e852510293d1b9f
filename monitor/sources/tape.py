"""Recorded observations in CSV ("tapes"), streamed and validated row by row.

Columns (header required, extra columns ignored):
required ``time`` (ISO 8601 with UTC offset), ``symbol``, ``price``, ``currency``;
optional ``day_high``, ``shares``, ``fx_<BASE>_<QUOTE>`` (1 BASE = rate QUOTE),
``top<N>_cutoff_usd``, and ``fx_source`` / ``fx_as_of`` describing the row's FX rates.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, overload

import numpy as np

from monitor.core.iso4217 import ISO_4217
from monitor.core.money import (
    BOUNDS,
    NOT_FINITE,
    FxRate,
    NumberError,
    bounds_of,
    parse_decimal,
    plain_positive,
)
from monitor.core.prefilter import MARGIN
from monitor.core.quality import is_spike
from monitor.core.valuation import Observation, Ranking, SharesCount
from monitor.errors import InputError
from monitor.sources import tape_block
from monitor.sources.tape_block import (
    CHUNK_BYTES,
    MAX_CHUNK_BYTES,
    MAX_YEAR,
    MIN_YEAR,
    PAD,
    Bools,
    Floats,
    Ints,
    Plan,
    TapeBlock,
)

if TYPE_CHECKING:
    from _csv import Reader as _CsvReader

REQUIRED = ("time", "symbol", "price", "currency")
MAX_LINE = 1 << 20  # bytes: a longer line is an error, read no further (memory stays bounded)
MAX_CELL = 64  # characters of one number: longer is no price a tape can mean
_FX = re.compile(r"^fx_([A-Z]{3})_([A-Z]{3})$")
_CUTOFF = re.compile(r"^top(\d+)_cutoff_usd$")


def _show(bound: Decimal) -> str:
    """A power-of-ten bound as people write it: 1e-6, 1, 1e9."""
    return "1" if bound == 1 else f"1e{bound.adjusted()}"


@dataclass(frozen=True)
class _Layout:
    index: dict[str, int]
    fx: tuple[tuple[int, str, str], ...]
    cutoffs: tuple[tuple[int, int], ...]


@dataclass
class _Pass:
    """What one read of a tape carries from row to row: each symbol's last time (rows must
    be in time order) and the parse caches."""

    last_time: dict[str, datetime] = field(default_factory=dict)
    # Parsed, range-checked numbers by their text, one cache per kind (each kind has its
    # own sane range): tapes repeat prices, rates and cutoffs.
    numbers: dict[str, Decimal] = field(default_factory=dict)
    rates: dict[str, Decimal] = field(default_factory=dict)
    cuts: dict[str, Decimal] = field(default_factory=dict)


class TapeReader:
    """Iterate a tape's rows as observations, raising ``InputError`` at the first bad cell.

    ``where`` in errors is ``file:line:column`` (1-based; the column of the bad cell).
    """

    def __init__(
        self,
        path: Path | str,
        stream: IO[str] | None = None,
        *,
        symbols: frozenset[str] | set[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self._stream = stream
        # when given, a row of any other symbol is an input error at its line
        self.symbols = symbols
        self.rows = 0

    def _err(self, line: int, col: int, what: str, hint: str) -> InputError:
        return InputError(what, f"{self.path}:{line}:{col}", hint)

    def _layout(self, header: list[str]) -> _Layout:
        names = [h.strip().lstrip("\ufeff") for h in header]
        index: dict[str, int] = {}
        for pos, name in enumerate(names):
            if name in index:
                raise self._err(1, pos + 1, f"duplicate column {name!r}", "remove one of them")
            index[name] = pos
        for name in REQUIRED:
            if name not in index:
                raise self._err(
                    1,
                    1,
                    f"missing required column {name!r}",
                    "the header must name time, symbol, price and currency",
                )
        fx: list[tuple[int, str, str]] = []
        cutoffs: list[tuple[int, int]] = []
        for name, pos in index.items():
            if m := _FX.match(name):
                base, quote = m.group(1), m.group(2)
                for code in (base, quote):
                    if code not in ISO_4217:
                        raise self._err(
                            1,
                            pos + 1,
                            f"unknown currency code {code!r} in column {name!r}",
                            "name FX columns fx_<BASE>_<QUOTE> with ISO 4217 codes (fx_HKD_CNY)",
                        )
                fx.append((pos, base, quote))
            elif m := _CUTOFF.match(name):
                n = int(m.group(1))
                if n < 1:
                    raise self._err(1, pos + 1, f"bad column {name!r}", "N must be at least 1")
                cutoffs.append((pos, n))
        return _Layout(index, tuple(fx), tuple(cutoffs))

    def __iter__(self) -> Iterator[Observation]:
        if self._stream is not None:
            yield from self._read(self._stream)
            return
        with self._open() as handle:
            yield from self._read(self._lines(handle))

    def blocks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Observation | TapeBlock]:
        """The tape's rows in order, as iterating the reader gives them, but chunks of
        plainly written rows come as blocks read whole at C speed (``tape_block.scan``);
        every other chunk is read row by row. Same rows, same errors at the same cells."""
        if self._stream is not None:
            yield from self
            return
        with self._open() as handle:
            yield from self._blocks(handle, chunk_bytes)

    def _open(self) -> io.BufferedReader:
        try:
            return self.path.open("rb")
        except FileNotFoundError:
            raise InputError("tape not found", str(self.path), "check the path") from None
        except OSError as exc:
            raise InputError(f"cannot read tape: {exc.strerror}", str(self.path)) from None

    def _blocks(
        self, handle: io.BufferedReader, chunk_bytes: int
    ) -> Iterator[Observation | TapeBlock]:
        header = self._lines(io.BytesIO(handle.readline(MAX_LINE + 1)))
        layout = self._header(csv.reader(header, strict=True))
        plan = _plan(layout)
        state = _Pass()
        known = None if self.symbols is None else sorted(self.symbols)

        ix = layout.index
        i_time, i_sym, i_price, i_cur = ix["time"], ix["symbol"], ix["price"], ix["currency"]
        i_high = ix.get("day_high")

        def materialise(text: str, line: int) -> Observation:
            """A row of a block as ``_rows`` reads it: ``scan`` checked that every cell is
            plainly written and in range, with no shares, fx_source or fx_as_of cell (so
            the rates are the tape's, as of the row's time)."""
            row = text.split(",")  # no quotes in a block: this is the CSV parse
            time = datetime.fromisoformat(row[i_time])
            high = row[i_high] if i_high is not None else ""
            cuts = tuple((n, Decimal(row[pos])) for pos, n in layout.cutoffs)
            return Observation(
                time,
                row[i_sym],
                Decimal(row[i_price]),
                row[i_cur],
                Decimal(high) if high else None,
                None,
                tuple(FxRate(b, q, Decimal(row[pos]), "tape", time) for pos, b, q in layout.fx),
                Ranking("tape", None, (), cuts) if cuts else None,
                "tape",
            )

        line = 1  # lines read so far
        offset = handle.tell()  # where the chunk being taken starts
        size = [chunk_bytes]  # the size of the next read
        # the C scanner lets go of the GIL: the next chunk is scanned on a thread while the
        # engine works through this one (numpy's many short calls would only fight for it)
        ahead = ThreadPoolExecutor(1, "tape-scan") if tape_block.SCANNER == "c" else None
        pending: tuple[bytearray, int, Future[TapeBlock | None] | None] | None = None

        def take(
            chunk: bytearray, cut: int, scanned: Future[TapeBlock | None] | None
        ) -> Iterator[Observation | TapeBlock]:
            nonlocal line, offset
            if scanned is not None:
                block = scanned.result()
            else:
                block = tape_block.scan(chunk, cut + 1, plan, known, line + 1, materialise)
            if block is not None and self._in_order(block, state):
                block.first_line = line + 1
                self.rows += len(block)
                n, width = len(block), len(block.symbols)
                yield block
                line += n
                # many symbols interleaved: bigger chunks, so each symbol has rows enough
                size[0] = min(MAX_CHUNK_BYTES, max(chunk_bytes, chunk_bytes * width // 8))
                del block  # never more than the chunks in flight in memory
            else:
                text = bytes(chunk[: cut + 1])
                lines = self._lines(io.BytesIO(text), line)
                yield from self._rows(csv.reader(lines, strict=True), layout, state, line)
                line += text.count(b"\n")
            offset += cut + 1

        try:
            for item in self._chunks(handle, size):
                if pending is not None and item is None:
                    yield from take(*pending)
                    pending = None
                if item is None:
                    # quoted cells may span lines, an endless line is an error: the exact
                    # reader reads the rest of the tape from here
                    handle.seek(offset)
                    lines = self._lines(handle, line)
                    yield from self._rows(csv.reader(lines, strict=True), layout, state, line)
                    return
                chunk, cut = item
                scanned = None
                if ahead is not None:
                    scanned = ahead.submit(
                        tape_block.scan, chunk, cut + 1, plan, known, line + 1, materialise
                    )
                if pending is not None:
                    yield from take(*pending)
                pending = (chunk, cut, scanned)
            if pending is not None:
                yield from take(*pending)
        finally:
            if ahead is not None:
                ahead.shutdown(cancel_futures=True)

    def _chunks(
        self, handle: io.BufferedReader, size: list[int]
    ) -> Iterator[tuple[bytearray, int] | None]:
        """The tape's next chunks of whole lines, read in place with ``PAD`` bytes spare:
        each with where its last newline is. None (and no more) when the exact reader must
        read the rest: a quote (cells may span lines) or a line longer than any may be."""
        carry = b""
        while True:
            # the carried partial line, then the next bytes
            chunk = bytearray(len(carry) + size[0] + PAD)
            chunk[: len(carry)] = carry
            try:
                got = handle.readinto(memoryview(chunk)[len(carry) : len(carry) + size[0]])
            except OSError as exc:
                raise InputError(f"cannot read tape: {exc.strerror}", str(self.path)) from None
            filled = len(carry) + got
            if not filled:
                return
            if not got:  # the last line has no newline
                chunk[filled] = 10
                filled += 1
            cut = chunk.rfind(b"\n", 0, filled)
            if chunk.find(b'"', 0, filled) >= 0 or (cut < 0 and filled > MAX_LINE):
                yield None
                return
            if cut < 0:
                carry = bytes(chunk[:filled])
                continue
            carry = bytes(chunk[cut + 1 : filled])
            yield chunk, cut

    def _in_order(self, block: TapeBlock, state: _Pass) -> bool:
        """Whether every symbol's rows in ``block`` come after its earlier rows, in time
        order; if so, each symbol's last time is moved on (else the exact reader says
        where the order breaks)."""
        spans = block.time_spans()
        if spans is None:
            return False
        for name, (first, _) in spans.items():
            previous = state.last_time.get(name)
            if previous is not None and first <= previous.timestamp():
                return False
        for name, (_, last) in spans.items():  # the same instant as the row's own time
            state.last_time[name] = datetime.fromtimestamp(last, UTC)
        return True

    def _lines(self, handle: IO[bytes], number: int = 0) -> Iterator[str]:
        """The file's lines decoded one by one: a line over ``MAX_LINE`` bytes or invalid
        UTF-8 is an error at its own line number (``number``: lines before the first)."""
        while True:
            try:
                raw = handle.readline(MAX_LINE + 1)
            except OSError as exc:
                raise InputError(f"cannot read tape: {exc.strerror}", str(self.path)) from None
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE:
                raise self._err(
                    number,
                    1,
                    f"line is longer than {MAX_LINE >> 20} MiB",
                    "this is not a CSV tape (one row per line)",
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                col = len(raw[: exc.start].decode("utf-8", "replace")) + 1
                raise self._err(
                    number, col, "invalid UTF-8", "save the tape as UTF-8 text"
                ) from None
            yield text

    def _read(self, handle: Iterator[str] | IO[str]) -> Iterator[Observation]:
        reader = csv.reader(handle, strict=True)
        yield from self._rows(reader, self._header(reader), _Pass())

    def _header(self, reader: _CsvReader) -> _Layout:
        try:
            header = next(reader)
        except StopIteration:
            raise self._err(1, 1, "empty tape", "a header row is required") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise self._err(1, 1, f"malformed CSV: {exc}", "fix the header row") from None
        return self._layout(header)

    def _rows(
        self, reader: _CsvReader, layout: _Layout, state: _Pass, first: int = 0
    ) -> Iterator[Observation]:
        """The observations of ``reader``'s rows (``first``: lines before its first one)."""
        ix = layout.index
        i_time, i_sym, i_price, i_cur = ix["time"], ix["symbol"], ix["price"], ix["currency"]
        i_high, i_shares = ix.get("day_high"), ix.get("shares")
        i_src, i_asof = ix.get("fx_source"), ix.get("fx_as_of")
        width = len(ix)
        last_time = state.last_time
        numbers, rates_seen, cuts_seen = state.numbers, state.rates, state.cuts
        last_cuts: tuple[tuple[int, Decimal], ...] = ()
        last_ranking: Ranking | None = None
        fromisoformat = datetime.fromisoformat
        price_low, price_high = BOUNDS["price"]
        fx_low, fx_high = BOUNDS["fx"]
        cut_low, cut_high = BOUNDS["cutoff"]
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                raise self._err(
                    first + reader.line_num, 1, f"malformed CSV: {exc}", "fix the row"
                ) from None
            line = first + reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                raise self._err(
                    line,
                    min(len(row), width) + 1,
                    f"row has {len(row)} fields, header has {width}",
                    "check for a missing or extra comma",
                )
            cell = row[i_time]
            try:
                time = fromisoformat(cell)
            except ValueError:
                time = self._time(cell, line, i_time)
            if time.tzinfo is None or not MIN_YEAR <= time.year <= MAX_YEAR:
                time = self._time(cell, line, i_time)
            symbol = row[i_sym]
            previous = last_time.get(symbol)
            if previous is None:
                symbol = symbol.strip()
                if not symbol:
                    raise self._err(line, i_sym + 1, "empty symbol", "fill in the symbol")
                if self.symbols is not None and symbol not in self.symbols:
                    raise self._err(
                        line,
                        i_sym + 1,
                        f"symbol {symbol!r} is not configured",
                        f"add it to [[symbols]] (configured: {', '.join(sorted(self.symbols))}) "
                        "or remove its rows",
                    )
                previous = last_time.get(symbol)
            if previous is not None and time <= previous:
                raise self._err(
                    line,
                    i_time + 1,
                    f"time {row[i_time]} is not after the previous row of {symbol}",
                    "sort the tape by time, oldest first, without duplicates",
                )
            last_time[symbol] = time
            currency = row[i_cur]
            if currency not in ISO_4217:
                currency = currency.strip()
                if currency not in ISO_4217:
                    raise self._err(
                        line,
                        i_cur + 1,
                        f"unknown currency code {currency!r}",
                        "use an ISO 4217 code such as HKD",
                    )
            cell = row[i_price]
            price = numbers.get(cell)
            if price is None:
                price = plain_positive(cell, price_low, price_high)
                if price is None:
                    price = self._positive(cell, line, i_price, "price", numbers)
                elif len(numbers) < 8192:
                    # prices sit on a tick grid: the plain parse is cached too (a cell's
                    # text always gives the same value; price and day_high share one range)
                    numbers[cell] = price
            high = None
            if i_high is not None and (cell := row[i_high]):
                high = numbers.get(cell)
                if high is None:
                    high = plain_positive(cell, price_low, price_high)
                    if high is None:
                        high = self._positive(cell, line, i_high, "day_high", numbers)
                    elif len(numbers) < 8192:
                        numbers[cell] = high
            shares = None
            if i_shares is not None and row[i_shares].strip():
                shares = SharesCount(self._count(row[i_shares], line, i_shares), "tape")
            fx_source = (row[i_src].strip() if i_src is not None else "") or "tape"
            fx_as_of = time
            if i_asof is not None and row[i_asof].strip():
                fx_as_of = self._time(row[i_asof], line, i_asof, date_ok=True)
            rates = []
            for pos, base, quote in layout.fx:
                cell = row[pos]
                if cell:
                    rate = rates_seen.get(cell) or plain_positive(cell, fx_low, fx_high)
                    if rate is None:
                        rate = self._positive(cell, line, pos, f"fx_{base}_{quote}", rates_seen)
                    rates.append(FxRate(base, quote, rate, fx_source, fx_as_of))
            ranking = None
            if layout.cutoffs:
                cuts = tuple(
                    (
                        n,
                        cuts_seen.get(row[pos])
                        or plain_positive(row[pos], cut_low, cut_high)
                        or self._positive(row[pos], line, pos, f"top{n}_cutoff_usd", cuts_seen),
                    )
                    for pos, n in layout.cutoffs
                    if row[pos].strip()
                )
                if cuts:
                    # a tape's cutoff has no known as-of time of its own
                    if cuts != last_cuts:
                        last_cuts, last_ranking = cuts, Ranking("tape", None, (), cuts)
                    ranking = last_ranking
            self.rows += 1
            yield Observation(
                time, symbol, price, currency, high, shares, tuple(rates), ranking, "tape"
            )

    def _time(self, cell: str, line: int, pos: int, *, date_ok: bool = False) -> datetime:
        text = cell.strip()
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise self._err(
                line,
                pos + 1,
                f"bad timestamp {text!r}",
                "use ISO 8601 with a UTC offset, e.g. 2025-02-07T16:00:00+08:00",
            ) from None
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            raise self._err(
                line,
                pos + 1,
                f"timestamp {text!r} is outside the years {MIN_YEAR}-{MAX_YEAR}",
                "fix the date",
            )
        if value.tzinfo is None:
            if date_ok and len(text) == 10:
                return value.replace(tzinfo=UTC)
            raise self._err(
                line,
                pos + 1,
                f"timestamp {text!r} has no UTC offset",
                "add one, e.g. 2025-02-07T16:00:00+08:00",
            )
        return value

    def _number(self, cell: str, line: int, pos: int, name: str) -> Decimal:
        if len(cell) > MAX_CELL:
            raise self._err(
                line,
                pos + 1,
                f"{name} has {len(cell)} characters",
                f"write a plain decimal number of at most {MAX_CELL} characters",
            )
        try:
            return parse_decimal(cell)
        except NumberError as exc:
            reason = exc.reason
        if reason == NOT_FINITE:
            raise self._err(
                line, pos + 1, f"{name} is not finite: {cell!r}", "NaN and infinity are not prices"
            )
        raise self._err(
            line, pos + 1, f"{name} is not a number: {cell!r}", "write a plain decimal number"
        ) from None

    def _positive(
        self, cell: str, line: int, pos: int, name: str, cache: dict[str, Decimal] | None = None
    ) -> Decimal:
        value = self._number(cell, line, pos, name)
        if value <= 0:
            raise self._err(
                line, pos + 1, f"{name} must be positive, got {cell!r}", "fix the value"
            )
        low, high = bounds_of(name)
        if not low <= value <= high:
            raise self._err(
                line,
                pos + 1,
                f"{name} {cell.strip()} is outside the sane range {_show(low)} to {_show(high)}",
                "fix the value (a misplaced exponent or decimal point?)",
            )
        if cache is not None and len(cache) < 8192:
            cache[cell] = value
        return value

    def _count(self, cell: str, line: int, pos: int) -> int:
        value = self._positive(cell, line, pos, "shares")
        if value != value.to_integral_value():
            raise self._err(line, pos + 1, f"shares must be a whole number, got {cell!r}", "fix it")
        return int(value)


class TapeCheck:
    """A whole tape read through once in a process of its own (on another core), to learn
    whether every row is good before anything read from it is committed
    (``Engine.process_batched``'s ``ready``).

    Called with ``done`` False while the replay reads on: True once the check found every
    row good, False while it is still reading (or not yet started). A replay that ends
    within ``start_after`` seconds never starts it: the check only lets a long replay
    commit as it goes, and a short one commits at its end anyway. Called with ``done``
    True, when the replay itself has read every row without an error: the tape is good,
    and a check still running is stopped. When the check finds a bad row (or cannot run),
    the tape is read again here, so the error raised is the reader's own, at its row."""

    def __init__(
        self,
        path: Path,
        symbols: Collection[str] | None = None,
        *,
        start_after: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path, self._symbols = path, set(symbols) if symbols else None
        self._good: bool | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._clock = clock
        self._start_at = clock() + start_after
        self.started = False  # whether the second process was started (or tried)

    def _start(self) -> None:
        self.started = True
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "monitor.sources.tape_check"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            assert self._child.stdin is not None
            order = {"path": str(self._path), "symbols": sorted(self._symbols or ())}
            self._child.stdin.write(json.dumps(order).encode())
            self._child.stdin.close()
        except OSError:
            self._good = False  # no second process: read here

    def _read(self) -> None:
        read_through(self._path, self._symbols)

    def __call__(self, done: bool) -> bool:
        if done:  # the replay read every row itself
            self._stop()
            self._good = True
            return True
        if not self.started:
            if self._clock() < self._start_at:
                return False
            self._start()
        child = self._child
        if self._good is None and child is not None:
            code = child.poll()
            if code is None:
                return False
            self._child = None
            self._good = code == 0
        if not self._good:
            self._read()  # raises the bad row's error (or, if the check died, finds none)
            self._good = True
        return True

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()

    def __del__(self) -> None:
        self._stop()  # the replay ended early: the check is stopped


def read_through(path: Path, symbols: set[str] | None) -> None:
    """Read every row of a tape, for its errors only (``InputError`` at the first bad one)."""
    for _ in TapeReader(path, symbols=symbols).blocks():
        pass


def _plan(layout: _Layout) -> Plan:
    ix = layout.index
    blank = tuple(ix[name] for name in ("shares", "fx_source", "fx_as_of") if name in ix)
    return Plan(
        width=len(ix),
        time=ix["time"],
        symbol=ix["symbol"],
        price=ix["price"],
        currency=ix["currency"],
        day_high=ix.get("day_high"),
        empty=blank,
        fx=tuple(pos for pos, _, _ in layout.fx),
        pairs=tuple((base, quote) for _, base, quote in layout.fx),
        cutoffs=tuple(pos for pos, _ in layout.cutoffs),
        tops=tuple(n for _, n in layout.cutoffs),
        bounds={kind: (float(low), float(high)) for kind, (low, high) in BOUNDS.items()},
    )


@overload
def quality_filtered(
    rows: Iterable[Observation],
    max_jump: Mapping[str, Decimal],
    held: Counter[str],
    last_prices: Mapping[str, Decimal] | None = None,
) -> Iterator[Observation]: ...


@overload
def quality_filtered(
    rows: Iterable[Observation | TapeBlock],
    max_jump: Mapping[str, Decimal],
    held: Counter[str],
    last_prices: Mapping[str, Decimal] | None = None,
) -> Iterator[Observation | TapeBlock]: ...


def quality_filtered(
    rows: Iterable[Observation | TapeBlock],
    max_jump: Mapping[str, Decimal],
    held: Counter[str],
    last_prices: Mapping[str, Decimal] | None = None,
) -> Iterator[Observation | TapeBlock]:
    """The live quote-quality check applied to a tape: a row jumping more than its symbol's
    ``max_jump`` from the last accepted price is held back (counted in ``held``) until the
    next row confirms the new level, exactly as a live quote is (``core.quality.is_spike``).

    ``last_prices``: each symbol's last accepted price before this tape (the state db's
    latest observation), so the first row of a tape appended to a db is checked too.
    A block's rows are checked exactly where a float says the move may be near the limit
    (and after every row held back); held rows are dropped from the block's ``keep``."""
    gate = _Gate(max_jump, held, last_prices or {})
    for item in rows:
        if type(item) is Observation:
            if gate.admit(item.symbol, item.price):
                yield item
        else:
            assert isinstance(item, TapeBlock)
            gate.block(item)
            yield item
        del item  # the next chunk is read while this one would still be held


class _Gate:
    def __init__(
        self, max_jump: Mapping[str, Decimal], held: Counter[str], last: Mapping[str, Decimal]
    ) -> None:
        self.max_jump = max_jump
        self.held = held
        self.last: dict[str, Decimal] = {}
        # prices well inside (last * (1 - max_jump), last * (1 + max_jump)) need no division
        self.band: dict[str, tuple[Decimal, Decimal]] = {}
        self.pending: dict[str, Decimal] = {}
        for symbol, price in last.items():
            limit = max_jump.get(symbol)
            if limit is not None and price > 0:
                self.accept(symbol, price, limit)

    def accept(self, symbol: str, price: Decimal, limit: Decimal) -> None:
        self.last[symbol] = price
        self.band[symbol] = (price * (1 - limit) * _INSIDE, price * (1 + limit) / _INSIDE)

    def admit(self, symbol: str, price: Decimal) -> bool:
        limit = self.max_jump.get(symbol)
        if limit is None:
            return True
        prev = self.last.get(symbol)
        if prev is not None:
            lo, hi = self.band[symbol]
            if not lo < price < hi and is_spike(price, prev, self.pending.get(symbol), limit):
                self.pending[symbol] = price
                self.held[symbol] += 1
                return False
        if self.pending:
            self.pending.pop(symbol, None)
        if price != prev:
            self.accept(symbol, price, limit)
        return True

    def block(self, block: TapeBlock) -> None:
        """Rows whose move from the row before is clearly inside the limit (floats, a wide
        margin) and whose row before was accepted are accepted without a look; every other
        row takes ``admit``. The row before a symbol's first row is its last accepted one
        unless that symbol's last row looked at was held back."""
        limited = [
            (symbol, at, limit)
            for symbol, at in block.rows_of().items()
            if (limit := self.max_jump.get(symbol)) is not None
        ]
        if not limited:
            return
        # every symbol's moves at once: its rows one after the other, each with its limit
        every = np.concatenate([at for _, at, _ in limited]) if len(limited) > 1 else limited[0][1]
        price = block.price[every]
        lengths = [len(at) for _, at, _ in limited]
        jump = np.repeat([float(limit) for _, _, limit in limited], lengths)[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = price[1:] / price[:-1]
        doubtful = np.flatnonzero(~_clear(ratio, jump)) + 1  # positions in ``every``
        ends = np.cumsum(lengths).tolist()
        cuts = np.searchsorted(doubtful, ends).tolist()
        begin, cut = 0, 0
        for (symbol, at, limit), end, next_cut in zip(limited, ends, cuts, strict=True):
            # this symbol's doubtful rows after its first, as positions in ``at``
            mine = doubtful[cut:next_cut]
            if len(mine) and mine[0] == begin:  # the move from the symbol before
                mine = mine[1:]
            self._rows(block, symbol, at, limit, (mine - begin).tolist())
            begin, cut = end, next_cut

    def _rows(
        self, block: TapeBlock, symbol: str, at: Ints, limit: Decimal, doubtful: list[int]
    ) -> None:
        n = len(at)
        k, looked = 0, -1
        last = self.last.get(symbol)
        if last is not None and symbol not in self.pending:
            # the row before was accepted: the first row is clear like any other
            ratio = float(block.price[at[0]]) / float(last) if last else float("nan")
            if _clear(ratio, float(limit)):
                k = doubtful[0] if doubtful else n
        while k < n:
            if looked != k - 1:  # the rows since the last look were all accepted
                self.accept(symbol, block.exact_price(int(at[k - 1])), limit)
            looked = k
            if self.admit(symbol, block.exact_price(int(at[k]))):
                later = bisect.bisect_right(doubtful, k)
                k = doubtful[later] if later < len(doubtful) else n
            else:
                block.keep[at[k]] = False
                k += 1  # the next row is compared with the last accepted one
        if looked != n - 1:
            self.accept(symbol, block.exact_price(int(at[-1])), limit)


@overload
def _clear(ratio: float, jump: float) -> bool: ...
@overload
def _clear(ratio: Floats, jump: Floats) -> Bools: ...


def _clear(ratio: Floats | float, jump: Floats | float) -> Bools | bool:
    """A move (new price over the one before) clearly inside ``jump`` either way, by far
    more than floats err: it is no spike (``quality.is_spike``) without an exact look."""
    return (ratio > (1 - jump) * (1 + MARGIN)) & (ratio < (1 + jump) * (1 - MARGIN))


_INSIDE = Decimal("1.000000001")  # a margin: rounding never lets the band admit a spike
