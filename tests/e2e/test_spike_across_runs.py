"""The spike check's reference survives across runs (issue 11, part 3).

``replay spA.csv --state-db sp.db`` (35), then a second tape into the same db (46, then
35.1): the first row of the second tape is compared with the db's last price, not accepted
as a new reference. The same for the daemon's tape source and the live source.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from conftest import run_cli

from monitor.core.valuation import Observation
from monitor.sources.tape import quality_filtered
from monitor.sources.tape_source import TapeSource
from monitor.store import Store

CONFIG = """\
[[symbols]]
symbol = "1810.HK"
shares = 10_000_000_000

[[rules]]
id = "hkd-400bn"
symbol = "1810.HK"
threshold = 400_000_000_000
currency = "HKD"
"""
HEADER = "time,symbol,price,currency,shares,fx_HKD_USD\n"
T0 = datetime(2025, 2, 3, 8, 0, tzinfo=UTC)
LIMIT = {"1810.HK": Decimal("0.25")}


def row(n: int, price: object) -> str:
    return f"{(T0 + timedelta(days=n)).isoformat()},1810.HK,{price},HKD,,0.128\n"


def db_after_first_tape(tmp_path: Path) -> Path:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    tape = tmp_path / "spA.csv"
    tape.write_text(HEADER + row(0, 35))
    db = tmp_path / "sp.db"
    out = run_cli("replay", str(tape), "--config", str(config), "--state-db", str(db))
    assert out.returncode == 0, out
    return db


def second_tape(tmp_path: Path) -> Path:
    tape = tmp_path / "spB.csv"
    tape.write_text(HEADER + row(1, 46) + row(2, 35.1))
    return tape


def stored_prices(db: Path) -> dict[str, Decimal]:
    store = Store.open_read_only(db)
    try:
        return store.last_prices()
    finally:
        store.close()


def test_the_store_hands_out_each_symbols_last_price(tmp_path: Path) -> None:
    assert stored_prices(db_after_first_tape(tmp_path)) == {"1810.HK": Decimal(35)}


def test_the_tape_filter_is_seeded_from_the_stored_price(tmp_path: Path) -> None:
    seed = stored_prices(db_after_first_tape(tmp_path))
    rows = [
        Observation(T0 + timedelta(days=n), "1810.HK", Decimal(p), "HKD", None, None, (), None, "t")
        for n, p in ((1, "46"), (2, "35.1"))
    ]
    held: Counter[str] = Counter()
    got = [o.price for o in quality_filtered(rows, LIMIT, held, seed)]
    assert got == [Decimal("35.1")] and held["1810.HK"] == 1
    unseeded = [o.price for o in quality_filtered(rows, LIMIT, Counter())]
    assert unseeded == [Decimal(46), Decimal("35.1")]  # what happened before


def test_the_daemon_tape_source_is_seeded_too(tmp_path: Path) -> None:
    seed = stored_prices(db_after_first_tape(tmp_path))
    source = TapeSource(second_tape(tmp_path), 0.0, {}, LIMIT, seed)
    prices = []
    for _ in range(3):
        prices += [str(o.price) for o in source.poll(["1810.HK"], T0).observations]
    assert prices == ["35.1"] and source.held["1810.HK"] == 1


def test_a_second_replay_into_the_same_db_holds_the_spike_back(tmp_path: Path) -> None:
    db = db_after_first_tape(tmp_path)
    config = tmp_path / "c.toml"
    out = run_cli(
        "replay", str(second_tape(tmp_path)), "--config", str(config), "--state-db", str(db)
    )
    assert out.returncode == 0, out
    # 46 is 31 % above the stored 35: held back, so no crossed_above then crossed_below pair
    assert "crossed_above" not in out.stdout and "crossed_below" not in out.stdout
    assert "1 row(s) of 1810.HK held back as price spikes" in out.stderr
