"""``mcap-monitor tape build``: the bundled tape is regenerated exactly, and tapes replay to the
backtest's events. Data: ``tests/fixtures/data`` (see its README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "fixtures" / "data"
PRICES = DATA / "1810.HK_daily_2020-2025_yahoo.csv"
ECB = DATA / "ecb_eurofxref-hist_to_2025-05-09.csv"
CONFIG = ROOT / "config" / "mcap-monitor.toml"
BUNDLED = ROOT / "monitor" / "data" / "xiaomi_2025-01-20_2025-03-10.csv"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCAP_")}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _shared_data() -> None:
    assert PRICES.is_file() and ECB.is_file(), f"fixture data not found: {DATA}"


def build(out: Path, *extra: str, start: str = "2025-01-20", end: str = "2025-03-10") -> str:
    proc = cli(
        "tape", "build", "--prices", str(PRICES), "--fx-history", str(ECB),
        "--from", start, "--to", end, "-o", str(out), *extra,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_regenerating_the_bundled_tape_matches_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "xiaomi.csv"
    stderr = build(out, "--shares", "25105000000")
    assert out.read_bytes() == BUNDLED.read_bytes()
    assert "warning: skipped placeholder bar 2025-01-28 (O=H=L=C, volume 0)" in stderr
    assert "wrote 32 rows" in stderr


def replay(tape: Path) -> list[dict[str, object]]:
    proc = cli("replay", str(tape), "--config", str(CONFIG), "--json")
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def backtest(start: str, end: str, *extra: str) -> list[dict[str, object]]:
    proc = cli(
        "backtest", "1810.HK", "--from", start, "--to", end, "--config", str(CONFIG),
        "--prices", str(PRICES), "--fx-history", str(ECB), "--json", *extra,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events: list[dict[str, object]] = json.loads(proc.stdout)["events"]
    return events


def without(events: list[dict[str, object]], key: str) -> list[dict[str, object]]:
    return [{k: v for k, v in e.items() if k != key} for e in events]


def test_built_tape_replays_to_the_backtest_events(tmp_path: Path) -> None:
    tape = tmp_path / "xiaomi.csv"
    build(tape, "--shares", "25105000000")
    replayed = replay(tape)
    tested = backtest("2025-01-20", "2025-03-10")
    assert len(replayed) == 9
    # the tape's fixed --shares are labelled "tape"; the backtest's come from shares_history
    assert {e["shares_source"] for e in replayed} == {"tape"}
    assert without(replayed, "shares_source") == without(tested, "shares_source")


def test_tape_without_shares_replays_identically_through_shares_history(tmp_path: Path) -> None:
    # 2020-2025 crosses the 2025-03-25 placement: both sides take shares from the config
    tape = tmp_path / "xiaomi_2020_2025.csv"
    build(tape, start="2020-01-01", end="2025-12-31")
    replayed = replay(tape)
    tested = backtest("2020-01-01", "2025-12-31")
    assert replayed == tested
    assert {e["shares"] for e in tested} == {25_105_000_000, 25_905_000_000}
