"""The C scanner (``_tapescan.c``) reads every chunk exactly as the numpy scanner does.

Both decide which chunks the fast path may read whole; everything else goes to the exact
row reader. So on any chunk, plain or odd (SYNTHETIC rows with cells drawn from plain and
odd values, then bytes overwritten anywhere), the two must agree: both say no, or both give
the same rows, times, symbols and currencies, and numbers equal to a few units in 1e-16
(the floats only pick rows for the exact Decimal step, with a margin of 1e-9).
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from needs import missing

from monitor.sources import tape_block
from monitor.sources.tape import TapeReader, _plan
from monitor.sources.tape_block import PAD, Plan, TapeBlock

HEADER = "time,symbol,price,currency,day_high,shares,fx_HKD_CNY,fx_HKD_USD,top100_cutoff_usd"
SYMBOLS = ["1810.HK", "0700.HK", "9988.HK", "A", "ABCDEFGHIJKLMNOPQRSTUVWX"]

CELLS = {
    "time": [
        "2025-02-03T09:30:00+08:00", "2025-02-03T09:31:00+08:00", "2024-02-29T23:59:59-05:00",
        "2025-12-31T00:00:00+00:00", "1900-01-01T00:00:00+14:00", "2200-12-31T23:59:59+00:00",
        "2025-02-29T10:00:00+08:00", "1899-12-31T10:00:00+00:00", "2201-01-01T00:00:00+00:00",
        "2025-02-03T24:00:00+08:00", "2025-02-03T10:60:00+08:00", "2025-02-03T10:00:60+08:00",
        "2025-13-03T10:00:00+08:00", "2025-00-03T10:00:00+08:00", "2025-02-00T10:00:00+08:00",
        "2025-02-03T10:00:00+24:00", "2025-02-03T10:00:00+08:60", "2025-02-03 10:00:00+08:00",
        "2025-02-03T10:00:00Z", "2025-02-03T10:00:00", "2025-02-03T10:00:00.5+08:00",
        "2025-02-03T10:00:00*08:00", "2025/02/03T10:00:00+08:00", "",
    ],
    "symbol": [*SYMBOLS, "", " 1810.HK", "1810.HK ", "ABCDEFGHIJKLMNOPQRSTUVWXY", "XXXX.HK"],
    "price": [
        "39.85", "40.10", "39.8", "40", "0.01", "007.50", "123456789012345678",
        "1.2345678901234567", "1234567890123456789", "0", "0.0", "", ".", "1.", ".5", "1e1",
        "-39.8", "+39.8", " 39.8", "39.8.1", "nan", "1e400", "3_9.8", "99999999", "1000000",
    ],
    "currency": ["HKD", "HKD", "USD", "CNY", "", "hkd", "XXX", "HK", " HKD", "HKDX"],
    "day_high": ["40.20", "", "40.2", "0", "x", "40.20.1"],
    "shares": ["", "", "25105000000", " "],
    "fx_HKD_CNY": ["0.93574100", "0.9357", "0.93574101", "", "0", "1e9", "12345"],
    "fx_HKD_USD": ["0.12840195", "0.128", "", "0.12.8", "-0.1"],
    "top100_cutoff_usd": ["148009631498", "148000000000", "", "0.5", "1e16", "9" * 18],
}  # fmt: skip
COLUMNS = HEADER.split(",")
# the values above that are plainly written (and inside the sane ranges): read whole
PLAIN_VARIANTS = {
    ("time", "2025-02-03T09:31:00+08:00"), ("time", "2024-02-29T23:59:59-05:00"),
    ("time", "2025-12-31T00:00:00+00:00"), ("time", "1900-01-01T00:00:00+14:00"),
    ("time", "2200-12-31T23:59:59+00:00"), ("symbol", "0700.HK"), ("symbol", "9988.HK"),
    ("price", "40.10"), ("price", "39.8"), ("price", "40"), ("price", "0.01"),
    ("price", "007.50"), ("price", "1.2345678901234567"), ("price", "1."), ("price", ".5"),
    ("price", "99999999"), ("price", "1000000"), ("currency", "HKD"), ("currency", "USD"),
    ("currency", "CNY"), ("day_high", ""), ("day_high", "40.2"), ("shares", ""),
    ("fx_HKD_CNY", "0.9357"), ("fx_HKD_CNY", "0.93574101"), ("fx_HKD_CNY", "12345"),
    ("fx_HKD_USD", "0.128"), ("top100_cutoff_usd", "148000000000"),
}  # fmt: skip


def plan() -> Plan:
    reader = TapeReader("synthetic.csv")
    return _plan(reader._header(csv.reader(io.StringIO(HEADER + "\n"), strict=True)))


PLAN = plan()


def plain_row(k: int) -> list[str]:
    """A plainly written row (the first, plain, value of each column but the symbol's)."""
    row = [CELLS[c][0] for c in COLUMNS]
    row[1] = SYMBOLS[k % 3]
    return row


rows = st.lists(
    st.tuples(
        st.integers(0, 2),  # the symbol
        # an odd cell (column, which value) or none
        st.one_of(
            st.none(),
            st.tuples(st.sampled_from(COLUMNS), st.integers(0, 40)),
        ),
    ),
    min_size=1,
    max_size=40,
)
# bytes overwritten anywhere: separators, quotes, control bytes, high bytes, digits, spaces
overwrites = st.lists(
    st.tuples(
        st.integers(0, 10**6),
        st.sampled_from(b',\n"\r\t\x00 .-+:T0159A\x7f\x80\xe4'),
    ),
    max_size=3,
)


def chunk(spec: list[tuple[int, tuple[str, int] | None]], bytes_: list[tuple[int, int]]) -> bytes:
    lines = []
    for k, odd in spec:
        row = plain_row(k)
        if odd is not None:
            column, which = odd
            values = CELLS[column]
            row[COLUMNS.index(column)] = values[which % len(values)]
        lines.append(",".join(row) + "\n")
    text = bytearray("".join(lines).encode())
    for at, byte in bytes_:
        text[at % len(text)] = byte
    if not text.endswith(b"\n"):
        text += b"\n"
    return bytes(text)


def scanned(how: str, text: bytes, known: list[str] | None) -> TapeBlock | None:
    padded = bytearray(text + b"\xff" * PAD)  # what lies past the rows is never read as rows
    scan = tape_block.scan_c if how == "c" else tape_block.scan_numpy
    return scan(padded, len(text), PLAN, known, 2, lambda _t, _l: None)  # type: ignore[arg-type,return-value]


def same(a: TapeBlock | None, b: TapeBlock | None) -> None:
    assert (a is None) == (b is None)
    if a is None or b is None:
        return
    for name in ("starts", "ends", "time"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array(a.symbols)[a.symbol].tolist() == np.array(b.symbols)[b.symbol].tolist()
    assert a.symbols == tuple(sorted(a.symbols))
    assert np.array(a.currencies)[a.currency].tolist() == (
        np.array(b.currencies)[b.currency].tolist()
    )
    for x, y in zip(
        (a.price, a.high, *a.fx, *a.cutoffs), (b.price, b.high, *b.fx, *b.cutoffs), strict=True
    ):
        assert np.allclose(x, y, rtol=4e-16, atol=0.0, equal_nan=True)


@pytest.fixture(autouse=True)
def built() -> None:
    if tape_block._tapescan is None:
        missing("tapescan", "the C scanner was not built (python setup.py build_ext --inplace)")


@settings(max_examples=600, deadline=None, derandomize=True)
@given(rows, overwrites, st.booleans())
def test_the_c_scanner_reads_any_chunk_as_the_numpy_scanner_does(
    spec: list[tuple[int, tuple[str, int] | None]], bytes_: list[tuple[int, int]], known: bool
) -> None:
    text = chunk(spec, bytes_)
    names = SYMBOLS[:3] if known else None
    same(scanned("c", text, names), scanned("numpy", text, names))


def test_plain_chunks_are_read_and_every_kind_of_odd_cell_is_refused() -> None:
    """Not only agreement: plain rows are read (times to the second, numbers, names), and
    each odd value of each column makes both say no."""
    text = chunk([(k, None) for k in range(7)], [])
    block = scanned("c", text, SYMBOLS[:3])
    assert block is not None and len(block) == 7
    assert block.time[0] == 1738546200  # 2025-02-03T09:30:00+08:00
    assert block.price.tolist() == [39.85] * 7 and np.isnan(block.high).sum() == 0
    assert np.array(block.symbols)[block.symbol].tolist() == [SYMBOLS[k % 3] for k in range(7)]
    read = set()
    for column, values in CELLS.items():
        for value in values[1:]:
            odd = chunk([(0, None), (1, (column, values.index(value))), (2, None)], [])
            c, n = scanned("c", odd, SYMBOLS[:3]), scanned("numpy", odd, SYMBOLS[:3])
            same(c, n)
            if c is not None:
                read.add((column, value))
    assert read == PLAIN_VARIANTS
    # a symbol not configured, a row too short or too long
    assert scanned("c", chunk([(0, None)], []).replace(b"1810.HK", b"9999.HK"), None) is not None
    assert scanned("c", chunk([(0, None)], []).replace(b"1810.HK", b"9999.HK"), SYMBOLS) is None
    assert scanned("c", chunk([(0, None)], []).replace(b",HKD,", b","), None) is None
    assert scanned("c", chunk([(0, None)], []).replace(b",HKD,", b",HKD,,"), None) is None
