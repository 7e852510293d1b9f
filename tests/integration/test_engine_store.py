"""The engine on real SQLite files: restarts, split replays, first-run summary, atomicity."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest
from conftest import BUNDLED_TAPE, DEFAULT_CONFIG
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.errors import InputError
from monitor.service import Engine
from monitor.settings import load_settings
from monitor.sources.tape import TapeReader
from monitor.store import MIGRATIONS, Store

SETTINGS, _ = load_settings(DEFAULT_CONFIG)
TAPE_LINES = BUNDLED_TAPE.read_text().splitlines(keepends=True)


def replay(db: Path | None, lines: list[str]) -> list[tuple[str, str, str]]:
    store = Store.open(db)
    try:
        result = Engine(SETTINGS, store).process(
            TapeReader("tape.csv", io.StringIO("".join(lines))), now=0.0
        )
        return [(e.time.date().isoformat(), e.rule_id, e.kind) for e in result.events]
    finally:
        store.close()


def test_bundled_tape_gives_the_february_2025_milestones() -> None:
    events = replay(None, TAPE_LINES)
    assert ("2025-02-04", "hkd-1t", "touched_above") in events
    assert ("2025-02-06", "hkd-1t", "crossed_above") in events
    assert ("2025-02-07", "cny-1t", "touched_above") in events
    assert ("2025-02-10", "cny-1t", "crossed_above") in events
    first_hkd_cross = next(e for e in events if e[1:] == ("hkd-1t", "crossed_above"))
    assert first_hkd_cross[0] == "2025-02-06"


def test_restart_on_the_same_db_never_re_emits_recorded_crossings(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = replay(db, TAPE_LINES)
    again = replay(db, TAPE_LINES)
    assert first and again == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == len(first)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=1, max_value=len(TAPE_LINES) - 1))
def test_split_replay_on_one_db_emits_the_same_events_as_one_run(
    tmp_path_factory: pytest.TempPathFactory, cut: int
) -> None:
    db = tmp_path_factory.mktemp("split") / "state.db"
    header, rows = TAPE_LINES[:1], TAPE_LINES[1:]
    whole = replay(None, TAPE_LINES)
    split = replay(db, header + rows[:cut]) + replay(db, header + rows[cut:])
    assert split == whole


def test_first_run_enqueues_one_summary_and_restarts_none(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    replay(db, TAPE_LINES[:3])
    store = Store.open(db)
    try:
        kinds = [row.kind for row in store.outbox_list()]
        assert kinds.count("summary") == 1
        summary = next(r for r in store.outbox_list() if r.kind == "summary")
        rules = {b["rule"] for b in summary.payload["baselines"]}
        assert rules == {"hkd-1t", "cny-1t"}  # the top-100 rule has no cutoff in this tape
    finally:
        store.close()
    replay(db, TAPE_LINES[:1] + TAPE_LINES[3:])
    store = Store.open(db)
    try:
        kinds = [row.kind for row in store.outbox_list()]
        assert kinds.count("summary") == 1
        assert "baseline" not in kinds
        assert {"crossed_above", "touched_above"} <= set(kinds)
    finally:
        store.close()


def test_a_rejected_tape_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    bad = list(TAPE_LINES)
    row = next(csv.reader([bad[20]]))
    row[2] = "nan"
    bad[20] = ",".join(row) + "\n"
    with pytest.raises(InputError, match=r"tape.csv:21:3"):
        replay(db, bad)
    store = Store.open(db)
    try:
        assert store.rule_states() == {}
        assert store.events() == []
        assert store.outbox_counts()["pending"] == 0
        assert store.observations() == []
    finally:
        store.close()


def test_schema_is_versioned_and_a_newer_db_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    Store.open(db).close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    from monitor.errors import StoreError

    with pytest.raises(StoreError, match="newer than this program"):
        Store.open(db)
