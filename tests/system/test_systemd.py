"""The service under a real systemd (PID 1 of a systemd-nspawn container), installed with
systemd/install.sh, the README's install steps. One test per check, in order, sharing one
booted container (conftest.py): pytest's log names each check."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook
from system.container import CONF, REPO, UNIT, WATCHDOG_SEC, Container, wait_for

# boot + install take ~40 s of the first test; every check is bounded well inside this
pytestmark = pytest.mark.timeout(300)
RESTART_SEC = 10  # the unit's RestartSec=
INPUTS = "/var/tmp/mcap-inputs"


def _when(systemd_timestamp: str) -> datetime:
    """A `systemctl show --timestamp=us+utc` value, e.g. 'Wed 2026-12-02 13:54:42.248392 UTC'."""
    return datetime.strptime(systemd_timestamp, "%a %Y-%m-%d %H:%M:%S.%f %Z").replace(tzinfo=UTC)


def _events(box: Container, name: str) -> list[dict[str, object]]:
    found = []
    for line in box.unit_output():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("event") == name:
            found.append(doc)
    return found


def _running(box: Container) -> bool:
    return (box.prop("ActiveState"), box.prop("SubState")) == ("active", "running")


def test_install_script_installs_validates_enables_and_starts(container: Container) -> None:
    done = container.install
    assert done is not None and done.returncode == 0, done and done.stdout + done.stderr
    assert f"{CONF}: OK (1 symbol(s), 3 rule(s), 1 sink(s))" in done.stdout
    assert container.run("systemctl", "is-enabled", UNIT).stdout.strip() == "enabled"
    # Documentation= points at a file the install really put there
    (doc,) = container.prop("Documentation").split()
    copied = container.run("cat", doc.removeprefix("file://"))
    assert copied.stdout == (container.tmp / "src" / "README.md").read_text(encoding="utf-8")
    # the secret reaches the service as a credential; the unit and the config never hold it
    unit = container.run("systemctl", "cat", UNIT).stdout
    wanted = "LoadCredential=webhook-secret:/etc/mcap-monitor/credentials/webhook-secret"
    assert wanted in unit.splitlines() and container.secret not in unit
    assert container.secret not in container.run("cat", CONF).stdout
    mode = container.run("stat", "-c", "%a %U", "/etc/mcap-monitor/credentials/webhook-secret")
    assert mode.stdout.split() == ["600", "root"]


def test_start_returns_only_after_ready(container: Container) -> None:
    assert _running(container), container.run("systemctl", "status", UNIT).stdout
    (started,) = _events(container, "daemon_started")
    logged = datetime.fromisoformat(str(started["timestamp"]))
    exec_start = _when(container.prop("ExecMainStartTimestamp"))
    active = _when(container.prop("ActiveEnterTimestamp"))
    # Type=notify: active only once READY=1 came, which the daemon sends after this line
    assert exec_start < logged < active, (exec_start, logged, active)


def test_status_text_shows_the_market_cap_within_one_poll(container: Container) -> None:
    shows_cap = re.compile(r"^1810\.HK HK\$\d+(\.\d+)?[TB], 3 rules, \d+ pending$")
    assert wait_for(lambda: bool(shows_cap.match(container.prop("StatusText"))), 30), (
        container.prop("StatusText")
    )


def test_watchdog_timestamp_advances(container: Container) -> None:
    first = container.prop("WatchdogTimestampMonotonic")
    assert container.prop("WatchdogUSec") == f"{WATCHDOG_SEC}s"

    def advanced() -> bool:
        now = container.prop("WatchdogTimestampMonotonic")
        return now not in ("", "0", first)

    assert wait_for(advanced, WATCHDOG_SEC / 2 + 20), f"still {first}"


def _journal_json(box: Container, *match: str) -> list[dict[str, str]]:
    got = box.run("journalctl", *match, "-o", "json", "--no-pager")
    return [json.loads(line) for line in got.stdout.splitlines() if line.strip()]


def test_journal_lines_are_json_and_tagged_mcap_monitor(container: Container) -> None:
    tagged = _journal_json(container, "-t", "mcap-monitor")
    assert tagged, "journalctl -t mcap-monitor found nothing"
    assert {entry.get("_SYSTEMD_UNIT") for entry in tagged} == {UNIT}
    not_json = []
    for entry in tagged:
        try:
            if not isinstance(json.loads(entry["MESSAGE"]), dict):
                not_json.append(entry["MESSAGE"])
        except ValueError:
            not_json.append(entry["MESSAGE"])
    assert not not_json, not_json
    # and everything the unit's processes wrote carries the tag
    from_unit = _journal_json(container, f"_SYSTEMD_UNIT={UNIT}")
    assert {entry.get("SYSLOG_IDENTIFIER") for entry in from_unit} == {"mcap-monitor"}


def test_reload_logs_config_reloaded(container: Container) -> None:
    main, before = container.prop("MainPID"), len(_events(container, "config_reloaded"))
    done = container.run("systemctl", "reload", UNIT)
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: len(_events(container, "config_reloaded")) > before, 30)
    assert _running(container) and container.prop("MainPID") == main


def test_broken_config_on_reload_is_rejected_and_the_old_one_kept(container: Container) -> None:
    main = container.prop("MainPID")
    before = len(_events(container, "config_reload_rejected"))
    container.run("cp", f"{INPUTS}/broken.toml", CONF)
    assert container.run("systemctl", "reload", UNIT).returncode == 0
    assert wait_for(lambda: len(_events(container, "config_reload_rejected")) > before, 30)
    rejected = _events(container, "config_reload_rejected")[-1]
    assert "poll_interval" in str(rejected["error"]) and rejected["kept"] == "previous config"
    assert _running(container) and container.prop("MainPID") == main
    # still polling with the old config: the watchdog keeps being fed
    ping = container.prop("WatchdogTimestampMonotonic")
    assert wait_for(lambda: container.prop("WatchdogTimestampMonotonic") != ping, 30)
    container.run("cp", f"{INPUTS}/mcap-monitor.toml", CONF)


def test_frozen_daemon_is_killed_by_the_watchdog_and_restarted(container: Container) -> None:
    main = container.prop("MainPID")
    assert container.prop("NRestarts") == "0"
    assert container.run("kill", "-STOP", main).returncode == 0

    def restarted() -> bool:
        return container.prop("NRestarts") == "1" and _running(container)

    assert wait_for(restarted, WATCHDOG_SEC + RESTART_SEC + 60), container.prop("NRestarts")
    assert container.prop("MainPID") not in ("0", main)
    systemd_said = container.run("journalctl", "-u", UNIT, "-o", "cat", "--no-pager").stdout
    assert f"{UNIT}: Watchdog timeout (limit {WATCHDOG_SEC}s)!" in systemd_said


def test_broken_config_at_start_exits_2_and_is_not_restarted(container: Container) -> None:
    assert container.run("systemctl", "stop", UNIT, timeout=40).returncode == 0
    container.run("cp", f"{INPUTS}/broken.toml", CONF)
    assert container.run("systemctl", "start", UNIT, timeout=90).returncode != 0
    restarts = container.prop("NRestarts")  # a manual start counts from 0 again
    assert restarts == "0"
    assert container.prop("ExecMainStatus") == "2"
    assert container.prop("Result") == "exit-code"
    # RestartPreventExitStatus=2: still failed, no restart, after RestartSec has passed
    assert not wait_for(lambda: container.prop("ActiveState") != "failed", RESTART_SEC + 5)
    assert container.prop("NRestarts") == restarts
    said = container.run("journalctl", f"_SYSTEMD_UNIT={UNIT}", "-o", "cat", "-n", "5").stdout
    assert "poll_interval" in said
    container.run("cp", f"{INPUTS}/mcap-monitor.toml", CONF)
    assert container.run("systemctl", "start", UNIT, timeout=90).returncode == 0
    assert _running(container)


def test_stop_ends_with_result_success(container: Container) -> None:
    done = container.run("systemctl", "stop", UNIT, timeout=40)
    assert done.returncode == 0, done.stderr
    assert container.prop("Result") == "success"
    assert (container.prop("ExecMainCode"), container.prop("ExecMainStatus")) == ("1", "0")
    assert container.prop("ActiveState") == "inactive"


def test_receiver_got_every_event_once_with_a_valid_signature(container: Container) -> None:
    listed = container.run(
        "STATE_DIRECTORY=/var/lib/private/mcap-monitor",
        "CREDENTIALS_DIRECTORY=/etc/mcap-monitor/credentials",
        "/opt/mcap-monitor/venv/bin/mcap-monitor",
        *("--config", CONF, "outbox", "--status", "all", "--json"),
    )
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    delivered = sorted(str(row["message_id"]) for row in rows if row["status"] == "delivered")
    # in an HK session the tape moves every poll: an event enqueued just before the stop may
    # still wait in the outbox (kept for the next start), but nothing failed or died
    assert delivered and all(r["status"] in ("delivered", "pending") for r in rows), rows
    captured = (container.tmp / "capture" / "captured.jsonl").read_text().splitlines()
    hook = Webhook(container.secret)
    ids = []
    for line in captured:
        record = json.loads(line)
        body = base64.b64decode(record["body_b64"])
        headers = {k.lower(): v for k, v in record["headers"].items()}
        hook.verify(body, headers)  # raises WebhookVerificationError on a bad signature
        ids.append(headers["webhook-id"])
    assert len(ids) == len(set(ids)), f"delivered twice: {sorted(ids)}"
    assert sorted(ids) == delivered, rows


def _json_values(text: str) -> list[object]:
    """The JSON values jq printed, one after another (pretty-printed, so not one a line)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        at += len(text[at:]) - len(text[at:].lstrip())
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def test_readme_journal_recipes_work(container: Container) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running as a service", 1)[1].split("\n## ", 1)[0]
    recipes = [
        line.strip()
        for line in section.splitlines()
        if line.strip().startswith("journalctl ") and "| jq" in line
    ]
    assert len(recipes) >= 2, recipes
    for recipe in recipes:
        done = container.sh(recipe)
        assert done.returncode == 0, f"{recipe}: {done.stderr}"
        values = _json_values(done.stdout)
        assert values and all(isinstance(v, dict) and "event" in v for v in values), recipe
        assert "daemon_started" in {v["event"] for v in values if isinstance(v, dict)}, recipe


def test_teardown_leaves_nothing_behind(container: Container) -> None:
    container.teardown()
    assert container.left == {"processes": 0, "cgroups": 0, "mounts": 0}, container.torn
    assert container.torn.endswith("(nspawn exit 0)"), container.torn
    assert not any(Path(container.tmp / "root").iterdir())
