"""Small gaps (issue 11): a db being created, private parent directories, tape digits."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest
from conftest import run_cli

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


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    return path


def test_an_empty_file_is_a_db_being_created(tmp_path: Path, config: Path) -> None:
    db = tmp_path / "new.db"
    db.touch()
    out = run_cli("status", "--config", str(config), "--state-db", str(db))
    assert out.returncode == 2, out
    assert f"no state database yet at {db} (being created?)" in out.stderr, out.stderr


def test_a_db_without_tables_is_one_being_created(tmp_path: Path, config: Path) -> None:
    db = tmp_path / "new.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")  # a header, user_version 0, no table yet
    conn.close()
    assert db.stat().st_size > 0
    out = run_cli("events", "--config", str(config), "--state-db", str(db))
    assert out.returncode == 2, out
    assert "no state database yet at" in out.stderr and "being created?" in out.stderr


def test_another_programs_db_is_still_named_so(tmp_path: Path, config: Path) -> None:
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    out = run_cli("status", "--config", str(config), "--state-db", str(db))
    assert out.returncode == 2, out
    assert "not an mcap-monitor state database" in out.stderr, out.stderr


def test_every_missing_parent_of_a_new_db_is_private(tmp_path: Path, config: Path) -> None:
    tape = tmp_path / "t.csv"
    tape.write_text(HEADER + "2025-02-03T08:00:00+00:00,1810.HK,35,HKD,,0.128\n")
    db = tmp_path / "new" / "sub" / "x.db"
    old = os.umask(0o022)
    try:
        out = run_cli("replay", str(tape), "--config", str(config), "--state-db", str(db))
    finally:
        os.umask(old)
    assert out.returncode == 0, out
    for directory in (tmp_path / "new", tmp_path / "new" / "sub"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


@pytest.mark.parametrize("cell", ["1_000", "١٢", "３５"])
def test_a_tape_number_is_ascii_digits_only(tmp_path: Path, config: Path, cell: str) -> None:
    tape = tmp_path / "t.csv"
    tape.write_text(HEADER + f"2025-02-03T08:00:00+00:00,1810.HK,{cell},HKD,,0.128\n")
    out = run_cli("replay", str(tape), "--config", str(config))
    assert out.returncode == 2, out
    assert "t.csv:2:3" in out.stderr and "unexpected" not in out.stderr, out.stderr


def test_config_numbers_keep_their_underscores(tmp_path: Path, config: Path) -> None:
    out = run_cli("config", "validate", "--config", str(config))
    assert out.returncode == 0, out
