"""Crash safety: SIGKILL a delivering `replay --notify`, restart, and nothing is lost.

Kill points are made deterministic without hooks in the product: the receiver holds a request
open (killed between enqueue and delivery), or the test holds the SQLite write lock while the
receiver answers 2xx (killed between the 2xx and the db update).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from delivery_setup import (
    CROSSING_PRICES,
    CROSSINGS,
    sink_toml,
    verify_signatures,
    whsec,
    write_config,
    write_tape,
)
from fakes import DEADLINE, HANG, Received, Receiver, Reply


def start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCAP_")}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = start(cwd, *args)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=DEADLINE)
    assert proc.returncode == -signal.SIGKILL


def statuses(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())


def check_received_exactly_once_per_id(secret: str, receiver: Receiver, db: Path) -> None:
    verify_signatures(secret, [got for got in receiver.requests if got.status])
    with sqlite3.connect(db) as conn:
        ids = {r[0] for r in conn.execute("SELECT message_id FROM outbox")}
    assert len(ids) == CROSSINGS
    answered = [r.header("webhook-id") for r in receiver.answered(200)]
    assert set(answered) == ids  # every event received
    assert {r.header("webhook-id") for r in receiver.requests} == ids  # repeats reuse the id
    assert statuses(db) == {"delivered": CROSSINGS}


def test_sigkill_between_enqueue_and_delivery_then_restart(tmp_path: Path) -> None:
    secret = whsec("crash-1")

    def hang_first(got: Received, index: int) -> Reply:
        return HANG if index == 0 else Reply(200)

    with Receiver(hang_first) as receiver:
        tape = write_tape(tmp_path / "tape.csv", CROSSING_PRICES)
        config = write_config(
            tmp_path / "c.toml",
            sink_toml("hook", "webhook", url=receiver.url, secret=secret, timeout=DEADLINE),
        )
        db = tmp_path / "state.db"
        args = ("replay", str(tape), "--notify", "--state-db", str(db), "--config", str(config))
        proc = start(tmp_path, *args)
        receiver.wait_for(lambda got: len(got) >= 1)
        kill(proc)
        assert statuses(db) == {"pending": CROSSINGS}  # enqueued, nothing marked delivered
        receiver.release.set()
        again = run(tmp_path, *args)  # the next replay completes the delivery
        assert again.returncode == 0, again.stderr
        check_received_exactly_once_per_id(secret, receiver, db)
        first = receiver.requests[0].header("webhook-id")
        assert [r.header("webhook-id") for r in receiver.requests].count(first) == 2


def test_sigkill_between_the_receivers_2xx_and_the_db_update_then_restart(
    tmp_path: Path,
) -> None:
    secret = whsec("crash-2")
    db = tmp_path / "state.db"
    lock: list[sqlite3.Connection] = []

    def lock_db_before_third_answer(got: Received, reply: Reply) -> None:
        if len(lock) == 0 and got.header("webhook-id") and len(receiver.requests) == 3:
            conn = sqlite3.connect(db, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("BEGIN IMMEDIATE")  # the sender cannot record the 2xx it gets next
            lock.append(conn)

    with Receiver([Reply(200)], before_reply=lock_db_before_third_answer) as receiver:
        tape = write_tape(tmp_path / "tape.csv", CROSSING_PRICES)
        config = write_config(
            tmp_path / "c.toml", sink_toml("hook", "webhook", url=receiver.url, secret=secret)
        )
        proc = start(
            tmp_path,
            "replay",
            str(tape),
            "--notify",
            "--state-db",
            str(db),
            "--config",
            str(config),
        )
        receiver.wait_for(lambda got: len(got) >= 3 and got[2].status == 200)
        kill(proc)
        lock[0].execute("ROLLBACK")
        lock[0].close()
        assert statuses(db) == {"delivered": 2, "pending": CROSSINGS - 2}
        flush = run(tmp_path, "outbox", "flush", "--state-db", str(db), "--config", str(config))
        assert flush.returncode == 0, flush.stderr
        check_received_exactly_once_per_id(secret, receiver, db)
        third = receiver.requests[2].header("webhook-id")
        answered = [r.header("webhook-id") for r in receiver.answered(200)]
        assert answered.count(third) == 2  # the one duplicate carries the same webhook-id
        assert len(answered) == CROSSINGS + 1
