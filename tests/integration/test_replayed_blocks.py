"""A recorded replay stores its plainly written chunks as blocks of tape lines
(``store.blocks``), and every reader of the state reads them as the rows they stand for.

The same SYNTHETIC tape goes into two state databases on disk: row by row (every row a table
row, as before blocks existed) and the way ``replay --state-db`` reads it (chunks whole, so
most rows land in blocks; chunks with a blank FX cell take the row reader and are table
rows). Every read of the two is the same: the observations, each symbol's newest one, the
last prices, the price before any moment, the sources, the resume points. Blocks survive
``store copy``, pruning keeps each symbol's newest row, a block that does not decode is
counted and skipped, and a bad row late in a long tape writes nothing.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from unit.test_tape_blocks import SHARES, config, write

from monitor.core.events import Event
from monitor.core.valuation import Observation
from monitor.service import Engine
from monitor.settings import Settings
from monitor.sources.tape import TapeReader, quality_filtered
from monitor.store import Store

CHUNK = 1024  # small: many chunks, and rows of one time split across them


def spec(rows: int, seed: int = 11) -> list[Any]:
    """Rows of a walk around the lines; several symbols often share a minute (rows at one
    time are read back in tape order)."""
    rng = random.Random(seed)
    out = []
    used: set[int] = {0}  # the symbols with a row at the current time
    for _ in range(rows):
        minutes = rng.choice([0, 0, 1, 1, 7, 300])
        free = sorted({0, 1, 2} - used)
        if minutes == 0 and free:
            which = rng.choice(free)
            used.add(which)
        else:
            minutes = max(minutes, 1)
            which = rng.randint(0, 2)
            used = {which}
        out.append(
            (
                rng.choice([0, 1, -1, 2, -2, 5, -5]),
                rng.choice([0, 1, 3, None]),
                rng.choice([-45, 0, 45]),
                rng.randint(-5, 5),
                rng.randint(-30, 30),
                rng.choice([-140, 0, 140]),
                minutes,
                rng.choice(["+08:00", "+08:00", "+00:00"]),
                which,
            )
        )
    return out


def blank_fx(tape: Path, every: int) -> Path:
    """Blank the EUR/USD cell of every ``every``-th row: those chunks take the row reader.
    The last 300 rows stay plain, so each symbol's newest row is in a block."""
    lines = tape.read_text().splitlines()
    for k in range(every, len(lines) - 300, every):
        cells = lines[k].split(",")
        cells[7] = ""
        lines[k] = ",".join(cells)
    tape.write_text("\n".join(lines) + "\n")
    return tape


def spikes(tape: Path, every: int) -> Path:
    """Every ``every``-th row's price 1.5 times its neighbours' (over ``max_jump``, never
    confirmed): held back by the quality check, never stored. Their blocks are stored only in
    part."""
    lines = tape.read_text().splitlines()
    for k in range(every + 1, len(lines) - 300, every):
        cells = lines[k].split(",")
        cells[2] = f"{Decimal(cells[2]) * Decimal('1.5'):.2f}"
        cells[4] = ""  # no day high
        lines[k] = ",".join(cells)
    tape.write_text("\n".join(lines) + "\n")
    return tape


def record(cfg: Settings, tape: Path, db: Path, blocks: bool) -> Store:
    store = Store.open(db)
    engine = Engine(cfg, store, fast_path=blocks, record_observations=True)
    reader = TapeReader(tape, symbols={s.symbol for s in cfg.symbols})
    rows = reader.blocks(CHUNK) if blocks else iter(reader)
    jumps = {s.symbol: s.max_jump for s in cfg.symbols}
    engine.process_batched(quality_filtered(rows, jumps, Counter()), 0.0)
    return store


def plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "id"} for row in rows]


def newest(store: Store) -> dict[str, dict[str, Any]]:
    """Each symbol's newest row, without its id."""
    return {s: plain([row])[0] for s, row in store.latest_observations().items()}


def counts(store: Store) -> tuple[int, int]:
    table = store.conn.execute("SELECT count(*) FROM observations").fetchone()[0]
    blocks = store.conn.execute("SELECT count(*) FROM observation_blocks").fetchone()[0]
    return int(table), int(blocks)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    cfg = config(1, "0.01", 3)
    tape = spikes(blank_fx(write(tmp_path / "tape.csv", 3982, spec(3000), 3), 40), 333)
    rows = record(cfg, tape, tmp_path / "rows.db", False)
    made = record(cfg, tape, tmp_path / "blocks.db", True)
    yield rows, made
    rows.close()
    made.close()


def test_every_reader_sees_the_rows_a_block_stands_for(pair: tuple[Store, Store]) -> None:
    rows, blocks = pair
    table, stored = counts(blocks)
    assert stored > 10 and 0 < table < 1000  # most rows in blocks, some chunks row by row
    assert counts(rows) == (3000 - 8, 0)  # the 8 spikes held back are not stored
    got, want = blocks.observations(), rows.observations()
    assert len(want) == 3000 - 8 and plain(got) == plain(want)
    assert newest(blocks) == newest(rows)
    assert blocks.last_prices() == rows.last_prices()
    assert blocks.observation_sources() == rows.observation_sources()
    assert blocks.last_times() == rows.last_times()
    moments = [datetime.fromisoformat(r["time"]) for r in want[::37]]
    for moment in moments:
        for delta in (timedelta(0), timedelta(seconds=1)):
            for symbol in ("1810.HK", "0700.HK", "9988.HK"):
                at = moment + delta
                assert blocks.last_price_before(symbol, at) == rows.last_price_before(symbol, at)
    since = datetime.fromisoformat(want[1234]["time"])
    assert plain(blocks.observations(since)) == plain(rows.observations(since))


def test_a_later_row_is_the_newest_and_carries_on_from_the_blocks(
    pair: tuple[Store, Store],
) -> None:
    rows, blocks = pair
    cfg = config(1, "0.01", 3)
    last = max(datetime.fromisoformat(r["time"]) for r in rows.observations())
    later = Observation(
        symbol="0700.HK",
        time=last + timedelta(minutes=5),
        price=Decimal("41.05"),
        currency="HKD",
        source="tape",
    )
    for store in (rows, blocks):
        Engine(cfg, store, record_observations=True).process([later], 0.0)
    latest = blocks.latest_observations()
    assert latest["0700.HK"]["price"] == "41.05"
    assert newest(blocks) == newest(rows)
    assert blocks.last_price_before("0700.HK", later.time) == rows.last_price_before(
        "0700.HK", later.time
    )
    assert plain(blocks.observations()) == plain(rows.observations())


def test_pruning_goes_a_block_at_a_time_and_keeps_each_symbols_newest(
    pair: tuple[Store, Store],
) -> None:
    _, blocks = pair
    before_rows = blocks.observations()
    cut = datetime.fromisoformat(before_rows[2000]["time"])
    latest = blocks.latest_observations()
    assert all(row["id"] is None for row in latest.values())  # each symbol's newest: a block
    newest = {s: r["time"] for s, r in latest.items()}
    with blocks.transaction():
        gone = blocks.prune_observations(cut)
    after = blocks.observations()
    assert gone == len(before_rows) - len(after) and gone > 1000
    # nothing at or after the cut went, and whatever stayed is as it was
    assert [r for r in plain(before_rows) if r["time"] >= cut.isoformat()] == [
        r for r in plain(after) if r["time"] >= cut.isoformat()
    ]
    assert {s: r["time"] for s, r in blocks.latest_observations().items()} == newest
    # a second prune at the same cut finds nothing more
    with blocks.transaction():
        assert blocks.prune_observations(cut) == 0
    # a cut past every row leaves each symbol's newest (and its block's other rows)
    with blocks.transaction():
        blocks.prune_observations(cut + timedelta(days=3650))
    assert {s: r["time"] for s, r in blocks.latest_observations().items()} == newest
    assert len(blocks.observations()) < len(after)


def test_a_block_that_does_not_decode_is_counted_and_skipped(pair: tuple[Store, Store]) -> None:
    _, blocks = pair
    whole = len(blocks.observations())
    first = blocks.conn.execute("SELECT id, rows FROM observation_blocks ORDER BY id").fetchone()
    with blocks.transaction():
        blocks.conn.execute(
            "UPDATE observation_blocks SET data = ? WHERE id = ?", (b"not a block", first[0])
        )
    assert len(blocks.observations()) == whole - first[1]
    assert blocks.unreadable_blocks == 1


def test_store_copy_carries_the_blocks(pair: tuple[Store, Store], tmp_path: Path) -> None:
    _, blocks = pair
    assert blocks.path is not None
    target = tmp_path / "copy.db"
    done = run_cli(
        "store", "copy", "--from", f"sqlite:///{blocks.path}", "--to", f"sqlite:///{target}"
    )
    assert done.returncode == 0, done.stderr
    copied = Store.open(target)
    try:
        assert counts(copied) == counts(blocks)
        assert plain(copied.observations()) == plain(blocks.observations())
    finally:
        copied.close()


def test_a_bad_row_late_in_a_long_tape_writes_nothing(tmp_path: Path) -> None:
    names = ("1810.HK",)
    cfg_path = tmp_path / "mcap.toml"
    cfg_path.write_text(
        f'[[symbols]]\nsymbol = "1810.HK"\nname = "Xiaomi"\nshares = {SHARES}\n\n'
        '[[rules]]\nid = "hkd"\nsymbol = "1810.HK"\nthreshold = "1e12"\ncurrency = "HKD"\n\n'
        '[[sinks]]\nid = "console"\ntype = "console"\n'
    )
    tape = write(
        tmp_path / "tape.csv",
        3982,
        [(*s[:6], max(s[6], 1), s[7], 0) for s in spec(30_000)],
        len(names),
    )
    lines = tape.read_text().splitlines()
    cells = lines[-3].split(",")
    cells[2] = "4O.05"  # a letter O
    lines[-3] = ",".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    db = tmp_path / "state.db"
    out = run_cli("replay", str(bad), "--config", str(cfg_path), "--state-db", str(db))
    assert out.returncode == 2, out.stderr
    assert f"bad.csv:{len(lines) - 2}" in out.stderr
    assert out.stdout == ""  # the events before the bad row are not printed either
    # nor without a db, though the events stream out of the engine as they are found
    no_db = run_cli("replay", str(bad), "--config", str(cfg_path), "--json")
    assert no_db.returncode == 2 and f"bad.csv:{len(lines) - 2}" in no_db.stderr
    assert no_db.stdout == ""
    store = Store.open(db)
    try:
        assert counts(store) == (0, 0)
        assert store.last_times() == {}
        assert store.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    finally:
        store.close()
    # the good tape goes in whole, and a second run of it adds nothing
    good = run_cli("replay", str(tape), "--config", str(cfg_path), "--state-db", str(db), "--json")
    assert good.returncode == 0, good.stderr
    store = Store.open(db)
    try:
        assert len(store.observations()) == 30_000
    finally:
        store.close()
    again = run_cli("replay", str(tape), "--config", str(cfg_path), "--state-db", str(db))
    assert "30000 row(s) at or before" in again.stderr
    # the good tape without a db prints the events the db run stored, in order
    printed = run_cli("replay", str(tape), "--config", str(cfg_path), "--json")
    assert printed.returncode == 0, printed.stderr
    ids = [json.loads(line)["id"] for line in printed.stdout.splitlines()]
    assert ids == [json.loads(line)["id"] for line in good.stdout.splitlines()]
    assert len(ids) >= 5


def test_events_are_handed_out_as_they_are_found_in_tape_order(tmp_path: Path) -> None:
    """Not stored, not enqueued (a replay without a db): each block's events go to ``emit``
    as it is done, so a long replay never holds them all; they are the events, in order."""
    cfg = config(1, "0.01", 3)
    tape = spikes(blank_fx(write(tmp_path / "tape.csv", 3982, spec(3000), 3), 40), 333)
    symbols = {s.symbol for s in cfg.symbols}

    def engine() -> Engine:
        return Engine(
            cfg, Store.open(None), record_observations=False, store_events=False, notify=False
        )

    kept = engine().process(TapeReader(tape, symbols=symbols).blocks(CHUNK), 0.0)
    handed: list[list[Event]] = []
    streamed = engine().process(
        TapeReader(tape, symbols=symbols).blocks(CHUNK), 0.0, emit=handed.append
    )
    assert len(kept.events) > 20 and kept.emitted == 0
    assert streamed.events == [] and streamed.emitted == len(kept.events)
    assert len(handed) > 5  # block by block, not once at the end
    assert [e for part in handed for e in part] == kept.events
    assert streamed.observations == kept.observations
