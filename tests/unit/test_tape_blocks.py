"""Whole-chunk reading (numpy) and the engine's block path never change a replay's outcome.

Random SYNTHETIC tapes, written as CSV, hover around the lines of rules in four currencies
(direct, inverse, crossed through USD, a top-N cutoff) while every FX rate and the cutoff
move on every row; some rows jump past ``max_jump``, some have no day high, several symbols
interleave, days and UTC offsets change. Read in tiny chunks so blocks split anywhere:

- the block reader yields exactly the reader's observations, and the same error at the same
  cell for a bad row anywhere;
- ``replay``'s path (quality check and engine over blocks) emits exactly the events, ends in
  exactly the states and counts exactly the rows of full evaluation, row by row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from needs import missing

from monitor.core.events import event_to_dict
from monitor.core.valuation import Observation
from monitor.errors import InputError
from monitor.service import Engine
from monitor.settings import Settings
from monitor.sources import tape_block
from monitor.sources.tape import TapeReader, quality_filtered
from monitor.sources.tape_block import TapeBlock
from monitor.store import Store

T0 = datetime(2025, 2, 3, 1, 30, tzinfo=UTC)
SHARES = 25_105_000_000
HEADER = "time,symbol,price,currency,day_high,fx_HKD_CNY,fx_HKD_USD,fx_EUR_USD,top100_cutoff_usd"
# SYNTHETIC: HK$1T is HK$39.83 a share; CN¥1T at 0.9357 is HK$42.57; US$130bn at 0.1284 is
# HK$40.33; EUR 125bn via USD at 1.04 is HK$40.33; the top-100 cutoff US$148bn is HK$45.91
START_CENTS = [3982, 3983, 4256, 4257, 4032, 4033, 4590, 4591, 3943, 4214, 4545]

steps = st.tuples(
    st.sampled_from([0, 0, 1, -1, 1, -1, 2, -2, 5, -5, 850, -850, 1500, -1500]),  # cents
    st.sampled_from([0, 0, 1, 2, 3, 20, None]),  # day high above the price (None: blank)
    st.sampled_from([-90, -45, -40, 0, 40, 45, 90]),  # HKD/CNY, 1e-5
    st.integers(min_value=-15, max_value=15),  # HKD/USD, 1e-6
    st.integers(min_value=-100, max_value=100),  # EUR/USD, 1e-5
    st.sampled_from([-300, -140, 0, 140, 300]),  # cutoff, US$1e6
    st.integers(min_value=1, max_value=900),  # minutes since the previous row
    st.sampled_from(["+08:00", "+08:00", "+00:00", "-05:00"]),  # the row's UTC offset
    st.integers(min_value=0, max_value=2),  # which symbol
)
Step = tuple[int, int | None, int, int, int, int, int, str, int]
SYMBOLS = ("1810.HK", "0700.HK", "9988.HK")


@pytest.fixture(autouse=True, params=["c", "numpy"])
def scanner(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test here runs with each scanner of chunks (``tape_block.SCANNER``)."""
    how: str = request.param
    if how == "c" and tape_block._tapescan is None:
        missing("tapescan", "the C scanner was not built (python setup.py build_ext --inplace)")
    before = tape_block.SCANNER
    tape_block.SCANNER = how
    yield how
    tape_block.SCANNER = before


def config(confirm: int, hysteresis: str, symbols: int) -> Settings:
    rules = []
    for symbol in SYMBOLS[:symbols]:
        common = {"symbol": symbol, "confirm": confirm, "hysteresis": hysteresis}
        rules += [
            {"id": f"{symbol}-hkd", "threshold": "1e12", "currency": "HKD", **common},
            {"id": f"{symbol}-cny", "threshold": "1e12", "currency": "CNY", **common},
            {"id": f"{symbol}-usd", "threshold": "130e9", "currency": "USD", **common},
            {"id": f"{symbol}-eur", "threshold": "125e9", "currency": "EUR", **common},
            {"id": f"{symbol}-top", "top_n": 100, **common},
        ]
    return Settings(
        symbols=[{"symbol": s, "shares": SHARES, "max_jump": "0.2"} for s in SYMBOLS[:symbols]],
        rules=rules,
    )


def write(path: Path, start: int, spec: list[Step], symbols: int) -> Path:
    lines = [HEADER]
    moment = T0
    cents = dict.fromkeys(SYMBOLS, start)
    cny, usd, eur, cut = 93570, 128400, 104000, 148000
    for d_price, high, d_cny, d_usd, d_eur, d_cut, minutes, offset, which in spec:
        moment += timedelta(minutes=minutes)
        symbol = SYMBOLS[which % symbols]
        cents[symbol] = max(100, cents[symbol] + d_price)
        cny, usd, eur, cut = cny + d_cny, usd + d_usd, eur + d_eur, cut + d_cut
        sign = 1 if offset[0] == "+" else -1
        local = moment + sign * timedelta(hours=int(offset[1:3]))
        stamp = local.strftime("%Y-%m-%dT%H:%M:%S") + offset
        price = Decimal(cents[symbol]) / 100
        day_high = "" if high is None else f"{price + Decimal(high) / 100}"
        lines.append(
            f"{stamp},{symbol},{price},HKD,{day_high},{Decimal(cny) / 100_000},"
            f"{Decimal(usd) / 1_000_000},{Decimal(eur) / 100_000},{cut * 1_000_000}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def examples(n: int) -> settings:
    """Hypothesis settings of these tests: ``n`` examples, reproducible, no deadline."""
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


def both_ways(tape: Path, chunk: int, symbols: set[str] | None = None) -> tuple[object, object]:
    """What the row reader reads, and what the block reader reads, of ``tape``: the
    observations, or the error and where it is."""
    out: list[object] = []
    for read in (
        lambda: list(TapeReader(tape, symbols=symbols)),
        lambda: flat(list(TapeReader(tape, symbols=symbols).blocks(chunk))),
    ):
        try:
            out.append(read())
        except InputError as exc:
            out.append((str(exc), exc.where))
    return out[0], out[1]


def flat(items: list[Observation | TapeBlock]) -> list[Observation]:
    out: list[Observation] = []
    for item in items:
        if isinstance(item, TapeBlock):
            out += [item.observation(j) for j in range(len(item))]
        else:
            out.append(item)
    return out


def outcome(
    cfg: Settings, tape: Path, blocks: bool, chunk: int, record: bool = False
) -> tuple[object, ...]:
    store = Store.open(None)
    try:
        # as replay runs it (``record``: into a state db, every row stored)
        engine = Engine(cfg, store, fast_path=blocks, record_observations=record)
        held: Counter[str] = Counter()
        reader = TapeReader(tape, symbols={s.symbol for s in cfg.symbols})
        rows = reader.blocks(chunk) if blocks else iter(reader)
        jumps = {s.symbol: s.max_jump for s in cfg.symbols}
        result = engine.process(quality_filtered(rows, jumps, held), 0.0)
        events = [event_to_dict(e) for e in result.events]
        return (
            events,
            dict(engine.states),
            result.observations,
            dict(result.skipped),
            dict(held),
            store.last_times(),
            store.last_readings(),
            store.latest_observations().keys(),
            store.observation_sources(),
            # where a row is kept (a block or a table row, its id) is not what it says
            [{k: v for k, v in row.items() if k != "id"} for row in store.observations()],
        )
    finally:
        store.close()


@examples(120)
@given(
    st.sampled_from(START_CENTS),
    st.lists(steps, min_size=1, max_size=150),
    st.integers(min_value=1, max_value=3),
    st.sampled_from(["0", "0.01", "0.05"]),
    st.integers(min_value=1, max_value=3),
    st.sampled_from([300, 700, 4096]),
    st.booleans(),
)
def test_blocks_give_the_events_states_and_counts_of_full_evaluation(
    tmp_path: Path,
    start: int,
    spec: list[Step],
    confirm: int,
    hysteresis: str,
    symbols: int,
    chunk: int,
    record: bool,
) -> None:
    cfg = config(confirm, hysteresis, symbols)
    tape = write(tmp_path / "tape.csv", start, spec, symbols)
    fast = outcome(cfg, tape, True, chunk, record)
    assert fast == outcome(cfg, tape, False, chunk, record)
    assert bool(fast[-1]) == record  # stored observations: every row, in tape order


@examples(80)
@given(
    st.sampled_from(START_CENTS),
    st.lists(steps, min_size=100, max_size=200),
    st.integers(min_value=1, max_value=2),
    st.sampled_from(["0", "0.01"]),
)
def test_many_symbols_in_big_blocks_give_the_outcome_of_full_evaluation(
    tmp_path: Path, start: int, spec: list[Step], confirm: int, hysteresis: str
) -> None:
    # blocks of some 35 rows of 3 symbols: the quiet first rows of every symbol are found
    # over the whole block at once (``Engine._quiet_heads``), the rest symbol by symbol
    cfg = config(confirm, hysteresis, 3)
    tape = write(tmp_path / "tape.csv", start, spec, 3)
    assert outcome(cfg, tape, True, 4096) == outcome(cfg, tape, False, 4096)


@examples(60)
@given(
    st.sampled_from(START_CENTS),
    st.lists(steps, min_size=20, max_size=120),
    st.integers(min_value=1, max_value=3),
    st.sampled_from([300, 1000]),
)
def test_the_block_reader_yields_the_readers_observations(
    tmp_path: Path, start: int, spec: list[Step], symbols: int, chunk: int
) -> None:
    tape = write(tmp_path / "tape.csv", start, spec, symbols)
    items = list(TapeReader(tape).blocks(chunk))
    assert any(isinstance(i, TapeBlock) for i in items)  # the fast path did read chunks
    assert flat(items) == list(TapeReader(tape))


# cells the exact reader takes or rejects that no block may take as plain
ODD_CELLS = {
    "price": ["1e1", " 39.8", "39.8 ", "-39.8", "0", "nan", "1e400", "3_9.8", "٣٩", "", "."],
    "time": ["2025-02-30T10:00:00+08:00", "2025-02-03 10:00:00+08:00", "2025-02-03T10:00:00",
             "2025-02-03T10:00:00Z", "2025-02-03T24:00:00+08:00", "1899-12-31T10:00:00+00:00",
             "2025-02-03T10:00:00.5+08:00"],
    "symbol": [" 1810.HK", "1810.hk", "XXXX.HK", ""],
    "currency": ["hkd", "HK", "XXX", " HKD"],
    "fx_HKD_USD": ["", "0", "1e9", "0.12.8"],
    "top100_cutoff_usd": ["", "0.5", "1e16"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("column", "cell"), [(c, v) for c, cells in ODD_CELLS.items() for v in cells]
)
def test_an_odd_cell_anywhere_reads_as_the_exact_reader_reads_it(
    tmp_path: Path, column: str, cell: str
) -> None:
    spec: list[Step] = [(1, 2, 1, 1, 1, 1, 5, "+08:00", 0)] * 300
    tape = write(tmp_path / "tape.csv", 4000, spec, 1)
    lines = tape.read_text().splitlines()
    at = HEADER.split(",").index(column)
    row = lines[157].split(",")
    row[at] = cell
    lines[157] = ",".join(row)
    tape.write_text("\n".join(lines) + "\n")
    expected, got = both_ways(tape, 2000, {"1810.HK"})
    assert got == expected


@pytest.mark.parametrize("trouble", ["unsorted", "duplicate", "quoted", "crlf", "no newline"])
def test_order_errors_and_other_csv_shapes_read_as_the_exact_reader_reads_them(
    tmp_path: Path, trouble: str
) -> None:
    spec: list[Step] = [(1, 2, 1, 1, 1, 1, 5, "+08:00", i % 2) for i in range(400)]
    tape = write(tmp_path / "tape.csv", 4000, spec, 2)
    text = tape.read_text()
    lines = text.splitlines()
    if trouble == "unsorted":
        lines[200], lines[202] = lines[202], lines[200]
    elif trouble == "duplicate":
        lines[301] = lines[299]
    elif trouble == "quoted":
        lines[250] = lines[250].replace("1810.HK", '"1810.HK"').replace("0700.HK", '"0700.HK"')
    text = "\n".join(lines) + "\n"
    if trouble == "crlf":
        text = text.replace("\n", "\r\n")
    elif trouble == "no newline":
        text = text.rstrip("\n")
    tape.write_bytes(text.encode())
    expected, got = both_ways(tape, 1500)
    assert got == expected
    if trouble in ("unsorted", "duplicate"):
        assert isinstance(expected, tuple) and "is not after the previous row" in str(expected)


@pytest.mark.parametrize("trouble", ["duplicate", "earlier"])
def test_a_chunk_whose_first_row_repeats_or_precedes_the_row_before_is_an_order_error(
    tmp_path: Path, trouble: str
) -> None:
    # one symbol: the chunk boundary falls right before the bad row (line 201), so the
    # order is broken only across two blocks, each in order on its own
    spec: list[Step] = [(1, 2, 1, 1, 1, 1, 5, "+08:00", 0) for _ in range(400)]
    tape = write(tmp_path / "tape.csv", 4000, spec, 1)
    lines = tape.read_text().splitlines()
    chunk = len("\n".join(lines[1:201]).encode()) + 1  # rows 1..200 exactly
    first = next(iter(TapeReader(tape).blocks(chunk)))
    assert isinstance(first, TapeBlock) and len(first) == 200  # the boundary is there
    lines[201] = lines[200] if trouble == "duplicate" else lines[199]
    tape.write_text("\n".join(lines) + "\n")
    expected, got = both_ways(tape, chunk)
    assert isinstance(expected, tuple) and "is not after the previous row" in str(expected)
    assert str(expected[1]).endswith("tape.csv:202:1")  # the bad row, its time cell
    assert got == expected


def test_a_spike_held_at_a_chunks_end_is_not_taken_as_confirming_a_later_one(
    tmp_path: Path,
) -> None:
    # max_jump 20 %: HK$40 -> HK$55 is a spike. Row 100 (the first chunk's last) spikes and is
    # held; row 101 is back at HK$40 (admitted: the held level is forgotten); row 150 spikes
    # to HK$55 again and must be held as a new spike, not confirmed by row 100's level; row
    # 151 at HK$55 confirms it
    moves = [0] * 99 + [1500, -1500] + [0] * 48 + [1500] + [0] * 50
    spec: list[Step] = [(d, 0, 0, 0, 0, 0, 1, "+08:00", 0) for d in moves]
    tape = write(tmp_path / "tape.csv", 4000, spec, 1)
    lines = tape.read_text().splitlines()
    chunk = len("\n".join(lines[1:101]).encode()) + 1  # rows 1..100 exactly
    first = next(iter(TapeReader(tape).blocks(chunk)))
    assert isinstance(first, TapeBlock) and len(first) == 100  # the boundary is there
    cfg = config(1, "0.01", 1)
    full = outcome(cfg, tape, False, chunk)
    assert full[4] == {"1810.HK": 2}  # held: rows 100 and 150
    assert outcome(cfg, tape, True, chunk) == full


def test_a_replay_appended_to_a_state_skips_what_it_has_seen_like_full_evaluation(
    tmp_path: Path,
) -> None:
    # up and down by HK$1 every 100 rows: HK$1T (HK$39.83) is crossed both ways, often
    ups = [1 if (i // 100) % 2 == 0 else -1 for i in range(600)]
    spec: list[Step] = [(d, 1, 1, 1, 1, 1, 7, "+08:00", 0) for d in ups]
    tape = write(tmp_path / "tape.csv", 3930, spec, 1)
    first = tmp_path / "first.csv"
    first.write_text("\n".join(tape.read_text().splitlines()[:350]) + "\n")
    cfg = config(1, "0.01", 1)
    results = []
    for blocks in (True, False):
        store = Store.open(None)
        try:
            engine = Engine(cfg, store, fast_path=blocks, record_observations=False)
            engine.process(TapeReader(first).blocks(900) if blocks else TapeReader(first), 0.0)
            again = Engine(cfg, store, fast_path=blocks, record_observations=False)
            result = again.process(TapeReader(tape).blocks(900) if blocks else TapeReader(tape), 0)
            results.append(
                ([event_to_dict(e) for e in result.events], result.already_seen, again.states)
            )
        finally:
            store.close()
    assert results[0] == results[1]
    assert results[0][1] == 349 and results[0][0]  # rows seen before, events after them


@pytest.mark.parametrize("high", [3, None])
@pytest.mark.parametrize("hysteresis", ["0", "0.01"])
@pytest.mark.parametrize("chunk", [2000, 4096, 9000])
def test_symbols_drifting_across_their_lines_inside_blocks(
    tmp_path: Path, hysteresis: str, chunk: int, high: int | None
) -> None:
    # three symbols, a cent a row up through HK$1T (HK$39.83) and down through the bottom of
    # the band, each starting elsewhere: inside one block, one symbol's first moving row is
    # a crossing up, another's a crossing down, a third's a touch of the day high
    legs = [1] * 40 + [-1] * 70 + [1] * 70
    spec: list[Step] = []
    for i in range(2 * len(legs)):
        for k in range(3):  # each symbol its own phase of the same walk
            d = legs[(i + 25 * k) % len(legs)]
            spec.append((d, high, 0, 0, 0, 0, 1, "+08:00", k))
    tape = write(tmp_path / "tape.csv", 3950, spec, 3)
    cfg = config(1, hysteresis, 3)
    fast = outcome(cfg, tape, True, chunk)
    assert fast == outcome(cfg, tape, False, chunk)
    kinds = Counter(str(e["kind"]) for e in fast[0])  # type: ignore[union-attr]
    assert kinds["crossed_above"] and kinds["crossed_below"]
    assert bool(kinds["touched_above"]) == (high is not None)


def test_cells_written_oddly_are_stored_as_the_row_reader_stores_them(tmp_path: Path) -> None:
    # leading zeros and points, a trailing point, a rate below 1e-6 (Decimal writes 5.0E-8)
    # and a -00:00 offset: plain enough for a block, stored as str(Decimal(cell)) stores them
    rows = [HEADER]
    for k in range(40):
        price = ["039.80", "39.8", "40.", "0039.9"][k % 4]
        stamp = f"2025-02-03T10:{k:02d}:00" + ("-00:00" if k % 5 == 0 else "+08:00")
        if k % 5 == 0:
            stamp = f"2025-02-03T02:{k:02d}:30-00:00"
        rows.append(
            f"{stamp},1810.HK,{price},HKD,{'' if k % 3 else '040.1'},.9357,0.000000050,"
            f"1.04,0148000000000"
        )
    tape = tmp_path / "odd.csv"
    tape.write_text("\n".join(rows) + "\n")
    assert any(isinstance(i, TapeBlock) for i in TapeReader(tape).blocks(1000))
    cfg = config(1, "0.01", 1)
    fast = outcome(cfg, tape, True, 1000, record=True)
    assert fast == outcome(cfg, tape, False, 1000, record=True)
    stored = fast[-1]
    assert isinstance(stored, list) and len(stored) == 40
    assert {r["price"] for r in stored} == {"39.80", "39.8", "40", "39.9"}
