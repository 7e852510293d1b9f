"""``mcap-monitor backtest`` and ``report`` as a user runs them, offline, from real history.

Data: ``tests/fixtures/data`` (see its README.md): 1810.HK daily Yahoo
history 2020-2025 and the ECB reference-rate history.
"""

from __future__ import annotations

import csv
import json
import os
import struct
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "fixtures" / "data"
PRICES = DATA / "1810.HK_daily_2020-2025_yahoo.csv"
ECB = DATA / "ecb_eurofxref-hist_to_2025-05-09.csv"
CONFIG = ROOT / "config" / "mcap-monitor.toml"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCAP_")}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=cwd or ROOT,
    )  # fmt: skip


def backtest(*extra: str, start: str = "2025-01-20", end: str = "2025-03-10") -> dict[str, object]:
    proc = cli(
        "backtest", "1810.HK", "--from", start, "--to", end, "--config", str(CONFIG),
        "--prices", str(PRICES), "--fx-history", str(ECB), "--json", *extra,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


def dates(doc: dict[str, object], rule: str, kind: str) -> list[str]:
    events = doc["events"]
    assert isinstance(events, list)
    return [e["time"][:10] for e in events if e["rule"] == rule and e["kind"] == kind]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module", autouse=True)
def _shared_data() -> None:
    assert PRICES.is_file() and ECB.is_file(), f"fixture data not found: {DATA}"


def test_offline_backtest_reproduces_the_xiaomi_milestone_dates() -> None:
    doc = backtest()
    assert dates(doc, "hkd-1t", "touched_above")[0] == "2025-02-04"
    assert dates(doc, "hkd-1t", "crossed_above")[0] == "2025-02-06"
    assert dates(doc, "cny-1t", "touched_above")[0] == "2025-02-07"
    assert dates(doc, "cny-1t", "crossed_above")[0] == "2025-02-10"
    summary = {s["rule"]: s for s in doc["summary"]}  # type: ignore[union-attr]
    assert summary["hkd-1t"]["first_touched_above"] == "2025-02-04"
    assert summary["hkd-1t"]["first_crossed_above"] == "2025-02-06"
    assert summary["cny-1t"]["first_touched_above"] == "2025-02-07"
    assert summary["cny-1t"]["first_crossed_above"] == "2025-02-10"
    # the 2025-01-28 Yahoo placeholder bar is skipped and counted
    assert doc["warnings"] == {
        "placeholder_bars": 1,
        "placeholder_days": ["2025-01-28"],
        "skipped": ["rule global-top100 skipped on 32 rows: no top-100 cutoff"],
    }


def first_close_above(threshold: Decimal) -> str:
    """Independently of the engine: the first real bar whose close x shares >= threshold."""
    with PRICES.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if int(float(row["Volume"])) == 0:
                continue  # placeholder bars are not closes
            day = datetime.fromisoformat(row["Date"]).date()
            shares = 25_905_000_000 if day >= date(2025, 3, 25) else 25_105_000_000
            close = Decimal(row["Close"]).quantize(Decimal("0.001"))
            if close * shares >= threshold:
                return day.isoformat()
    raise AssertionError("never closed above")


def test_first_day_ever_xiaomi_closed_above_hkd_1t_in_2020_2025() -> None:
    expected = first_close_above(Decimal(10) ** 12)
    assert expected == "2025-02-06"
    doc = backtest(start="2020-01-01", end="2025-12-31")
    assert dates(doc, "hkd-1t", "crossed_above")[0] == expected
    summary = {s["rule"]: s for s in doc["summary"]}  # type: ignore[union-attr]
    assert summary["hkd-1t"]["first_crossed_above"] == expected
    # the share count changes with the placement of 2025-03-25: the close of 2025-04-07
    # (HK$36.45 x 25.905 bn) is below the band and re-arms the rule
    assert dates(doc, "hkd-1t", "crossed_below") == ["2025-04-07"]
    warnings = doc["warnings"]
    assert isinstance(warnings, dict)
    assert warnings["placeholder_bars"] == 9


def test_human_output_lists_events_summary_and_skipped_placeholder() -> None:
    proc = cli(
        "backtest", "1810.HK", "--from", "2025-01-20", "--to", "2025-03-10",
        "--config", str(CONFIG), "--prices", str(PRICES), "--fx-history", str(ECB),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "2025-02-06 16:00 HKT   1810.HK   hkd-1t         crossed_above" in out
    assert "first touched 2025-02-04, first crossed above 2025-02-06" in out
    assert "first touched 2025-02-07, first crossed above 2025-02-10" in out
    assert "1 placeholder bar(s) skipped (O=H=L=C, volume 0): 2025-01-28" in out
    assert "warning: skipped placeholder bar 2025-01-28" in proc.stderr
    # not a terminal: no progress bar
    assert "\r" not in proc.stderr


def test_plot_writes_a_1200x700_png(tmp_path: Path) -> None:
    out = tmp_path / "xiaomi.png"
    backtest("--plot", str(out))
    assert png_size(out) == (1200, 700)


BLOCK_MATPLOTLIB = """
import sys
from importlib.abc import MetaPathFinder

class NoMatplotlib(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoMatplotlib())
from monitor.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_plot_without_matplotlib_names_the_extra_to_install(tmp_path: Path) -> None:
    out = tmp_path / "x.png"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCAP_")}
    proc = subprocess.run(
        [
            sys.executable, "-c", BLOCK_MATPLOTLIB, "backtest", "1810.HK",
            "--from", "2025-01-20", "--to", "2025-03-10", "--config", str(CONFIG),
            "--prices", str(PRICES), "--fx-history", str(ECB), "--plot", str(out),
        ],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "matplotlib" in proc.stderr
    assert "pip install 'mcap-monitor[plot]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_unknown_symbol_lists_the_configured_ones() -> None:
    proc = cli(
        "backtest", "0700.HK", "--from", "2025-01-20", "--to", "2025-03-10",
        "--config", str(CONFIG), "--prices", str(PRICES),
    )  # fmt: skip
    assert proc.returncode == 2
    assert "symbol '0700.HK' is not configured" in proc.stderr
    assert "1810.HK" in proc.stderr


def test_dates_outside_the_history_say_so() -> None:
    proc = cli(
        "backtest", "1810.HK", "--from", "2019-01-01", "--to", "2019-06-30",
        "--config", str(CONFIG), "--prices", str(PRICES), "--fx-history", str(ECB),
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no price bars for 1810.HK between 2019-01-01 and 2019-06-30" in proc.stderr


def test_report_shows_the_stored_history_with_a_chart(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    replay = cli("replay", "--config", str(CONFIG), "--state-db", str(db), "--json")
    assert replay.returncode == 0, replay.stderr
    replayed = [json.loads(line) for line in replay.stdout.splitlines()]
    chart = tmp_path / "report.png"
    proc = cli(
        "report", "--config", str(CONFIG), "--state-db", str(db), "--since", "2025-01-01",
        "--json", "--plot", str(chart),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [e["id"] for e in doc["events"]] == [e["id"] for e in replayed]
    summary = {s["rule"]: s for s in doc["summary"]}
    assert summary["hkd-1t"]["first_crossed_above"] == "2025-02-06"
    assert summary["cny-1t"]["first_touched_above"] == "2025-02-07"
    assert png_size(chart) == (1200, 700)


def test_report_since_excludes_older_history(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    assert cli("replay", "--config", str(CONFIG), "--state-db", str(db)).returncode == 0
    proc = cli("report", "--config", str(CONFIG), "--state-db", str(db), "--since", "2025-02-11")
    assert proc.returncode == 0, proc.stderr
    assert "2025-02-13 16:00 HKT   1810.HK   cny-1t         crossed_below" in proc.stdout
    assert "2025-02-06" not in proc.stdout.split("Summary")[0]
