"""Issue 12, the gaps a review found, run as a user runs them: the CLI as a subprocess, the
daemon as a subprocess, real receivers on 127.0.0.1.

Data: the bundled tape and ``tests/fixtures/data`` (provenance in its README.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, run_cli
from delivery_setup import CROSSING_PRICES, sink_toml, whsec, write_config, write_tape
from e2e.daemon_support import running, webhook_receiver
from e2e.daemon_support import write_config as write_daemon_config
from fakes import Receiver, Reply, free_port, wait_until

CONFIG = REPO / "config" / "mcap-monitor.toml"


def cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {"XDG_STATE_HOME": str(cwd / "xdg-state"), "XDG_CACHE_HOME": str(cwd / "xdg-cache")}
    return run_cli(*args, env=base | (env or {}), cwd=cwd, timeout=120)


def replay_into(tmp_path: Path, db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = cli(tmp_path, "replay", "--state-db", str(db), "--config", str(CONFIG), *extra)
    assert done.returncode == 0, done.stderr
    return done


# -- 1. config validate lists every problem ---------------------------------------------------
def test_config_validate_lists_every_cross_reference_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        """[[symbols]]
symbol = "1810.HK"
shares = 100

[[symbols]]
symbol = "1810.HK"
shares = 100

[[rules]]
id = "a"
symbol = "0700.HK"
threshold = 1
currency = "HKD"

[[rules]]
id = "b"
symbol = "9988.HK"
threshold = 1
currency = "HKD"

[[sinks]]
id = "s1"
type = "slack"
url_env = "NOPE_TEST_SLACK_URL"
rules = ["zz"]
""",
        encoding="utf-8",
    )
    done = cli(tmp_path, "config", "validate", "--config", str(bad))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("Error: invalid config: 5 errors: "), done.stderr
    for problem in (
        f"duplicate symbol '1810.HK': each must be unique ({bad}:6:10)",
        f"rule 'a' refers to unknown symbol '0700.HK'; known symbols: 1810.HK ({bad}:11:10)",
        f"rule 'b' refers to unknown symbol '9988.HK'; known symbols: 1810.HK ({bad}:17:10)",
        f"sink 's1' filters on unknown rule 'zz' ({bad}:25:10)",
        "environment variable NOPE_TEST_SLACK_URL for the sink's url is not set",
    ):
        assert problem in done.stderr, problem
    # `run` names the first problem and counts the others
    run = cli(tmp_path, "run", "--config", str(bad))
    assert run.returncode == 2
    assert "duplicate symbol '1810.HK'" in run.stderr and "(and 3 more errors)" in run.stderr


def test_config_validate_lists_every_sink_that_cannot_be_built(tmp_path: Path) -> None:
    sinks = sink_toml("one", "slack", url_env="NOPE_TEST_ONE")
    sinks += sink_toml("two", "webhook", url_env="NOPE_TEST_TWO")
    sinks += sink_toml("fine", "console")
    config = write_config(tmp_path / "c.toml", sinks)
    done = cli(tmp_path, "config", "validate", "--config", str(config))
    assert done.returncode == 2
    assert done.stderr.startswith("Error: invalid config: 2 errors: "), done.stderr
    assert "NOPE_TEST_ONE" in done.stderr and "(sink 'one')" in done.stderr
    assert "NOPE_TEST_TWO" in done.stderr and "(sink 'two')" in done.stderr
    one = cli(tmp_path, "config", "validate", "--config", str(config), env={"NOPE_TEST_ONE": "x"})
    assert one.returncode == 2
    assert "2 errors" in one.stderr  # the https check on one, the missing URL of two
    assert "slack sink URL must start with https://" in one.stderr


# -- 2. test-alert never promises a retry --------------------------------------------------------
def test_test_alert_on_a_refused_connection_does_not_promise_a_retry(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    config = write_config(tmp_path / "c.toml", sink_toml("hook", "webhook", url=url))
    done = cli(tmp_path, "test-alert", "--config", str(config))
    assert done.returncode == 1
    line = next(line for line in done.stdout.splitlines() if line.startswith("hook"))
    assert "FAILED (transient)" in line
    assert "retrying" not in done.stdout + done.stderr
    assert "not retried: run test-alert again (check the URL and the network)" in line


# -- 3. outbox flush/retry refuse a typo'd db; absolute "state db:" lines ------------------------
@pytest.mark.parametrize("command", [("outbox", "flush"), ("outbox", "retry", "--all")])
def test_outbox_writers_refuse_a_missing_db_and_create_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    typo = tmp_path / "nd" / "x.db"
    done = cli(tmp_path, *command, "--state-db", str(typo), "--config", str(CONFIG))
    assert done.returncode == 2
    daemon_db = tmp_path / "xdg-state" / "mcap-monitor" / "mcap-monitor.db"
    assert f"no state database at {typo}; the daemon's is at {daemon_db}" in done.stderr
    assert not (tmp_path / "nd").exists()
    assert not (tmp_path / "xdg-state").exists()


def test_state_db_lines_name_the_absolute_path(tmp_path: Path) -> None:
    replayed = replay_into(tmp_path, Path("rel.db"))
    absolute = tmp_path / "rel.db"
    assert f"state db: {absolute}" in replayed.stderr.splitlines()
    for command in (
        ("status",),
        ("events",),
        ("report",),
        ("outbox",),
        ("outbox", "flush"),
        ("outbox", "retry", "--all"),
    ):
        done = cli(tmp_path, *command, "--state-db", "rel.db", "--config", str(CONFIG))
        assert done.returncode == 0, (command, done.stderr)
        assert f"state db: {absolute}" in done.stderr.splitlines(), command
    status = cli(tmp_path, "status", "--json", "--state-db", "rel.db", "--config", str(CONFIG))
    assert json.loads(status.stdout)["state_db"] == str(absolute)


# -- 4. --log-level reaches the delivery of replay --notify and outbox flush ---------------------
def _log_lines(done: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]


def test_log_level_is_honoured_by_replay_notify_and_outbox_flush(tmp_path: Path) -> None:
    tape = write_tape(tmp_path / "tape.csv", CROSSING_PRICES)
    busy = {"MCAP_NOTIFY_WAIT": "0"}  # one attempt each, then left pending
    with Receiver([Reply(503, "busy")]) as receiver:
        sinks = sink_toml("hook", "webhook", url=receiver.url, secret=whsec("levels"))
        config = write_config(tmp_path / "c.toml", sinks)
        loud_db, quiet_db = tmp_path / "loud.db", tmp_path / "quiet.db"
        loud = cli(
            tmp_path, "replay", str(tape), "--notify", "--state-db", str(loud_db),
            "--config", str(config), env=busy,
        )  # fmt: skip
        quiet = cli(
            tmp_path, "replay", str(tape), "--notify", "--state-db", str(quiet_db),
            "--config", str(config), "--log-level", "error", env=busy,
        )  # fmt: skip
    assert loud.returncode == quiet.returncode == 1  # deliveries left pending
    assert _log_lines(loud), loud.stderr  # on a pipe at the default level: JSON log lines
    assert _log_lines(quiet) == [], quiet.stderr
    with Receiver([Reply(200, "")]) as receiver:
        sinks = sink_toml("hook", "webhook", url=receiver.url, secret=whsec("levels"))
        write_config(tmp_path / "c.toml", sinks)
        flush = ("outbox", "flush", "--config", str(tmp_path / "c.toml"))
        quiet_flush = cli(tmp_path, *flush, "--state-db", str(loud_db), "--log-level", "error")
        loud_flush = cli(tmp_path, *flush, "--state-db", str(quiet_db))
        assert len(receiver.answered(200)) == 12
    assert quiet_flush.returncode == loud_flush.returncode == 0
    assert _log_lines(quiet_flush) == [], quiet_flush.stderr
    assert _log_lines(loud_flush), loud_flush.stderr


# -- 5. a tape-mode daemon marks its alerts as a replay -----------------------------------------
def test_a_tape_mode_daemon_marks_what_it_sends_as_a_replay(tmp_path: Path) -> None:
    with webhook_receiver() as receiver:
        config = write_daemon_config(
            tmp_path / "cfg.toml", state_dir=tmp_path / "state", webhook_url=receiver.url
        )
        with running(config, tmp_path / "daemon.log", None) as daemon:
            assert wait_until(lambda: len(receiver.accepted()) >= 3, 60), (
                daemon.log_path.read_text()[-3000:]
            )
            code, _ = daemon.stop()
        assert code == 0
        bodies = [r.json() for r in receiver.accepted()]
    for body in bodies:
        assert body["data"]["mode"] == "replay", body
        assert body["data"]["message"].startswith("[REPLAY] "), body


# -- 6. tape build refuses intraday prices --------------------------------------------------------
def test_tape_build_refuses_an_intraday_prices_file(tmp_path: Path) -> None:
    rows = ["Date,Open,High,Low,Close,Volume,Dividends,Stock Splits"]
    for hour in range(9, 16):
        rows.append(f"2025-02-03 {hour:02d}:30:00+08:00,40.0,40.5,39.5,40.2,1000000,0.0,0.0")
    prices = tmp_path / "hourly.csv"
    prices.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "tape.csv"
    done = cli(
        tmp_path,
        "tape",
        "build",
        "--prices",
        str(prices),
        "--shares",
        "25105000000",
        "-o",
        str(out),
        "--config",
        str(CONFIG),
    )
    assert done.returncode == 2, done.stderr
    assert "the prices file holds 1h bars; tape build needs daily bars" in done.stderr
    assert done.stderr.count("\n") == 1
    assert not out.exists() and not (tmp_path / "tape.csv.tmp").exists()


# -- 7. DingTalk and WeCom carry the replay's Mode line ----------------------------------------
@pytest.mark.parametrize(("language", "fact"), [("en", "**Mode**: replay"), ("zh", "**模式**")])
@pytest.mark.parametrize("kind", ["dingtalk", "wecom"])
def test_dingtalk_and_wecom_replays_carry_the_mode_fact(
    tmp_path: Path, kind: str, language: str, fact: str
) -> None:
    with Receiver([Reply(200, '{"errcode": 0, "errmsg": "ok"}')]) as receiver:
        tape = write_tape(tmp_path / "tape.csv", CROSSING_PRICES)
        config = write_config(
            tmp_path / "c.toml", sink_toml("robot", kind, url=receiver.url, language=language)
        )
        done = cli(tmp_path, "replay", str(tape), "--notify", "--config", str(config))
        assert done.returncode == 0, done.stderr
        bodies = [r.json()["markdown"] for r in receiver.answered(200)]
    texts = [body.get("text") or body["content"] for body in bodies]
    assert len(texts) == 6
    for text in texts:
        assert fact in text, text


# -- 8. small ones --------------------------------------------------------------------------------
def test_test_alert_help_has_a_description(tmp_path: Path) -> None:
    done = cli(tmp_path, "test-alert", "--help")
    assert done.returncode == 0
    assert "Send one test message, marked as a test, to each configured sink" in " ".join(
        done.stdout.split()
    )


def test_replay_plot_into_a_missing_directory_fails_before_writing_the_db(tmp_path: Path) -> None:
    done = cli(
        tmp_path,
        "replay",
        "--plot",
        "nodir/x.svg",
        "--state-db",
        "pl.db",
        "--config",
        str(CONFIG),
    )
    assert done.returncode == 2, done.stderr
    assert f"no directory {tmp_path / 'nodir'} for the chart" in done.stderr
    assert not (tmp_path / "pl.db").exists() and not (tmp_path / "nodir").exists()


@pytest.mark.parametrize("since", ["30d", "90d", "365d"])
def test_report_hint_never_repeats_the_users_since(tmp_path: Path, since: str) -> None:
    db = tmp_path / "state.db"
    replay_into(tmp_path, db)
    # the bundled tape is 2025-01-20 to 2025-03-10: a window starting tomorrow holds nothing
    done = cli(tmp_path, "report", "--since", since, "--state-db", str(db), "--config", str(CONFIG))
    assert done.returncode == 0, done.stderr
    hints = [line for line in done.stdout.splitlines() if line.startswith("hint:")]
    if "(no events)" not in done.stdout:
        assert hints == []
        return
    assert len(hints) == 1
    assert f"--since {since} " not in hints[0] + " "
    assert "looks further back" in hints[0]
