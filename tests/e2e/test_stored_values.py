"""Nothing already stored may make a read command fail (issue 11, part 3).

A database made by a real replay, then corrupted as an older version or a hand edit could:
``status`` (text and JSON), ``events`` and ``report`` still answer, exit 0, and show the value
as "unreadable".
"""

from __future__ import annotations

import json
import sqlite3
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
TAPE = (
    "time,symbol,price,currency,shares,fx_HKD_USD\n"
    "2025-02-03T08:00:00+00:00,1810.HK,35,HKD,,0.128\n"
    "2025-02-04T08:00:00+00:00,1810.HK,45,HKD,,0.128\n"
)
# a quoted cell: the tape is read row by row, and its rows are stored as table rows (a plain
# tape's are stored as a block of its lines, ``store.blocks``)
ROW_TAPE = TAPE.replace(",1810.HK,35,", ',"1810.HK",35,')
CORRUPTIONS = {
    "last_value huge": "UPDATE rule_state SET last_value = '1e999999999'",
    "last_threshold huge": "UPDATE rule_state SET last_threshold = '1e999999999'",
    "last_value NaN": "UPDATE rule_state SET last_value = 'NaN'",
    "last_value tiny": "UPDATE rule_state SET last_value = '1e-999999999'",
    "price huge": "UPDATE observations SET price = '1e999999999'",
    "market_cap huge": "UPDATE observations SET market_cap = '1e999999999'",
    "block not a block": "UPDATE observation_blocks SET data = x'00ff'",
    "block data cut short": "UPDATE observation_blocks SET data = x'28b52ffd'",
    "block head not JSON": "UPDATE observation_blocks SET head = '{bad'",
    "since not a date": "UPDATE rule_state SET since = '9999-99-99'",
    "payload not JSON": "UPDATE events SET payload = '{bad'",
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_corrupt_stored_value_never_breaks_a_read_command(tmp_path: Path, name: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    tape = tmp_path / "mid.csv"
    tape.write_text(ROW_TAPE if "observations" in CORRUPTIONS[name] else TAPE)
    db = tmp_path / "bad.db"
    made = run_cli("replay", str(tape), "--config", str(config), "--state-db", str(db))
    assert made.returncode == 0, made
    conn = sqlite3.connect(db)
    assert conn.execute(CORRUPTIONS[name]).rowcount >= 1  # it hit what it corrupts
    conn.commit()
    conn.close()
    outputs = {}
    for command in (["status"], ["status", "--json"], ["events"], ["report"]):
        read = run_cli(*command, "--config", str(config), "--state-db", str(db))
        assert read.returncode == 0, (command, read)
        assert "unexpected" not in read.stderr and "Error" not in read.stderr, (command, read)
        outputs[" ".join(command)] = read.stdout
    doc = json.loads(outputs["status --json"])
    if name.startswith(("last_", "price", "since")):
        assert "unreadable" in outputs["status"], outputs["status"]
        assert "unreadable" in json.dumps(doc["rules"]), doc
    else:
        assert doc["rules"][0]["state"] in ("above", "below"), doc
