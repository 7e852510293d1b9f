"""Hostile tapes and stored values through the CLI (issue 11, parts 3 and 6).

Every bad value is an input error at its file:line:column, exit 2, nothing written; no read
command fails on what is already stored; the live spike check applies to tapes too.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
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
T0 = datetime(2025, 2, 3, 8, 0, tzinfo=UTC)


def row(n: int, price: object = 35, shares: object = "", fx: object = "0.128") -> str:
    return f"{(T0 + timedelta(days=n)).isoformat()},1810.HK,{price},HKD,{shares},{fx}\n"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    return path


def db_counts(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        obs = conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
        events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        conn.close()
    return int(obs), int(events)


BAD_ROWS = {
    "price 1e400": (row(1, price="1e400"), ":3:3", "price"),
    "price 1e999999999": (row(1, price="1e999999999"), ":3:3", "price"),
    "fx 1e999999999": (row(1, fx="1e999999999"), ":3:6", "fx_HKD_USD"),
    "shares 1e30": (row(1, shares="1e30"), ":3:5", "shares"),
    "shares 1e999999999": (row(1, shares="1e999999999"), ":3:5", "shares"),
    "year 9999": ("9999-12-31T16:00:00+08:00,1810.HK,35,HKD,,0.128\n", ":3:1", "9999"),
    "tiny price": (row(1, price="1e-999999"), ":3:3", "price"),
}


@pytest.mark.parametrize("name", sorted(BAD_ROWS))
def test_an_absurd_number_is_an_input_error_at_its_cell(
    tmp_path: Path, config: Path, name: str
) -> None:
    bad, where, what = BAD_ROWS[name]
    tape = tmp_path / "t.csv"
    tape.write_text(HEADER + row(0) + bad + row(2, price=45))
    db = tmp_path / "state.db"
    out = run_cli("replay", str(tape), "--config", str(config), "--state-db", str(db))
    assert out.returncode == 2, out
    errors = [line for line in out.stderr.splitlines() if not line.startswith("state db: ")]
    assert len(errors) == 1 and errors[0].startswith("Error: "), out.stderr
    assert f"t.csv{where}" in out.stderr and what in out.stderr, out.stderr
    assert "unexpected" not in out.stderr
    assert db_counts(db) == (0, 0)  # nothing written, not even the good first row
    for command in ("status", "events", "report"):
        read = run_cli(command, "--config", str(config), "--state-db", str(db))
        assert read.returncode == 0, read


def test_replay_of_dev_zero_stops_at_the_line_cap(config: Path) -> None:
    out = run_cli("replay", "/dev/zero", "--config", str(config), timeout=60)
    assert out.returncode == 2
    assert "line is longer than 1 MiB" in out.stderr and "/dev/zero:1:1" in out.stderr


def test_a_huge_line_without_newline_is_refused(tmp_path: Path, config: Path) -> None:
    tape = tmp_path / "t.csv"
    tape.write_text(HEADER + row(0) + "x" * (3 << 20))
    out = run_cli("replay", str(tape), "--config", str(config))
    assert out.returncode == 2 and "t.csv:3:1" in out.stderr, out.stderr


@pytest.mark.parametrize("line", [3, 3002])
def test_invalid_utf8_is_reported_at_its_real_line(tmp_path: Path, config: Path, line: int) -> None:
    rows = [row(n, price=35 + (n % 3) / 10).encode() for n in range(line + 5)]
    rows[line - 2] = rows[line - 2].replace(b",HKD,", b",HK\xff,")
    tape = tmp_path / "t.csv"
    tape.write_bytes(HEADER.encode() + b"".join(rows))
    out = run_cli("replay", str(tape), "--config", str(config))
    assert out.returncode == 2, out
    assert f"t.csv:{line}:" in out.stderr and "invalid UTF-8" in out.stderr, out.stderr


def spike_tape(tmp_path: Path) -> Path:
    tape = tmp_path / "spike.csv"
    tape.write_text(HEADER + row(0, 35) + row(1, 46) + row(2, 35.1) + row(3, 35.2))
    return tape


def test_the_spike_check_applies_to_tapes(tmp_path: Path, config: Path) -> None:
    out = run_cli("replay", str(spike_tape(tmp_path)), "--config", str(config), "--json")
    assert out.returncode == 0, out
    kinds = [json.loads(line)["kind"] for line in out.stdout.splitlines()]
    assert kinds == ["baseline"]  # one bar of +31 % is held back, as a live quote would be
    assert "1 row(s) of 1810.HK held back as price spikes" in out.stderr


def test_a_trusted_tape_can_switch_the_check_off(tmp_path: Path, config: Path) -> None:
    out = run_cli(
        "replay",
        str(spike_tape(tmp_path)),
        "--config",
        str(config),
        "--json",
        "--no-quality-checks",
    )
    assert out.returncode == 0, out
    kinds = [json.loads(line)["kind"] for line in out.stdout.splitlines()]
    assert kinds == ["baseline", "crossed_above", "crossed_below"]


def test_a_confirmed_jump_is_evaluated(tmp_path: Path, config: Path) -> None:
    tape = tmp_path / "step.csv"
    tape.write_text(HEADER + row(0, 35) + row(1, 46) + row(2, 46.2))
    out = run_cli("replay", str(tape), "--config", str(config), "--json")
    kinds = [json.loads(line)["kind"] for line in out.stdout.splitlines()]
    assert kinds == ["baseline", "crossed_above"], out


def test_stored_values_beyond_range_never_break_a_read_command(
    tmp_path: Path, config: Path
) -> None:
    tape = tmp_path / "t.csv"
    tape.write_text(HEADER + row(0, 35) + row(1, 45))
    db = tmp_path / "state.db"
    out = run_cli("replay", str(tape), "--config", str(config), "--state-db", str(db))
    assert out.returncode == 0, out
    # a database written by an older version, before values were bounded
    conn = sqlite3.connect(db)
    conn.execute("UPDATE rule_state SET last_value = '1e400'")
    conn.execute("UPDATE observations SET price = '1e400', market_cap = '1e410'")
    payload = json.loads(conn.execute("SELECT payload FROM events LIMIT 1").fetchone()[0])
    payload["value"] = "1e400"
    conn.execute("UPDATE events SET payload = ?", (json.dumps(payload),))
    conn.commit()
    conn.close()
    for command in (["status"], ["status", "--json"], ["events"], ["report"]):
        read = run_cli(*command, "--config", str(config), "--state-db", str(db))
        assert read.returncode == 0, (command, read)
        assert "unexpected" not in read.stderr


@pytest.mark.timeout(180)
def test_sighup_with_an_unknown_timezone_is_rejected_and_health_stays_ok(tmp_path: Path) -> None:
    # the daemon harness of test_daemon.py; imported here so the cases above need none of it
    import signal

    import requests
    from e2e.daemon_support import running, webhook_receiver, write_config
    from fakes import NotifyListener, wait_until

    receiver, notify = webhook_receiver(), NotifyListener()
    try:
        config = write_config(
            tmp_path / "cfg.toml", state_dir=tmp_path / "state", webhook_url=receiver.url
        )
        good = config.read_text()
        with running(config, tmp_path / "daemon.log", notify) as daemon:
            assert wait_until(lambda: notify.seen("READY=1"), 15), daemon.log_path.read_text()
            bad = good.replace(
                'symbol = "1810.HK"\n', 'symbol = "1810.HK"\ntimezone = "Mars/Olympus"\n', 1
            )
            assert bad != good
            config.write_text(bad)
            daemon.signal(signal.SIGHUP)
            assert wait_until(lambda: daemon.logged("config_reload_rejected"), 15)
            assert "unknown timezone" in daemon.log_path.read_text()
            assert daemon.proc.poll() is None
            health = requests.get(daemon.health_url() + "/healthz", timeout=5)
            assert health.status_code == 200
            code, _ = daemon.stop()
        assert code == 0
    finally:
        receiver.close()
        notify.close()


def test_the_daemon_tape_source_holds_back_a_spike_too(tmp_path: Path) -> None:
    from decimal import Decimal

    from monitor.sources.tape_source import TapeSource

    source = TapeSource(spike_tape(tmp_path), 0.0, {}, {"1810.HK": Decimal("0.25")})
    prices = []
    for _ in range(4):
        prices += [str(o.price) for o in source.poll(["1810.HK"], T0).observations]
    assert prices == ["35", "35.1", "35.2"] and source.held["1810.HK"] == 1


@pytest.mark.parametrize("since", ["9999999999d", "99999999999w"])
def test_an_absurd_since_is_an_input_error_not_a_crash(
    tmp_path: Path, config: Path, since: str
) -> None:
    tape = tmp_path / "t.csv"
    tape.write_text(HEADER + row(0, 35))
    db = tmp_path / "state.db"
    assert (
        run_cli("replay", str(tape), "--config", str(config), "--state-db", str(db)).returncode == 0
    )
    out = run_cli("report", "--since", since, "--config", str(config), "--state-db", str(db))
    assert out.returncode == 2, out
    assert "unexpected" not in out.stderr and "out of range" in out.stderr, out.stderr


def test_the_tape_spike_filter_decides_exactly_as_the_live_check() -> None:
    import random
    from collections import Counter
    from decimal import Decimal

    from monitor.core.quality import is_spike
    from monitor.core.valuation import Observation
    from monitor.sources.tape import quality_filtered

    rng = random.Random(11)
    prices, price = [], Decimal(40)
    for _ in range(3000):
        step = rng.choice([0, 0, 1, -1, 2, -2, 12, -12, 11])  # tenths; +-30 % now and then
        price = max(Decimal(1), price + Decimal(step) / 10 * (price / 4))
        prices.append(price.quantize(Decimal("0.01")))
    limit = Decimal("0.25")
    rows = [
        Observation(T0 + timedelta(minutes=n), "1810.HK", p, "HKD", None, None, (), None, "tape")
        for n, p in enumerate(prices)
    ]
    expected, last, pending = [], None, None
    for p in prices:  # the live source's rule, written out
        if last is not None and is_spike(p, last, pending, limit):
            pending = p
            continue
        pending, last = None, p
        expected.append(p)
    got = [o.price for o in quality_filtered(rows, {"1810.HK": limit}, Counter())]
    assert got == expected and len(got) < len(prices)
