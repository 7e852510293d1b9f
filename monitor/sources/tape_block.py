"""A tape chunk read whole (numpy): the fast path's columns, for plainly written rows.

``scan`` reads a chunk of whole lines at C speed when every row is written the plain way
(ASCII, no quotes, one ``YYYY-MM-DDTHH:MM:SS+HH:MM`` time, configured symbols, plain positive
decimals inside their sane ranges, every FX and cutoff cell filled, no ``shares``,
``fx_source`` or ``fx_as_of`` cell). Anything else returns None, and the chunk takes the
exact row-by-row reader instead, which gives the same observations or the error at its cell.
So the fast path accepts a subset of what the exact reader accepts, never more.

The numbers here are floats: they only pick the rows that need the exact Decimal step (see
``core.prefilter``). Every row that can change anything is read again, exactly, through the
row reader (``TapeBlock.observation``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from monitor.core.iso4217 import ISO_4217
from monitor.core.valuation import Observation

try:  # the C scanner, built by ``pip install`` where a C compiler is (setup.py)
    from monitor.sources import _tapescan
except ImportError:  # pragma: no cover - depends on the build
    _tapescan = None  # type: ignore[assignment]

# which scanner reads chunks: "c" when it was built, else "numpy" (the same results)
SCANNER = "c" if _tapescan is not None else "numpy"

CHUNK_BYTES = 1 << 19  # 512 KiB of lines at a time (some 6,000 rows): memory stays bounded
MAX_CHUNK_BYTES = 1 << 21  # with many symbols interleaved
PAD = 40  # bytes after a chunk's rows that cells may be read into (and then ignored)
_SLICE = 1 << 18
MAX_DIGITS = 18  # a plain number of more digits takes the exact reader
SYMBOL_BYTES = 24
# the years a tape may cover: beyond them date arithmetic overflows
MIN_YEAR, MAX_YEAR = 1900, 2200

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Codes = npt.NDArray[np.int32]
Bools = npt.NDArray[np.bool_]

# float bounds a little inside the sane ranges (``money.BOUNDS``): a value at a bound takes
# the exact reader, so no float rounding can let an out-of-range value through
_INNER = 1e-9


@dataclass(frozen=True)
class Plan:
    """Where the fast path finds its columns (from a tape's header)."""

    width: int
    time: int
    symbol: int
    price: int
    currency: int
    day_high: int | None
    empty: tuple[int, ...]  # columns that must be blank (shares, fx_source, fx_as_of)
    fx: tuple[int, ...]
    pairs: tuple[tuple[str, str], ...]
    cutoffs: tuple[int, ...]
    tops: tuple[int, ...]
    bounds: dict[str, tuple[float, float]]


@dataclass
class TapeBlock:
    """Rows of one chunk as columns; row ``j`` is file line ``first_line + j``."""

    first_line: int
    text: bytearray  # the chunk (bytes after the last row are not rows)
    starts: Ints
    time: Ints  # seconds since the epoch (UTC)
    symbol: Codes  # index into ``symbols``
    symbols: tuple[str, ...]
    currency: Codes  # index into ``currencies``
    currencies: tuple[str, ...]
    price: Floats
    high: Floats  # NaN where the day high is blank
    fx: tuple[Floats, ...]  # one per FX column, in the header's order
    cutoffs: tuple[Floats, ...]
    materialise: Callable[[str, int], Observation]
    plan: Plan
    ends: Ints  # where each row's newline is
    # False: a row the quote-quality check held back (never evaluated)
    keep: Bools = field(init=False)

    _groups: dict[str, Ints] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.keep = np.ones(len(self.time), dtype=np.bool_)

    def __len__(self) -> int:
        return len(self.time)

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(base, quote) of each ``fx`` column."""
        return self.plan.pairs

    @property
    def tops(self) -> tuple[int, ...]:
        """The N of each ``cutoffs`` column."""
        return self.plan.tops

    def line(self, j: int) -> str:
        return self.text[self.starts[j] : self.ends[j]].decode("ascii")

    def _cell(self, j: int, col: int) -> str:
        return self.line(j).split(",")[col]

    def lines(self, rows: Ints) -> bytes:
        """The lines of ``rows`` (ascending) as written, each ending in a newline."""
        if not len(rows):
            return b""
        first, last = int(rows[0]), int(rows[-1])
        if last - first + 1 == len(rows):  # one run of rows: one slice
            return bytes(memoryview(self.text)[int(self.starts[first]) : int(self.ends[last]) + 1])
        view = memoryview(self.text)
        ends = (self.ends[rows] + 1).tolist()
        return b"".join([view[a:b] for a, b in zip(self.starts[rows].tolist(), ends, strict=True)])

    def exact_price(self, j: int) -> Decimal:
        """Row ``j``'s price cell as the row reader reads it (a plain decimal: ``Decimal``)."""
        return Decimal(self._cell(j, self.plan.price))

    def observation(self, j: int) -> Observation:
        """Row ``j`` read exactly, as the row reader reads it."""
        return self.materialise(self.line(j), self.first_line + j)

    def later(self, j: int) -> Callable[[], Observation]:
        """``observation(j)`` when called: it holds row ``j``'s text, not the block."""
        return functools.partial(self.materialise, self.line(j), self.first_line + j)

    def rows_of(self) -> dict[str, Ints]:
        """Each symbol's kept rows, in tape order."""
        sym = self.symbol
        if len(self.symbols) == 1:
            rows = np.flatnonzero(self.keep) if not self.keep.all() else np.arange(len(sym))
            if len(rows):
                return {self.symbols[0]: rows}
            return {}
        if self._groups is None:  # every row of each symbol that has rows
            order = np.argsort(sym, kind="stable")
            cuts = [0, *np.cumsum(np.bincount(sym, minlength=len(self.symbols))).tolist()]
            self._groups = {
                name: order[cuts[k] : cuts[k + 1]]
                for k, name in enumerate(self.symbols)
                if cuts[k] < cuts[k + 1]
            }
        keep = self.keep
        if keep.all():
            return dict(self._groups)
        out: dict[str, Ints] = {}
        for name, rows in self._groups.items():
            rows = rows[keep[rows]]
            if len(rows):
                out[name] = rows
        return out

    def time_spans(self) -> dict[str, tuple[int, int]] | None:
        """Each symbol's first and last time (seconds since the epoch) over its kept rows;
        None when some symbol's times do not strictly increase."""
        groups = self.rows_of()
        if not groups:
            return {}
        every = [*groups.values()]
        times = self.time[np.concatenate(every) if len(every) > 1 else every[0]]
        lengths = np.array([len(rows) for rows in every])
        ends = np.cumsum(lengths)
        rises = times[1:] > times[:-1]
        rises[ends[:-1] - 1] = True  # from one symbol's last row to the next one's first
        if not rises.all():
            return None
        firsts = times[ends - lengths].tolist()
        lasts = times[ends - 1].tolist()
        return {name: (a, b) for name, a, b in zip(groups, firsts, lasts, strict=True)}


def _cells(starts: Ints, seps: Ints, col: int) -> tuple[Ints, Ints]:
    """Where column ``col``'s cells start, and their lengths (``seps``: rows x columns)."""
    begin = starts if col == 0 else seps[:, col - 1] + 1
    return begin, seps[:, col] - begin


def _rows_of_bytes(pad: npt.NDArray[np.uint8], width: int) -> npt.NDArray[np.uint8]:
    """Every offset's next ``width`` bytes, as a view (``view[start]`` gathers cells)."""
    out: npt.NDArray[np.uint8] = as_strided(pad, (len(pad) - PAD, width), (1, 1))
    return out


def _numbers(pad: npt.NDArray[np.uint8], start: Ints, length: Ints) -> tuple[Floats, Bools]:
    """Plain positive decimals (digits, at most one point) as floats, and which cells are
    blank; an empty array when a cell is anything else (the chunk takes the exact reader)."""
    blank = length == 0
    width = int(length.max()) if len(length) else 0
    if width == 0:
        return np.full(len(length), np.nan), blank
    if width > MAX_DIGITS + 1:
        return np.empty(0), blank
    chars = _rows_of_bytes(pad, width)[start]
    if int(length.min()) == width:
        # the usual case: one width and one place of the point in the whole column
        q = int(np.argmax(chars[0] == 46)) if 46 in chars[0] else width
        pattern = np.full(width, 48, dtype=np.uint8)
        if q < width:
            pattern[q] = 46
        # digits become 0-9 and the point 0; anything else above 9
        x = chars ^ pattern
        if q == width or (x[:, q] == 0).all():
            if int(x.max()) > 9 or width - (q < width) > MAX_DIGITS or width == (q < width):
                return np.empty(0), blank
            weights = _weights(q, width)
            value = np.zeros(len(length))
            for w in range(width):
                if w != q:
                    value += x[:, w] * weights[w]
            return value, blank
    digit = chars - np.uint8(48)  # wraps around below '0'
    inside = np.arange(width) < length[:, None]
    is_digit = (digit <= 9) & inside
    is_point = (chars == 46) & inside
    points = is_point.sum(axis=1)
    digits = is_digit.sum(axis=1)
    good = ((is_digit | is_point) == inside).all(axis=1) & (points <= 1)
    good &= (digits >= 1) & (digits <= MAX_DIGITS)
    if not (good | blank).all():
        return np.empty(0), blank
    at = np.where(points > 0, np.argmax(is_point, axis=1), length)
    values = np.where(is_digit, digit, 0).astype(np.float64)
    out = np.empty(len(length))
    for q in range(int(at.min()), int(at.max()) + 1):
        rows = at == q
        if rows.any():
            out[rows] = values[rows] @ _weights(q, width)
    out[blank] = np.nan
    return out, blank


def _weights(point: int, width: int) -> Floats:
    """What each character of a number is worth when its point is at ``point``."""
    w = np.arange(width)
    out: Floats = np.where(w < point, 10.0 ** (point - 1 - w), 10.0 ** (point - w))
    if point < width:
        out[point] = 0.0
    return out


def _mask(positions: Sequence[int], byte: int) -> int:
    return sum(byte << (8 * k) for k in positions)


def _u64(value: int) -> np.uint64:
    return np.uint64(value)


def _pattern(chars: dict[int, int]) -> tuple[int, int]:
    return _mask(list(chars), 0xFF), sum(c << (8 * k) for k, c in chars.items())


# The 25 characters of a time, as four little-endian words of 8 bytes (the fourth word's
# last 7 bytes lie beyond the cell): which bytes are digits and which are fixed.
_TIME_DIGITS = ((0, 1, 2, 3, 5, 6), (0, 1, 3, 4, 6, 7), (1, 2, 4, 5, 7), (0,))
_TIME_FIXED = (
    _pattern({4: 45, 7: 45}),
    _pattern({2: 84, 5: 58}),
    _pattern({0: 58, 6: 58}),
    (0, 0),
)
_MONTH_DAYS = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _times(pad: npt.NDArray[np.uint8], start: Ints, length: Ints) -> Ints | None:
    """``YYYY-MM-DDTHH:MM:SS+HH:MM`` cells as epoch seconds, or None if any cell is not
    one (a date the calendar lacks, a year outside ``MIN_YEAR``-``MAX_YEAR``)."""
    if not (length == 25).all():
        return None
    unsigned = np.ascontiguousarray(_rows_of_bytes(pad, 32)[start]).view("<u8")
    for j, digits in enumerate(_TIME_DIGITS):
        w = unsigned[:, j]
        if not ((w & _u64(_mask(digits, 0xF0))) == _u64(_mask(digits, 0x30))).all():
            return None
        low = w & _u64(_mask(digits, 0x0F))
        if ((low + _u64(_mask(digits, 0x06))) & _u64(_mask(digits, 0x10))).any():
            return None
        mask, value = _TIME_FIXED[j]
        if mask and not ((w & _u64(mask)) == _u64(value)).all():
            return None
    # every byte is below 127 (checked): the same words as signed integers, for arithmetic
    words = unsigned.view("<i8")
    w1, w2 = words[:, 1], words[:, 2]

    def d(w: Ints, k: int) -> Ints:
        out: Ints = (w >> (8 * k)) & 0x0F
        return out

    hour, minute = d(w1, 3) * 10 + d(w1, 4), d(w1, 6) * 10 + d(w1, 7)
    second = d(w2, 1) * 10 + d(w2, 2)
    if not ((hour <= 23) & (minute <= 59) & (second <= 59)).all():
        return None
    # the date and the UTC offset change seldom from row to row: worked out once a run
    change = np.empty(len(words), dtype=np.bool_)
    change[0] = True
    moved = change[1:]
    np.not_equal(words[1:, 0], words[:-1, 0], out=moved)
    for part in (w1 & 0xFFFF, w2 >> 24, words[:, 3] & 0xFF):  # DD, offset
        moved |= part[1:] != part[:-1]
    runs = words[change]
    w0, r1, r2, w3 = runs[:, 0], runs[:, 1], runs[:, 2], runs[:, 3]
    run_of = np.cumsum(change) - 1
    sign = (r2 >> 24) & 0xFF
    if not ((sign == 43) | (sign == 45)).all():
        return None
    year = d(w0, 0) * 1000 + d(w0, 1) * 100 + d(w0, 2) * 10 + d(w0, 3)
    month, day = d(w0, 5) * 10 + d(w0, 6), d(r1, 0) * 10 + d(r1, 1)
    off_h, off_m = d(r2, 4) * 10 + d(r2, 5), d(r2, 7) * 10 + d(w3, 0)
    if not ((year >= MIN_YEAR) & (year <= MAX_YEAR)).all():
        return None
    if not ((month >= 1) & (month <= 12)).all():
        return None
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    last_day = _MONTH_DAYS[month] - ((month == 2) & ~leap)
    if not ((day >= 1) & (day <= last_day)).all():
        return None
    if not ((off_h <= 23) & (off_m <= 59)).all():
        return None
    # days from the civil date (H. Hinnant's algorithm), proleptic Gregorian
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    offset = (off_h * 3600 + off_m * 60) * np.where(sign == 43, 1, -1)
    base = (days * 86400 - offset)[run_of]
    out: Ints = base + hour * 3600 + minute * 60 + second
    return out


_KEEP_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


def _texts(
    pad: npt.NDArray[np.uint8], start: Ints, length: Ints, known: Collection[str] | None
) -> tuple[Codes, tuple[str, ...]] | None:
    """Short text cells (symbols, currencies) as indexes into the sorted names found, or
    None if any is blank, longer than ``SYMBOL_BYTES`` or not one of ``known``."""
    if len(length) == 0 or not ((length >= 1) & (length <= SYMBOL_BYTES)).all():
        return None
    width = 8 if int(length.max()) <= 8 else SYMBOL_BYTES
    chars = _rows_of_bytes(pad, width)[start]
    if width == 8:
        keys = chars.view("<u8").ravel() & _KEEP_BYTES[length]
        if (keys == keys[0]).all():
            names, index = keys[:1], np.zeros(len(keys), dtype=np.int64)
        else:
            names, index = np.unique(keys, return_inverse=True)
        index = index.ravel()
        decoded = tuple(int(k).to_bytes(8, "little").rstrip(b"\0").decode() for k in names)
    else:
        chars[np.arange(width) >= length[:, None]] = 0
        cells = chars.view(f"S{width}").ravel()
        found, index = np.unique(cells, return_inverse=True)
        index = index.ravel()
        decoded = tuple(n.decode("ascii") for n in found)
    if known is not None and not set(decoded) <= set(known):
        return None
    if any(name != name.strip() for name in decoded):  # the exact reader strips them
        return None
    return index.astype(np.int32), decoded


def scan(
    text: bytearray,
    size: int,
    plan: Plan,
    symbols: Sequence[str] | None,
    first_line: int,
    materialise: Callable[[str, int], Observation],
) -> TapeBlock | None:
    """The first ``size`` bytes of ``text`` (whole lines, each ending in a newline; at
    least ``PAD`` more bytes follow, of any value) as a block, or None when any row is not
    plainly written (the exact reader then reads the chunk). The C scanner when it was
    built (``SCANNER``), else numpy: the same blocks, the same Nones."""
    if SCANNER == "c" and _tapescan is not None:
        return scan_c(text, size, plan, symbols, first_line, materialise)
    return scan_numpy(text, size, plan, symbols, first_line, materialise)


# column kinds of the C scanner
_SKIP, _TIME, _SYMBOL, _CURRENCY, _NUMBER, _EMPTY = range(6)


def _c_columns(plan: Plan) -> tuple[bytes, bytes, Floats, Floats, bytes, int]:
    """The C scanner's view of a plan: each column's kind and number slot, each slot's
    bounds and whether it may be blank; slots are price, day high (if any), FX, cutoffs."""
    kinds, slots = bytearray(plan.width), bytearray(plan.width)
    lows: list[float] = []
    highs: list[float] = []
    blank: list[int] = []
    numbers = [(plan.price, "price", False)]
    if plan.day_high is not None:
        numbers.append((plan.day_high, "price", True))
    numbers += [(col, "fx", False) for col in plan.fx]
    numbers += [(col, "cutoff", False) for col in plan.cutoffs]
    for k, (col, kind, blank_ok) in enumerate(numbers):
        kinds[col], slots[col] = _NUMBER, k
        low, high = plan.bounds[kind]
        lows.append(low * (1 + _INNER))
        highs.append(high * (1 - _INNER))
        blank.append(blank_ok)
    kinds[plan.time], kinds[plan.symbol], kinds[plan.currency] = _TIME, _SYMBOL, _CURRENCY
    for col in plan.empty:
        kinds[col] = _EMPTY
    return bytes(kinds), bytes(slots), np.array(lows), np.array(highs), bytes(blank), len(lows)


def _names(
    found: list[bytes], codes: Codes, known: Collection[str] | None
) -> tuple[Codes, tuple[str, ...]] | None:
    """The C scanner's names (in order found) as ``_texts`` gives them: sorted, each row's
    code into them; None when one is not ``known`` or has spaces around it."""
    names = [n.decode("ascii") for n in found]
    if known is not None and not set(names) <= set(known):
        return None
    if any(name != name.strip() for name in names):  # the exact reader strips them
        return None
    order = sorted(range(len(names)), key=names.__getitem__)
    if order != list(range(len(names))):
        rank = np.empty(len(names), dtype=np.int32)
        rank[order] = np.arange(len(names), dtype=np.int32)
        codes = rank[codes]
    return codes, tuple(names[k] for k in order)


def scan_c(
    text: bytearray,
    size: int,
    plan: Plan,
    symbols: Sequence[str] | None,
    first_line: int,
    materialise: Callable[[str, int], Observation],
) -> TapeBlock | None:
    """``scan`` by the C scanner (``_tapescan.c``): one pass over the bytes."""
    assert _tapescan is not None
    if len(text) < size + PAD:
        return None
    cap = _tapescan.lines(text, size)
    if not cap:
        return None
    kinds, slots, lows, highs, blank, n_numbers = _c_columns(plan)
    starts, ends, time = (np.empty(cap, dtype=np.int64) for _ in range(3))
    sym, cur = np.empty(cap, dtype=np.int32), np.empty(cap, dtype=np.int32)
    numbers = np.empty((n_numbers, cap))
    got = _tapescan.scan(
        text, size, plan.width, kinds, slots, lows, highs, blank, cap,
        starts, ends, time, sym, cur, numbers,
    )  # fmt: skip
    if got is None or got[0] != cap:
        return None
    symbol = _names(got[1], sym, symbols)
    currency = _names(got[2], cur, ISO_4217)
    if symbol is None or currency is None:
        return None
    rows = list(numbers)
    price = rows.pop(0)
    high = rows.pop(0) if plan.day_high is not None else np.full(cap, np.nan)
    fx = tuple(rows[: len(plan.fx)])
    cutoffs = tuple(rows[len(plan.fx) :])
    return TapeBlock(
        first_line, text, starts, time, symbol[0], symbol[1], currency[0], currency[1],
        price, high, fx, cutoffs, materialise, plan, ends,
    )  # fmt: skip


def scan_numpy(
    text: bytearray,
    size: int,
    plan: Plan,
    symbols: Sequence[str] | None,
    first_line: int,
    materialise: Callable[[str, int], Observation],
) -> TapeBlock | None:
    """``scan`` by numpy, a column at a time."""
    if text.find(b'"', 0, size) >= 0 or text.find(b"\r", 0, size) >= 0:
        return None
    pad = np.frombuffer(text, dtype=np.uint8)
    buf = pad[:size]
    if not len(buf) or len(pad) < size + PAD:
        return None
    # byte-wide checks a slice at a time: their temporaries stay small
    parts, controls = [], 0
    for at in range(0, size, _SLICE):
        part = buf[at : at + _SLICE]
        if part.max() >= 127:
            return None
        controls += int(np.count_nonzero(part < 32))
        sep = part == 44
        sep |= part == 10
        parts.append(np.flatnonzero(sep) + at)
    found = np.concatenate(parts)
    width = plan.width
    n = len(found) // width
    if len(found) != n * width:
        return None
    seps = found.reshape(n, width)
    ends = seps[:, -1]
    # n newlines where each row ends, and no other byte below 32 (tabs, NULs, ...): so
    # every other separator is a comma, and every row has exactly ``width`` fields
    if not (buf[ends] == 10).all() or controls != n:
        return None
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1

    def cells(col: int) -> tuple[Ints, Ints]:
        return _cells(starts, seps, col)

    for col in plan.empty:
        if cells(col)[1].any():
            return None
    time = _times(pad, *cells(plan.time))
    if time is None:
        return None
    sym = _texts(pad, *cells(plan.symbol), symbols)
    cur = _texts(pad, *cells(plan.currency), ISO_4217)
    if sym is None or cur is None:
        return None

    def number(col: int, kind: str, blank_ok: bool) -> Floats | None:
        value, blank = _numbers(pad, *cells(col))
        if not len(value) or (blank.any() and not blank_ok):
            return None
        low, high = plan.bounds[kind]
        ok = blank | ((value > low * (1 + _INNER)) & (value < high * (1 - _INNER)))
        return value if ok.all() else None

    price = number(plan.price, "price", False)
    if price is None:
        return None
    high = np.full(len(price), np.nan)
    if plan.day_high is not None:
        found_high = number(plan.day_high, "price", True)
        if found_high is None:
            return None
        high = found_high
    fx = [number(col, "fx", False) for col in plan.fx]
    cutoffs = [number(col, "cutoff", False) for col in plan.cutoffs]
    fx_columns = tuple(f for f in fx if f is not None)
    cut_columns = tuple(c for c in cutoffs if c is not None)
    if len(fx_columns) != len(fx) or len(cut_columns) != len(cutoffs):
        return None
    return TapeBlock(
        first_line,
        text,
        starts,
        time,
        sym[0],
        sym[1],
        cur[0],
        cur[1],
        price,
        high,
        fx_columns,
        cut_columns,
        materialise,
        plan,
        ends,
    )
