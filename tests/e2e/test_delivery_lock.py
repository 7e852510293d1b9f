"""Two processes never deliver from one state db at the same time (no double sends)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import run_cli
from delivery_setup import CROSSING_PRICES, CROSSINGS, sink_toml, whsec, write_config, write_tape
from fakes import Receiver

from monitor.notify.dblock import DeliveryLock

HOLD = """
import sys, time
from pathlib import Path
from monitor.notify.dblock import DeliveryLock
lock = DeliveryLock(Path(sys.argv[1]))
assert lock.try_acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_process_waits_for_the_one_delivering(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not DeliveryLock(db).try_acquire()
        with Receiver() as receiver:
            tape = write_tape(tmp_path / "tape.csv", CROSSING_PRICES)
            config = write_config(
                tmp_path / "c.toml", sink_toml("hook", "webhook", url=receiver.url, secret=whsec())
            )
            args = ("--state-db", str(db), "--config", str(config))
            done = run_cli("replay", str(tape), "--notify", *args)
            assert done.returncode == 1
            assert "another mcap-monitor process" in done.stderr
            assert receiver.requests == []
            holder.kill()
            holder.wait(timeout=30)
            # the kernel dropped the dead holder's lock: nothing is stuck
            flushed = run_cli("outbox", "flush", *args)
            assert flushed.returncode == 0, flushed.stderr
            ids = [r.header("webhook-id") for r in receiver.answered(200)]
            assert len(ids) == len(set(ids)) == CROSSINGS
    finally:
        holder.kill()
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_the_lock_is_shared_within_one_process(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first, second = DeliveryLock(db), DeliveryLock(db)
    assert first.try_acquire() and second.try_acquire()
    first.release()
    assert second.held
    second.release()
    third = DeliveryLock(db)
    assert third.try_acquire()
    third.release()
