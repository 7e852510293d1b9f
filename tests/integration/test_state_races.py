"""State under restarts, pruning and concurrent processes on one database (issue 11, part 1).

Every case drives real SQLite files; processes that race are real subprocesses with timeouts.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPO

from monitor.bootstrap import check_state_dir
from monitor.core.valuation import Observation
from monitor.errors import StoreError
from monitor.notify.dblock import DeliveryLock
from monitor.service import Engine
from monitor.settings import Settings, load_settings
from monitor.sources.tape import TapeReader
from monitor.sources.tape_source import TapeSource
from monitor.store import MIGRATIONS, Store

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
T0 = datetime(2025, 2, 3, 8, 0, tzinfo=UTC)


def settings(tmp_path: Path) -> Settings:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    return load_settings(path)[0]


def write_tape(path: Path, prices: list[float], start: datetime = T0) -> Path:
    """One row a day from ``start``; a price of 40 is the rule's threshold."""
    lines = ["time,symbol,price,currency\n"]
    for n, price in enumerate(prices):
        lines.append(f"{(start + timedelta(days=n)).isoformat()},1810.HK,{price},HKD\n")
    path.write_text("".join(lines))
    return path


def kinds(result_events: list[object]) -> list[str]:
    return [e.kind for e in result_events]  # type: ignore[attr-defined]


# -- restarts and pruning ----------------------------------------------------------------
def test_restart_after_prune_does_not_replay_old_crossings(tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    tape = write_tape(tmp_path / "t.csv", [35, 45, 35, 45, 35])
    db = tmp_path / "state.db"
    store = Store.open(db)
    first = Engine(cfg, store).process(TapeReader(tape), 0.0)
    crossings = ["crossed_above", "crossed_below"]
    assert kinds(first.events) == ["baseline", *crossings, *crossings]
    queued = store.outbox_counts()["pending"]
    # housekeeping: retention ran out for every row
    store.prune_observations(T0 + timedelta(days=365))
    store.close()

    store = Store.open(db)  # the restart
    engine = Engine(cfg, store)
    source = TapeSource(tape, 0.0, engine.last_times)
    rows = source.poll(["1810.HK"], T0).observations
    assert rows == []  # the tape resumes after its last evaluated row, not from its start
    again = engine.process(TapeReader(tape), 0.0)
    assert again.events == [] and again.already_seen == 5
    assert store.outbox_counts()["pending"] == queued  # no alert went out again
    # the newest observation survives pruning: status still has something to show
    assert list(store.latest_observations()) == ["1810.HK"]
    store.close()


def test_a_stale_observation_after_restart_never_moves_state_back(tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    db = tmp_path / "state.db"
    store = Store.open(db)
    # a daemon that keeps no observations (record_observations=False) still keeps its place
    Engine(cfg, store, record_observations=False).process(
        TapeReader(write_tape(tmp_path / "a.csv", [45], T0 + timedelta(days=10))), 0.0
    )
    store.close()
    store = Store.open(db)
    late = Engine(cfg, store).process(TapeReader(write_tape(tmp_path / "b.csv", [35])), 0.0)
    assert late.events == [] and late.already_seen == 1
    state = store.rule_states()["hkd-400bn"]
    assert state.position == "above"
    assert store.last_readings()["hkd-400bn"].time == T0 + timedelta(days=10)
    store.close()


# -- two evaluating processes -----------------------------------------------------------
def test_two_engines_on_one_db_read_state_under_the_write_lock(tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    db = tmp_path / "state.db"
    early = write_tape(tmp_path / "early.csv", [35, 36])
    late = write_tape(tmp_path / "late.csv", [37, 45], T0 + timedelta(days=5))
    a_store, b_store = Store.open(db), Store.open(db)
    a, b = Engine(cfg, a_store), Engine(cfg, b_store)  # both read (empty) state now
    b_result = b.process(TapeReader(late), 0.0)
    a_result = a.process(TapeReader(early), 0.0)
    assert kinds(b_result.events) == ["baseline", "crossed_above"]
    # A sees B's newer rows: its older ones are already behind the state, not a 2nd baseline
    assert a_result.events == [] and a_result.already_seen == 2
    ids = [r[0] for r in a_store.conn.execute("SELECT id FROM events WHERE kind = 'baseline'")]
    assert len(ids) == 1
    assert a_store.last_readings()["hkd-400bn"].time == T0 + timedelta(days=6)
    a_store.close()
    b_store.close()


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCAP_")}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_replays_of_one_tape_at_once_give_one_history(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    prices = [37 + (n % 4) * 2 for n in range(400)]  # crosses 40 up and down, again and again
    first = write_tape(tmp_path / "first.csv", prices[:200])
    second = write_tape(tmp_path / "second.csv", prices[200:], T0 + timedelta(days=200))
    for round_ in range(3):
        db = tmp_path / f"state{round_}.db"
        procs = [
            _cli("replay", str(tape), "--config", str(config), "--state-db", str(db))
            for tape in (second, first)
        ]
        for proc in procs:
            _out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        conn = sqlite3.connect(db)
        n, distinct = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT time) FROM observations"
        ).fetchone()
        assert n == distinct  # no observation stored twice
        baselines = conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'baseline'").fetchone()
        assert baselines == (1,)
        (last,) = conn.execute("SELECT last_time FROM rule_state").fetchone()
        assert datetime.fromisoformat(last) == T0 + timedelta(days=399)
        conn.close()


def test_a_long_replay_commits_in_batches_so_others_can_write(tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    db = tmp_path / "state.db"
    tape = write_tape(tmp_path / "t.csv", [35 + (n % 3) for n in range(30)])
    store = Store.open(db)
    other = sqlite3.connect(db, timeout=0, isolation_level=None)
    wrote: list[int] = []
    locked: list[int] = []

    def rows() -> Iterator[Observation]:
        for n, obs in enumerate(TapeReader(tape)):
            if n and n % 10 == 0:  # between two batches: the write lock must be free
                other.execute("BEGIN IMMEDIATE")
                other.execute("INSERT INTO meta VALUES (?, 'x')", (f"probe{n}",))
                other.execute("COMMIT")
                wrote.append(n)
            elif n % 10 == 5:
                # inside a batch: its rows are read as they are evaluated, in its transaction
                # (never gathered first), so the reader works on while the engine does
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
                locked.append(n)
            yield obs

    result = Engine(cfg, store).process_batched(rows(), 0.0, batch=10)
    assert result.observations == 30 and wrote == [10, 20] and locked == [5, 15, 25]
    other.close()
    store.close()


# -- a new database, opened by three processes at once --------------------------------------
OPEN = "import sys; from pathlib import Path; from monitor.store import Store; " \
    "Store.open(Path(sys.argv[1])).close()"  # fmt: skip


def test_three_processes_creating_one_db_at_once_all_succeed(tmp_path: Path) -> None:
    for round_ in range(8):
        db = tmp_path / f"new{round_}" / "state.db"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN, str(db)],
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
            for _ in range(3)
        ]
        for proc in procs:
            _out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        conn.close()


# -- files ------------------------------------------------------------------------------------
def test_new_db_and_state_dir_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = Store.open(tmp_path / "fresh" / "state.db")
        store.set_meta("probe", "1")  # the -wal and -shm files exist now
        assert {p.name for p in (tmp_path / "fresh").iterdir()} >= {"state.db-wal"}
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "fresh").iterdir()}
        store.close()
        check_state_dir(tmp_path / "daemon-state")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700
    assert modes == dict.fromkeys(modes, 0o600) and "state.db" in modes
    assert stat.S_IMODE((tmp_path / "daemon-state").stat().st_mode) == 0o700


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_the_delivery_lock_never_writes_through_a_link(tmp_path: Path, link: str) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    db = tmp_path / "state.db"
    lock_path = Path(str(db) + ".deliver.lock")
    if link == "symlink":
        lock_path.symlink_to(victim)
    else:
        os.link(victim, lock_path)
    with pytest.raises(StoreError, match="delivery lock file"):
        DeliveryLock(db).try_acquire()
    assert victim.read_text() == "keep me\n"


def test_the_delivery_lock_still_works_on_its_own_file(tmp_path: Path) -> None:
    lock = DeliveryLock(tmp_path / "state.db")
    assert lock.try_acquire()
    assert lock.holder() == str(os.getpid())
    lock.release()
    assert DeliveryLock(tmp_path / "state.db").try_acquire()  # reopened: same own file
