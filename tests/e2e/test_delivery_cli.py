"""The CLI delivering through the outbox: `replay --notify`, `outbox`, `test-alert`, as a user
runs them, against real receivers on 127.0.0.1."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli
from delivery_setup import (
    CROSSING_PRICES,
    CROSSINGS,
    sink_toml,
    verify_signatures,
    whsec,
    write_config,
    write_tape,
)
from fakes import Received, Receiver, Reply, free_port

BUNDLED = Path(__file__).resolve().parents[2] / "monitor" / "data"


def cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=env, cwd=cwd, timeout=timeout)


def replay_notify(
    cwd: Path, tape: Path, db: Path, config: Path
) -> subprocess.CompletedProcess[str]:
    """``mcap-monitor replay TAPE --notify --state-db DB --config CONFIG``."""
    return cli(cwd, "replay", str(tape), "--notify", "--state-db", str(db), "--config", str(config))


def pending(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE status='pending'").fetchone()[0])


def test_replay_notify_delivers_every_event_signed_despite_500s(tmp_path: Path) -> None:
    secret = whsec("replay")
    script = [Reply(500, "boom"), Reply(500, "boom"), Reply(503, "busy"), Reply(200, "")]
    with Receiver(script) as receiver:
        tape = write_tape(tmp_path / "tape.csv", CROSSING_PRICES)
        config = write_config(
            tmp_path / "c.toml", sink_toml("hook", "webhook", url=receiver.url, secret=secret)
        )
        db = tmp_path / "state.db"
        done = replay_notify(tmp_path, tape, db, config)
        assert done.returncode == 0, done.stderr
        assert "6 delivered, 0 pending, 0 dead" in done.stderr
        verify_signatures(secret, receiver.requests)
        ids = {r.header("webhook-id") for r in receiver.requests}
        ok_ids = [r.header("webhook-id") for r in receiver.answered(200)]
        assert len(ids) == CROSSINGS == len(ok_ids) == len(set(ok_ids))
        events = cli(tmp_path, "events", "--json", "--state-db", str(db), "--config", str(config))
        event_ids = {json.loads(line)["id"] for line in events.stdout.splitlines()}
        assert ids <= event_ids
        bodies = [r.json() for r in receiver.answered(200)]
        assert [b["type"] for b in bodies] == ["crossed_above", "crossed_below"] * 3
        data = bodies[0]["data"]
        assert data["threshold"] == "1000000000000" and data["shares_source"]
        assert data["message"].startswith("[REPLAY] Xiaomi (1810.HK) crossed above HK$1 trillion")
        assert pending(db) == 0


def test_each_first_attempt_failing_is_retried_with_the_same_webhook_id(tmp_path: Path) -> None:
    secret = whsec("each")
    seen: set[str] = set()

    def fail_first(got: Received, index: int) -> Reply:
        key = got.header("webhook-id") or ""
        if key in seen:
            return Reply(200)
        seen.add(key)
        return Reply(500, "try again")

    with Receiver(fail_first) as receiver:
        tape = write_tape(tmp_path / "tape.csv", CROSSING_PRICES)
        config = write_config(
            tmp_path / "c.toml", sink_toml("hook", "webhook", url=receiver.url, secret=secret)
        )
        db = tmp_path / "state.db"
        done = replay_notify(tmp_path, tape, db, config)
        assert done.returncode == 0, done.stderr
        assert len(receiver.requests) == 2 * CROSSINGS
        verify_signatures(secret, receiver.requests)
        order = [r.header("webhook-id") for r in receiver.requests]
        assert order[0::2] == order[1::2]  # in order: each retried before the next is sent
        assert len(set(order)) == CROSSINGS


def test_bundled_tape_with_a_webhook_sink(tmp_path: Path) -> None:
    secret = whsec("bundled")
    with Receiver([Reply(500), Reply(200)]) as receiver:
        base = (BUNDLED / "mcap-monitor.toml").read_text(encoding="utf-8")
        base = base.split("[[sinks]]")[0]
        config = tmp_path / "c.toml"
        config.write_text(base + sink_toml("hook", "webhook", url=receiver.url, secret=secret))
        db = tmp_path / "state.db"
        done = cli(tmp_path, "replay", "--notify", "--state-db", str(db), "--config", str(config))
        assert done.returncode == 0, done.stderr
        verify_signatures(secret, receiver.requests)
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT message_id, status FROM outbox").fetchall()
            events = conn.execute("SELECT kind FROM events").fetchall()
        delivered_ids = {r.header("webhook-id") for r in receiver.answered(200)}
        assert {m for m, _ in rows} == delivered_ids
        assert all(status == "delivered" for _, status in rows)
        # a replay sends every event it prints as its own message, baselines included
        printed = [json.loads(line)["id"] for line in cli(
            tmp_path, "replay", "--json", "--config", str(config)
        ).stdout.splitlines()]  # fmt: skip
        assert len(delivered_ids) == len(events) == len(printed) == 9
        assert delivered_ids == set(printed)
        types = [r.json()["type"] for r in receiver.answered(200)]
        assert types[:2] == ["baseline", "baseline"]
        again = cli(tmp_path, "replay", "--notify", "--state-db", str(db), "--config", str(config))
        assert again.returncode == 0
        assert {r.header("webhook-id") for r in receiver.answered(200)} == delivered_ids


def test_test_alert_reports_each_sink_truthfully(tmp_path: Path) -> None:
    ding = Receiver([Reply(200, json.dumps({"errcode": 310000, "errmsg": "sign not match"}))])
    slack = Receiver([Reply(404, "no_service")], path="/services/T01/B02/SLACKTOKEN123")
    hook = Receiver([Reply(204)])
    wecom = Receiver([Reply(200, json.dumps({"errcode": 0, "errmsg": "ok"}))])
    try:
        sinks = (
            sink_toml("console", "console")
            + sink_toml(
                "ding", "dingtalk", url=ding.url + "?access_token=DINGTOKEN42", secret="SECding"
            )
            + sink_toml("slack", "slack", url=slack.url)
            + sink_toml("hook", "webhook", url=hook.url, secret=whsec("t"))
            + sink_toml("wecom", "wecom", url=wecom.url + "?key=WECOMKEY77")
            + sink_toml("down", "webhook", url=f"http://127.0.0.1:{free_port()}/x", timeout=2)
        )
        config = write_config(tmp_path / "c.toml", sinks)
        done = cli(tmp_path, "test-alert", "--config", str(config))
        lines = dict(
            line.split(None, 1)
            for line in done.stdout.splitlines()
            if not line.startswith("ALERT")
            and line.split(None, 1)[0] in {"console", "ding", "slack", "hook", "wecom", "down"}
        )
        assert done.returncode == 1
        assert lines["console"].startswith("delivered")
        assert lines["hook"] == "delivered (HTTP 204)"
        assert lines["wecom"] == "delivered (HTTP 200)"
        assert lines["ding"].startswith("FAILED (permanent): DingTalk error 310000: sign not match")
        assert lines["slack"].startswith("FAILED (permanent): HTTP 404: no_service")
        assert lines["down"].startswith("FAILED (transient): connection failed: connection refused")
        assert "[TEST]" in hook.requests[0].json()["data"]["message"]
        assert "DINGTOKEN42" not in done.stdout + done.stderr
        assert "SLACKTOKEN123" not in done.stdout + done.stderr
        only = cli(tmp_path, "test-alert", "--config", str(config), "--sink", "hook")
        assert only.returncode == 0 and "hook" in only.stdout and "ding" not in only.stdout
        unknown = cli(tmp_path, "test-alert", "--config", str(config), "--sink", "nope")
        assert unknown.returncode == 2 and "configured sinks: console, ding" in unknown.stderr
    finally:
        for receiver in (ding, slack, hook, wecom):
            receiver.close()


def test_no_secret_reaches_logs_errors_listings_or_config_show(tmp_path: Path) -> None:
    secrets = {
        "slack": "SLACKPATHTOKEN0123",
        "ding": "DINGACCESSTOKEN4567",
        "dingsec": "SECdingsigning89",
        "wecom": "WECOMKEYabcdef",
        "feishu": "feishuHookId0f1e",
        "header": "Bearer HEADERTOKEN55",
        "env": "https://hooks.example.com/ENVTOKEN9999",
        "cred": "CREDSECRETxyz123",
    }
    slack = Receiver([Reply(500, "rollup_error")], path=f"/services/T1/B2/{secrets['slack']}")
    feishu = Receiver(
        [
            Reply(
                200,
                json.dumps(
                    {
                        "code": 19021,
                        "msg": "sign match fail or timestamp is not within one hour",
                    }
                ),
            )
        ],
        path=f"/open-apis/bot/v2/hook/{secrets['feishu']}",
    )
    try:
        creds = tmp_path / "creds"
        creds.mkdir()
        (creds / "feishu-secret").write_text(secrets["cred"])
        refused = free_port()
        sinks = (
            sink_toml("slack", "slack", url=slack.url)
            + sink_toml(
                "ding",
                "dingtalk",
                url=f"http://127.0.0.1:{refused}/robot/send?access_token={secrets['ding']}",
                secret=secrets["dingsec"],
            )
            + sink_toml(
                "wecom",
                "wecom",
                url=f"http://127.0.0.1:{refused}/cgi-bin/webhook/send?key={secrets['wecom']}",
            )
            + sink_toml("feishu", "feishu", url=feishu.url, secret_credential="feishu-secret")
            + sink_toml(
                "env", "webhook", url_env="HOOK_URL", headers={"Authorization": secrets["header"]}
            )
        )
        config = write_config(tmp_path / "c.toml", sinks)
        tape = write_tape(tmp_path / "tape.csv", CROSSING_PRICES[:3])
        db = tmp_path / "state.db"
        env = {
            "CREDENTIALS_DIRECTORY": str(creds),
            "HOOK_URL": f"http://127.0.0.1:{refused}/{secrets['env'].rsplit('/', 1)[1]}",
            "MCAP_NOTIFY_WAIT": "1",
        }
        outputs = []
        for args in (
            ("replay", str(tape), "--notify", "--state-db", str(db)),
            ("outbox", "--state-db", str(db), "--status", "all"),
            ("outbox", "--state-db", str(db), "--json", "--status", "all"),
            ("outbox", "flush", "--state-db", str(db), "--wait", "0.5", "--log-level", "debug"),
            ("config", "show"),
            ("test-alert",),
        ):
            done = cli(tmp_path, *args, "--config", str(config), env=env)
            outputs.append(done.stdout + done.stderr)
        text = "\n".join(outputs)
        assert "delivery_failed" in text and "delivery_dead" in text  # the logs did run
        assert "Feishu error 19021" in text
        for name, value in secrets.items():
            token = value.rsplit("/", 1)[-1].split()[-1]
            assert token not in text, f"{name} secret leaked"
        with sqlite3.connect(db) as conn:
            errors = " ".join(str(r[0]) for r in conn.execute("SELECT last_error FROM outbox"))
        for value in secrets.values():
            assert value.rsplit("/", 1)[-1].split()[-1] not in errors
        assert re.search(r"robot/send\?access_token=\*\*\*", text)
    finally:
        slack.close()
        feishu.close()


def test_outbox_lists_dead_rows_and_retry_requeues_them(tmp_path: Path) -> None:
    state = {"healthy": False}

    def gone_then_back(got: Received, index: int) -> Reply:
        return Reply(200) if state["healthy"] else Reply(410, "gone")

    with Receiver(gone_then_back) as receiver:
        tape = write_tape(tmp_path / "tape.csv", CROSSING_PRICES[:3])
        config = write_config(tmp_path / "c.toml", sink_toml("hook", "webhook", url=receiver.url))
        db = tmp_path / "state.db"
        first = replay_notify(tmp_path, tape, db, config)
        assert first.returncode == 1  # nothing pending, but both deliveries are dead
        assert "0 delivered, 0 pending, 2 dead" in first.stderr
        listing = cli(tmp_path, "outbox", "--state-db", str(db), "--config", str(config))
        assert listing.stdout.count(" dead ") == 2 and "HTTP 410: gone" in listing.stdout
        assert len(receiver.requests) == 2  # permanent failures are not retried
        state["healthy"] = True
        retry = cli(
            tmp_path, "outbox", "retry", "--all", "--state-db", str(db), "--config", str(config)
        )
        assert retry.returncode == 0 and "re-queued 2 deliveries" in retry.stdout
        flush = cli(tmp_path, "outbox", "flush", "--state-db", str(db), "--config", str(config))
        assert flush.returncode == 0, flush.stderr
        assert len(receiver.answered(200)) == 2
        nothing = cli(
            tmp_path, "outbox", "retry", "1", "--state-db", str(db), "--config", str(config)
        )
        assert nothing.returncode == 1  # delivered rows are never sent twice
        assert len(receiver.requests) == 4


@pytest.mark.parametrize("wait", ["0.5"])
def test_flush_exits_1_while_a_sink_is_down(tmp_path: Path, wait: str) -> None:
    tape = write_tape(tmp_path / "tape.csv", CROSSING_PRICES[:2])
    url = f"http://127.0.0.1:{free_port()}/hook"
    config = write_config(tmp_path / "c.toml", sink_toml("hook", "webhook", url=url, timeout=2))
    db = tmp_path / "state.db"
    env = {"MCAP_NOTIFY_WAIT": wait}
    first = cli(
        tmp_path,
        "replay",
        str(tape),
        "--notify",
        "--state-db",
        str(db),
        "--config",
        str(config),
        env=env,
    )
    assert first.returncode == 1
    assert "0 delivered, 1 pending" in first.stderr
    flush = cli(
        tmp_path, "outbox", "flush", "--wait", wait, "--state-db", str(db), "--config", str(config)
    )
    assert flush.returncode == 1
    listing = cli(tmp_path, "outbox", "--state-db", str(db), "--config", str(config))
    assert " failed " in listing.stdout and "connection refused" in listing.stdout
    with Receiver([Reply(200)], path="/hook") as receiver:
        moved = config.read_text().replace(url, receiver.url)
        config.write_text(moved)
        flush = cli(tmp_path, "outbox", "flush", "--state-db", str(db), "--config", str(config))
        assert flush.returncode == 0
        assert len(receiver.answered(200)) == 1
