"""What a new user trips over (issue 12), run as a user runs it: the CLI as a subprocess, the
health server over real HTTP, a real receiver on 127.0.0.1 for replayed alerts.

Data: ``tests/fixtures/data`` (verbatim copies, provenance in its README.md)."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURE_DATA, REPO, run_cli
from delivery_setup import CROSSING_PRICES, sink_toml, whsec, write_config, write_tape
from fakes import Receiver, Reply

from monitor.cli import build_parser
from monitor.daemon.health import HealthServer, HealthState
from monitor.daemon.metrics import Metrics
from monitor.notify.message import Message
from monitor.notify.sinks.feishu import feishu_card
from monitor.store import Store

CONFIG = REPO / "config" / "mcap-monitor.toml"
PRICES = FIXTURE_DATA / "1810.HK_daily_2020-2025_yahoo.csv"
ECB = FIXTURE_DATA / "ecb_eurofxref-hist_to_2025-05-09.csv"


def cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {"XDG_STATE_HOME": str(cwd / "xdg-state"), "XDG_CACHE_HOME": str(cwd / "xdg-cache")}
    return run_cli(*args, env=base | (env or {}), cwd=cwd, timeout=120)


def replayed_db(tmp_path: Path) -> Path:
    db = tmp_path / "state.db"
    done = cli(tmp_path, "replay", "--state-db", str(db), "--config", str(CONFIG))
    assert done.returncode == 0, done.stderr
    assert f"state db: {db}" in done.stderr.splitlines()
    return db


# -- tests on a fresh clone -------------------------------------------------------------------
SIBLING = "sha" + "red"  # spelt apart so this file does not match its own check


def test_no_test_reads_data_from_beside_the_repository() -> None:
    offenders = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8")
        # a path built to the sibling data folder (its name as a path part, or "../" + it in
        # a path string); comments citing SOURCES.md are not reads
        if re.search(rf"""["']{SIBLING}["']|["'][^"'\n]*\.\./{SIBLING}""", text):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_fixture_data_is_the_verbatim_copy_its_readme_names() -> None:
    readme = (FIXTURE_DATA / "README.md").read_text(encoding="utf-8")
    listed = dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)
    )
    files = {p.name for p in FIXTURE_DATA.iterdir() if p.name != "README.md"}
    assert set(listed) == files
    for name, digest in listed.items():
        assert hashlib.sha256((FIXTURE_DATA / name).read_bytes()).hexdigest() == digest, name
        assert f"`{name}`" in readme.split("```")[0], f"{name}: no provenance row"


# -- read-only commands -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [("status",), ("status", "--json"), ("events",), ("outbox",), ("report",)],
)
def test_a_typod_state_db_is_an_error_and_creates_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing = tmp_path / "nonexistent-dir" / "x.db"
    done = cli(tmp_path, *command, "--state-db", str(missing), "--config", str(CONFIG))
    assert done.returncode == 2, done.stderr
    daemon_db = tmp_path / "xdg-state" / "mcap-monitor" / "mcap-monitor.db"
    assert done.stderr.strip() == (
        f"Error: no state database at {missing}; the daemon's is at {daemon_db}: check --state-db"
    )
    assert not missing.parent.exists()
    assert not (tmp_path / "xdg-state").exists()


def test_an_empty_file_is_not_taken_for_a_state_db(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    done = cli(tmp_path, "status", "--state-db", str(empty), "--config", str(CONFIG))
    assert done.returncode == 2
    assert "not an mcap-monitor state database" in done.stderr
    assert empty.read_bytes() == b""


def test_status_names_its_db_dates_its_values_and_writes_nothing(tmp_path: Path) -> None:
    db = replayed_db(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("state.db*")}
    done = cli(tmp_path, "status", "--state-db", str(db), "--config", str(CONFIG))
    assert done.returncode == 0, done.stderr
    assert f"state db: {db}" in done.stderr.splitlines()
    hkd = next(line for line in done.stdout.splitlines() if line.startswith("hkd-1t"))
    assert "HK$1.327 trillion as of 2025-03-10 16:00 HKT" in hkd
    assert before["state.db"] == db.read_bytes()
    data = json.loads(
        cli(tmp_path, "status", "--state-db", str(db), "--json", "--config", str(CONFIG)).stdout
    )
    assert data["state_db"] == str(db)
    assert data["rules"][0]["as_of"] == "2025-03-10 16:00 HKT"


def test_the_share_count_warning_shows_once_a_day(tmp_path: Path) -> None:
    db = replayed_db(tmp_path)
    old = tmp_path / "old-shares.toml"
    text = re.sub(r"(?m)^shares_as_of = .*$", "shares_as_of = 2020-01-31", CONFIG.read_text())
    old.write_text(text, encoding="utf-8")
    first = cli(tmp_path, "status", "--state-db", str(db), "--config", str(old))
    second = cli(tmp_path, "status", "--state-db", str(db), "--config", str(old))
    assert "warning: 1810.HK: share count" in first.stdout
    assert "(as of 2020-01-31" in first.stdout
    assert "share count" not in second.stdout
    again = cli(tmp_path, "status", "--state-db", str(db), "--json", "--config", str(old))
    assert json.loads(again.stdout)["warnings"]  # --json always carries it


def test_events_on_an_empty_db_says_so(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    Store.open(db).close()
    done = cli(tmp_path, "events", "--state-db", str(db), "--config", str(CONFIG))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "no events yet\n"
    assert f"state db: {db}" in done.stderr


def test_report_has_a_title_and_hints_at_since(tmp_path: Path) -> None:
    db = replayed_db(tmp_path)
    done = cli(tmp_path, "report", "--state-db", str(db), "--config", str(CONFIG))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Report: events recorded since ") and lines[0].endswith("(30d)")
    assert "(no events)" in lines
    assert lines[-1].startswith("hint: --since 90d")
    full = cli(
        tmp_path, "report", "--since", "2025-01-01", "--state-db", str(db), "--config", str(CONFIG)
    )
    assert "crossed_above" in full.stdout and "hint:" not in full.stdout


# -- README and CLI accuracy ----------------------------------------------------------------------
def _subparsers(parser: object) -> dict[str, object]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: object) -> set[str]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    return {o for a in parser._actions for o in a.option_strings}


def _choices(parser: object) -> set[str]:
    """Choices of positional arguments (``completion bash``)."""
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    return {
        str(c)
        for a in parser._actions
        if not a.option_strings and a.choices and not isinstance(a, argparse._SubParsersAction)
        for c in a.choices
    }


def test_the_readme_command_table_matches_the_parser() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("\n\n", 2)[1]
    commands = _subparsers(build_parser())
    named: set[str] = set()
    for row in table.splitlines()[2:]:
        first = row.split(" | ")[0]
        for code in re.findall(r"`([^`]+)`", first):
            words = code.replace("\\|", " ").replace("[", " ").replace("]", " ").split()
            if words[0] == "mcap-monitor":
                words = words[1:]
            command = words[0]
            assert command in commands, f"README names `{command}`, the CLI has no such command"
            named.add(command)
            parser = commands[command]
            for word in words[1:]:
                if word.startswith("-"):
                    assert word in _options(parser), f"`{code}`: {command} has no {word}"
                elif word in _choices(parser):
                    continue
                elif word.islower() and word.isalpha():
                    subs = _subparsers(parser)
                    assert word in subs, f"`{code}`: {command} has no sub-command {word}"
                    parser = subs[word]
    assert named == set(commands), f"commands missing from the table: {set(commands) - named}"


def test_every_option_has_help_and_every_command_a_description() -> None:
    import argparse

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif action.help is None:
                raise AssertionError(f"{path}: {action.option_strings or action.dest} has no help")

    walk(build_parser(), "mcap-monitor")
    for command in ("status", "events", "config", "report"):
        assert _subparsers(build_parser())[command].description, command  # type: ignore[attr-defined]


def test_version_and_completion(tmp_path: Path) -> None:
    version = cli(tmp_path, "-V")
    assert version.returncode == 0 and re.fullmatch(r"mcap-monitor \d+\.\d+\.\d+\n", version.stdout)
    script = cli(tmp_path, "completion", "bash")
    assert script.returncode == 0
    path = tmp_path / "c.bash"
    path.write_text(script.stdout, encoding="utf-8")
    probe = (
        f"source {path}; COMP_WORDS=(mcap-monitor outbox ''); COMP_CWORD=2; _mcap_monitor; "
        'echo "${COMPREPLY[@]}"'
    )
    offered = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()
    assert {"retry", "flush", "--status", "--state-db"} <= set(offered)


def test_license_is_mit() -> None:
    assert (REPO / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_config_show_prints_the_db_path_and_validate_lists_every_error(tmp_path: Path) -> None:
    shown = cli(tmp_path, "config", "show", "--config", str(CONFIG))
    data = json.loads(shown.stdout.split("\n", 1)[1])
    assert data["state_db"] == str(tmp_path / "xdg-state" / "mcap-monitor" / "mcap-monitor.db")
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[symbols]]\nsymbol = "1810.HK"\nshares = -3\ncurrency = "RMB"\n', encoding="utf-8"
    )
    done = cli(tmp_path, "config", "validate", "--config", str(bad))
    assert done.returncode == 2
    assert "more error" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(
        "Error: invalid config: 2 errors: "
    )
    assert "symbols[0].currency: unknown currency code 'RMB'" in done.stderr
    assert "symbols[0].shares:" in done.stderr and "bad.toml:3:1" in done.stderr
    norules = tmp_path / "norules.toml"
    norules.write_text('[[symbols]]\nsymbol = "1810.HK"\nshares = 100\n', encoding="utf-8")
    ok = cli(tmp_path, "config", "validate", "--config", str(norules))
    assert ok.returncode == 0, ok.stderr
    assert "no [[rules]]: nothing will ever alert" in ok.stderr


def test_health_answers_head_and_refuses_other_methods() -> None:
    server = HealthServer(("127.0.0.1", 0), HealthState(["1810.HK"], 60), Metrics(), lambda: 0.0)
    server.start()
    try:
        host, port = server.address
        answers = {}
        for method in ("GET", "HEAD", "POST", "OPTIONS", "PUT"):
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request(method, "/metrics")
            reply = conn.getresponse()
            answers[method] = (reply.status, reply.getheader("Allow"), reply.read())
            assert reply.getheader("Server") == "mcap-monitor"
            conn.close()
    finally:
        server.close()
    assert answers["GET"][0] == 200 and answers["GET"][2]
    assert answers["HEAD"][:1] == (200,) and answers["HEAD"][2] == b""
    for method in ("POST", "OPTIONS", "PUT"):
        status, allow, body = answers[method]
        assert (status, allow) == (405, "GET, HEAD"), method
        assert b"<html" not in body.lower()


# -- honesty ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("language", "prefix", "fact"), [("en", "[REPLAY] ", "Mode"), ("zh", "【回放】", "模式")]
)
def test_replayed_alerts_are_marked(tmp_path: Path, language: str, prefix: str, fact: str) -> None:
    secret = whsec("replay-mark")
    with Receiver([Reply(200, "")]) as receiver:
        tape = write_tape(tmp_path / "tape.csv", CROSSING_PRICES)
        sinks = sink_toml("hook", "webhook", url=receiver.url, secret=secret, language=language)
        sinks += sink_toml("console", "console", language=language)
        config = write_config(tmp_path / "c.toml", sinks)
        db = tmp_path / "state.db"
        done = cli(
            tmp_path,
            "replay",
            str(tape),
            "--notify",
            "--state-db",
            str(db),
            "--config",
            str(config),
        )
        assert done.returncode == 0, done.stderr
        bodies = [r.json() for r in receiver.answered(200)]
    assert len(bodies) == 6
    for body in bodies:
        assert body["data"]["mode"] == "replay"
        assert body["data"]["message"].startswith(prefix)
    alerts = [line for line in done.stdout.splitlines() if line.startswith("ALERT")]
    assert len(alerts) == 6 and all(line.startswith(f"ALERT {prefix}") for line in alerts)
    # on a pipe, log lines are JSON (the README's promise), not key=value
    logs = [line for line in done.stderr.splitlines() if line.startswith("{")]
    assert logs and all(json.loads(line)["event"] for line in logs)
    assert not any(re.match(r"\w+=", line) for line in done.stderr.splitlines())
    assert fact  # the fact is checked on the rendered message below


def test_the_replay_fact_is_first_and_feishu_colours_follow_the_language() -> None:
    from monitor.notify.templates import mark_replay

    base = Message(id="m", kind="crossed_above", title="t", text="x", footer="f", language="zh")
    assert mark_replay(base, "zh").facts[0] == ("模式", "历史数据回放，非实时行情")
    assert mark_replay(base, "en").facts[0][0] == "Mode"
    colours = {}
    for language in ("zh", "en"):
        for kind in ("crossed_above", "crossed_below"):
            message = Message(id="m", kind=kind, title="t", text="x", footer="f", language=language)  # type: ignore[arg-type]
            colours[language, kind] = feishu_card(message)["header"]["template"]
    assert colours["zh", "crossed_above"] == "red" and colours["zh", "crossed_below"] == "green"
    assert colours["en", "crossed_above"] == "green" and colours["en", "crossed_below"] == "red"


def _backtest(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli(
        tmp_path, "backtest", "1810.HK", "--prices", str(PRICES), "--fx-history", str(ECB),
        "--config", str(CONFIG), *extra,
    )  # fmt: skip


def test_backtest_skips_and_counts_days_with_stale_fx(tmp_path: Path) -> None:
    done = _backtest(tmp_path, "--from", "2025-05-01", "--to", "2025-05-22")
    assert done.returncode == 0, done.stderr
    # the ECB file ends 2025-05-09 (a Friday); fx.max_age_days = 4: 05-14 onwards is stale
    assert (
        "fx: on 7 day(s) (2025-05-14 to 2025-05-22) the newest ECB rate was older than "
        "fx.max_age_days (4 days): rules needing it were not evaluated on them"
    ) in done.stdout.splitlines()
    cny = next(line for line in done.stdout.splitlines() if line.startswith("cny-1t"))
    assert "above on 7/7 days" in cny and "7 bar(s) not evaluated" in cny
    doc = json.loads(
        _backtest(tmp_path, "--from", "2025-05-01", "--to", "2025-05-22", "--json").stdout
    )
    assert doc["warnings"]["stale_fx_days"][0] == "2025-05-14"


def test_tape_build_leaves_stale_fx_empty_and_replay_agrees(tmp_path: Path) -> None:
    tape = tmp_path / "t.csv"
    done = cli(
        tmp_path, "tape", "build", "--prices", str(PRICES), "--fx-history", str(ECB),
        "--from", "2025-05-01", "--to", "2025-05-22", "-o", str(tape), "--config", str(CONFIG),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "FX left empty on 7 row(s) (2025-05-14 to 2025-05-22)" in done.stderr
    last = tape.read_text(encoding="utf-8").splitlines()[-1]
    assert last == "2025-05-22T16:00:00+08:00,1810.HK,53.2,HKD,55,,,,"
    replayed = cli(tmp_path, "replay", str(tape), "--config", str(CONFIG))
    assert "rule cny-1t skipped on 7 rows: no FX rate HKD->CNY" in replayed.stderr


@pytest.mark.parametrize("shares", ["-5", "0", "lots"])
def test_share_counts_must_be_positive(tmp_path: Path, shares: str) -> None:
    bt = _backtest(tmp_path, "--from", "2025-02-01", "--to", "2025-02-10", "--shares", shares)
    tape = cli(
        tmp_path, "tape", "build", "--prices", str(PRICES), "--shares", shares, "-o",
        str(tmp_path / "t.csv"),
    )  # fmt: skip
    for done in (bt, tape):
        assert done.returncode == 2
        assert "argument --shares:" in done.stderr and "unexpected" not in done.stderr
    assert not (tmp_path / "t.csv").exists()


def test_interval_must_match_the_prices_file(tmp_path: Path) -> None:
    done = _backtest(tmp_path, "--from", "2025-02-01", "--to", "2025-02-10", "--interval", "1h")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("Error: --interval 1h but the prices file holds 1d bars")
    implied = _backtest(tmp_path, "--from", "2025-02-01", "--to", "2025-02-10")
    assert "(1d bars)" in implied.stdout.splitlines()[0]


def test_test_alert_does_not_promise_a_retry(tmp_path: Path) -> None:
    with Receiver([Reply(503, "busy")]) as receiver:
        config = write_config(tmp_path / "c.toml", sink_toml("hook", "webhook", url=receiver.url))
        done = cli(tmp_path, "test-alert", "--config", str(config))
    assert done.returncode == 1
    assert "FAILED (transient)" in done.stdout
    assert "retrying later" not in done.stdout + done.stderr


def test_a_cny_alert_shows_the_hkd_figure_it_was_converted_from(tmp_path: Path) -> None:
    from monitor.core.events import event_from_dict
    from monitor.notify.templates import make_event_message

    lines = cli(tmp_path, "replay", "--json", "--config", str(CONFIG)).stdout.splitlines()
    crossed = next(
        json.loads(line)
        for line in lines
        if json.loads(line)["rule"] == "cny-1t" and json.loads(line)["kind"] == "crossed_above"
    )
    event = event_from_dict(crossed)
    en = dict(make_event_message(event, "en").facts)
    zh = dict(make_event_message(event, "zh").facts)
    assert (
        en["Market cap"] == "CN¥1.030 trillion" and en["Market cap in HKD"] == "HK$1.098 trillion"
    )
    assert zh["原币市值"] == "1.098 万亿港元"


def test_delivering_commands_are_quiet_on_a_terminal(tmp_path: Path) -> None:
    import os
    import pty
    import select
    import sys

    tape = write_tape(tmp_path / "tape.csv", CROSSING_PRICES)
    config = write_config(tmp_path / "c.toml", sink_toml("console", "console"))
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCAP_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "replay", str(tape), "--notify", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=tmp_path,
        env=env,
    )
    os.close(slave)
    stdout, _ = proc.communicate(timeout=120)
    chunks = []
    while select.select([master], [], [], 0.5)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stderr = b"".join(chunks).decode().replace("\r\n", "\n").splitlines()
    assert proc.returncode == 0, stderr
    assert stdout.decode().count("ALERT [REPLAY]") == 6
    assert not [line for line in stderr if "delivery_succeeded" in line]
    assert any("6 delivered, 0 pending, 0 dead" in line for line in stderr)
