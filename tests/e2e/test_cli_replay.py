"""The CLI as a user runs it: replay, bad input, config, status and events."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import BUNDLED_TAPE, DEFAULT_CONFIG, run_cli

HEADER = "time,symbol,price,currency,day_high,shares,fx_HKD_CNY,fx_HKD_USD\n"
GOOD = "2025-02-06T16:00:00+08:00,1810.HK,40.55,HKD,40.7,25105000000,0.9361,0.1284\n"


def test_replay_without_arguments_prints_the_bundled_milestones() -> None:
    out = run_cli("replay", "--json")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    found = {(e["time"][:10], e["rule"], e["kind"]) for e in events}
    assert ("2025-02-04", "hkd-1t", "touched_above") in found
    assert ("2025-02-06", "hkd-1t", "crossed_above") in found
    assert ("2025-02-07", "cny-1t", "touched_above") in found
    assert ("2025-02-10", "cny-1t", "crossed_above") in found
    for event in events:
        assert {
            "id",
            "time",
            "symbol",
            "rule",
            "kind",
            "value",
            "currency",
            "threshold",
            "price",
        } <= set(event)
    crossed = next(e for e in events if e["rule"] == "cny-1t" and e["kind"] == "crossed_above")
    assert crossed["currency"] == "CNY" and crossed["price"] == "43.75"
    assert crossed["fx"][0]["source"] == "ECB" and crossed["fx"][0]["as_of"].startswith(
        "2025-02-10"
    )
    # the bundled tape has no top-100 cutoff: the rule is skipped, never guessed
    assert "global-top100 skipped on 32 rows: no top-100 cutoff" in out.stderr


def test_readable_replay_has_a_header_and_one_line_per_event() -> None:
    out = run_cli("replay")
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["time", "symbol", "rule"]
    assert any(
        "2025-02-06" in line and "crossed_above" in line and "HK$1T" in line for line in lines
    )


def test_event_ids_are_stable_across_runs() -> None:
    a = run_cli("replay", "--json").stdout
    b = run_cli("replay", "--json").stdout
    assert a == b and a


def test_oscillating_tape_inside_the_band_emits_one_crossing(tmp_path: Path) -> None:
    # SYNTHETIC prices wiggling around HK$1T / 25.105 bn shares = HK$39.833
    prices = ["39.00", "39.90", "39.70", "39.95", "39.60", "39.88", "39.75", "39.92"]
    tape = tmp_path / "wiggle.csv"
    tape.write_text(
        "time,symbol,price,currency,shares\n"
        + "".join(
            f"2025-02-{d:02d}T16:00:00+08:00,1810.HK,{p},HKD,25105000000\n"
            for d, p in enumerate(prices, start=3)
        )
    )
    out = run_cli("replay", str(tape), "--json")
    kinds = [json.loads(line)["kind"] for line in out.stdout.splitlines()]
    assert kinds.count("crossed_above") == 1 and "crossed_below" not in kinds


def test_split_runs_on_one_state_db_match_one_run(tmp_path: Path) -> None:
    lines = BUNDLED_TAPE.read_text().splitlines(keepends=True)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("".join(lines[:15]))
    b.write_text(lines[0] + "".join(lines[15:]))
    db = tmp_path / "state.db"
    one = run_cli("replay", "--json").stdout.splitlines()
    two = (
        run_cli("replay", str(a), "--json", "--state-db", str(db)).stdout.splitlines()
        + run_cli("replay", str(b), "--json", "--state-db", str(db)).stdout.splitlines()
    )
    assert two == one


BAD_ROWS = {
    "non-numeric price": (GOOD.replace("40.55", "abc"), ":2:3", "price is not a number"),
    "zero price": (GOOD.replace("40.55", "0"), ":2:3", "price must be positive"),
    "negative price": (GOOD.replace("40.55", "-1"), ":2:3", "price must be positive"),
    "NaN price": (GOOD.replace("40.55", "NaN"), ":2:3", "not finite"),
    "inf high": (GOOD.replace("40.7", "inf"), ":2:5", "not finite"),
    "negative shares": (GOOD.replace("25105000000", "-5"), ":2:6", "shares must be positive"),
    "fractional shares": (GOOD.replace("25105000000", "2.5"), ":2:6", "whole number"),
    "no offset": (GOOD.replace("+08:00", ""), ":2:1", "no UTC offset"),
    "bad time": (GOOD.replace("2025-02-06T16:00:00+08:00", "yesterday"), ":2:1", "bad timestamp"),
    "unknown currency": (GOOD.replace(",HKD,", ",HKG,"), ":2:4", "unknown currency code"),
    "unknown symbol": (GOOD.replace("1810.HK", "0981.HK"), ":2:2", "'0981.HK' is not configured"),
    "missing field": (GOOD.replace(",0.1284", ""), ":2:", "row has 7 fields"),
    "malformed quote": (GOOD.replace("1810.HK", '"1810.HK'), ":", "malformed CSV"),
    "time going backwards": (
        GOOD + GOOD.replace("02-06T", "02-05T"),
        ":4:1",
        "not after the previous row",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_ROWS))
def test_bad_tape_input_exits_2_with_one_line_naming_where(tmp_path: Path, name: str) -> None:
    rows, where, what = BAD_ROWS[name]
    where = where.replace(":2:", ":3:")
    tape = tmp_path / "bad.csv"
    tape.write_text(HEADER + GOOD.replace("02-06T", "02-04T") + rows.replace(":2:", ":3:"))
    db = tmp_path / "state.db"
    out = run_cli("replay", str(tape), "--state-db", str(db))
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), out.stderr
    assert what in lines[0] and f"bad.csv{where}" in lines[0]
    assert "Traceback" not in out.stderr
    # nothing from the good first row was committed either
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM rule_state").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0


def test_bad_rows_name_line_and_column(tmp_path: Path) -> None:
    tape = tmp_path / "bad.csv"
    tape.write_text(HEADER + GOOD.replace("40.55", "-3"))
    out = run_cli("replay", str(tape))
    assert f"({tape}:2:3)" in out.stderr


def test_missing_tape_and_missing_columns_are_input_errors(tmp_path: Path) -> None:
    out = run_cli("replay", str(tmp_path / "nope.csv"))
    assert out.returncode == 2 and "tape not found" in out.stderr
    tape = tmp_path / "cols.csv"
    tape.write_text("time,symbol,price\n")
    out = run_cli("replay", str(tape))
    assert out.returncode == 2 and "missing required column 'currency'" in out.stderr


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


SYMBOL = '[[symbols]]\nsymbol = "1810.HK"\nshares = 25105000000\n'
BAD_CONFIGS = {
    "unknown key": (SYMBOL + "colour = 'red'\n", "symbols[0].colour: unknown key", "c.toml:4:1"),
    "unknown symbol": (
        SYMBOL + '[[rules]]\nid = "a"\nsymbol = "0981.HK"\nthreshold = 1\ncurrency = "HKD"\n',
        "unknown symbol '0981.HK'",
        "c.toml:6:10",
    ),
    "duplicate rule ids": (
        SYMBOL
        + '[[rules]]\nid = "a"\nsymbol = "1810.HK"\ntop_n = 100\n'
        + '[[rules]]\nid = "a"\nsymbol = "1810.HK"\ntop_n = 50\n',
        "duplicate rule id 'a'",
        "c.toml:9:6",
    ),
    "unknown currency": (
        SYMBOL + '[[rules]]\nid = "a"\nsymbol = "1810.HK"\nthreshold = 1\ncurrency = "RMB"\n',
        "rules[0].currency",
        "c.toml:8:1",
    ),
    "threshold NaN": (
        SYMBOL + '[[rules]]\nid = "a"\nsymbol = "1810.HK"\nthreshold = "nan"\ncurrency = "HKD"\n',
        "rules[0].threshold",
        "c.toml:7:1",
    ),
    "negative shares": (SYMBOL.replace("25105000000", "-1"), "symbols[0].shares", "c.toml:3:1"),
    "broken TOML": ("[[symbols]\n", "invalid TOML", "c.toml:1:"),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, name: str) -> None:
    text, what, where = BAD_CONFIGS[name]
    config = _config(tmp_path, text)
    out = run_cli("config", "validate", "--config", str(config))
    assert out.returncode == 2, out
    line = out.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("Error: ")
    assert what in line and where in line, line


def test_config_validate_and_env_overrides(tmp_path: Path) -> None:
    out = run_cli("config", "validate", "--config", str(DEFAULT_CONFIG))
    assert out.returncode == 0 and "3 rule(s)" in out.stdout
    out = run_cli(
        "config", "show", env={"MCAP_CONFIG": str(DEFAULT_CONFIG), "MCAP_FX__TOLERANCE": "0.02"}
    )
    assert out.returncode == 0
    data = json.loads(out.stdout.split("\n", 1)[1])
    assert data["fx"]["tolerance"] == "0.02"
    bad = run_cli("config", "validate", env={"MCAP_FX__TOLERANCE": "lots"})
    assert bad.returncode == 2 and "fx.tolerance" in bad.stderr
    assert "(environment variable MCAP_FX__TOLERANCE)" in bad.stderr


def test_config_show_redacts_secrets(tmp_path: Path) -> None:
    secret_url = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
    config = _config(
        tmp_path,
        SYMBOL
        + f'[[sinks]]\nid = "team"\ntype = "webhook"\nurl = "{secret_url}"\n'
        + 'secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\n',
    )
    out = run_cli("config", "show", "--config", str(config))
    assert out.returncode == 0
    assert "XXXXSECRETXXXX" not in out.stdout and "MfKQ9r8GKYqr" not in out.stdout
    assert "**********" in out.stdout


def test_status_and_events_read_the_state_db(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    assert run_cli("replay", "--state-db", str(db)).returncode == 0
    out = run_cli("status", "--state-db", str(db))
    assert out.returncode == 0, out.stderr
    hkd = next(line for line in out.stdout.splitlines() if line.startswith("hkd-1t"))
    assert "above" in hkd and "HK$1T" in hkd
    # HK$1T less the 1 % band over 25.105 bn shares: HK$39.43
    assert "crosses below under HK$39.43" in hkd
    top = next(line for line in out.stdout.splitlines() if line.startswith("global-top100"))
    assert "unknown" in top
    data = json.loads(run_cli("status", "--state-db", str(db), "--json").stdout)
    cny = next(r for r in data["rules"] if r["rule"] == "cny-1t")
    assert cny["state"] == "above" and cny["currency"] == "CNY"
    events = run_cli("events", "--state-db", str(db), "--json").stdout.splitlines()
    assert len(events) == 9
    assert json.loads(events[-1])["time"].startswith("2025-02-14")


def test_usage_errors_exit_2() -> None:
    assert run_cli("replay", "--no-such-flag").returncode == 2
    assert run_cli().returncode == 2
