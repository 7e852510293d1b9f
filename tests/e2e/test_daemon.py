"""``mcap-monitor run`` end to end: tape mode, sd_notify, signed webhooks, signals, restarts."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from e2e.daemon_support import (
    accepted_ids,
    expected_message_ids,
    rejected,
    running,
    webhook_receiver,
    write_config,
)
from fakes import NotifyListener, Receiver, wait_until

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def notify() -> Iterator[NotifyListener]:
    listener = NotifyListener()
    yield listener
    listener.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = webhook_receiver()
    yield hook
    hook.close()


def test_tape_mode_sends_ready_and_watchdog_delivers_every_event_once_and_stops_on_sigterm(
    tmp_path: Path, notify: NotifyListener, receiver: Receiver
) -> None:
    config = write_config(
        tmp_path / "cfg.toml", state_dir=tmp_path / "state", webhook_url=receiver.url
    )
    expected = expected_message_ids(config)
    assert len(expected) >= 5  # the tape crosses HK$1T and CN¥1T several times
    with running(config, tmp_path / "daemon.log", notify) as daemon:
        assert wait_until(lambda: notify.seen("READY=1"), 15), daemon.log_path.read_text()
        assert wait_until(lambda: notify.seen("WATCHDOG=1"), 15)
        assert any(f.startswith("STATUS=1810.HK") for f in notify.fields())
        assert wait_until(lambda: set(accepted_ids(receiver)) >= expected, 60), (
            expected - set(accepted_ids(receiver)),
            daemon.log_path.read_text()[-3000:],
        )
        health = requests.get(daemon.health_url() + "/healthz", timeout=5)
        assert health.status_code == 200
        assert health.json()["symbols"]["1810.HK"]["status"] == "ok"
        code, took = daemon.stop()
    assert code == 0
    assert took < 10
    assert notify.seen("STOPPING=1")
    assert rejected(receiver) == []
    assert accepted_ids(receiver) == {mid: 1 for mid in expected}


def test_sigkill_and_restart_loses_nothing_and_delivers_nothing_twice(
    tmp_path: Path, notify: NotifyListener, receiver: Receiver
) -> None:
    config = write_config(
        tmp_path / "cfg.toml",
        state_dir=tmp_path / "state",
        webhook_url=receiver.url,
        poll_interval=0.4,
    )
    expected = expected_message_ids(config)
    with running(config, tmp_path / "first.log", notify) as first:
        assert wait_until(lambda: len(set(accepted_ids(receiver))) >= 2, 60), (
            first.log_path.read_text()
        )
        first.signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
    got_before = set(accepted_ids(receiver))
    assert got_before < expected, "killed too late to test anything"
    with running(config, tmp_path / "second.log", notify) as second:
        assert wait_until(lambda: set(accepted_ids(receiver)) >= expected, 90), (
            expected - set(accepted_ids(receiver)),
            second.log_path.read_text()[-3000:],
        )
        code, _ = second.stop()
    assert code == 0
    assert set(accepted_ids(receiver)) == expected
    # A kill between the receiver's 2xx and the db update may repeat a delivery; it then
    # carries the same webhook-id, so the receiver sees each event exactly once.
    duplicates = {mid: n for mid, n in accepted_ids(receiver).items() if n > 1}
    assert len(duplicates) <= 1, duplicates


def test_sighup_with_a_broken_config_keeps_running_on_the_old_one(
    tmp_path: Path, notify: NotifyListener, receiver: Receiver
) -> None:
    config = write_config(
        tmp_path / "cfg.toml", state_dir=tmp_path / "state", webhook_url=receiver.url
    )
    good = config.read_text()
    with running(config, tmp_path / "daemon.log", notify) as daemon:
        assert wait_until(lambda: notify.seen("READY=1"), 15), daemon.log_path.read_text()
        config.write_text(good + "\n[daemon.nonsense\n")
        daemon.signal(signal.SIGHUP)
        assert wait_until(lambda: daemon.logged("config_reload_rejected"), 15)
        assert daemon.proc.poll() is None
        assert requests.get(daemon.health_url() + "/healthz", timeout=5).status_code == 200
        config.write_text(good.replace("poll_interval = 0.1", "poll_interval = 0.2"))
        daemon.signal(signal.SIGHUP)
        assert wait_until(lambda: daemon.logged("config_reloaded"), 15)
        code, took = daemon.stop()
    assert code == 0 and took < 10


def test_an_unwritable_state_directory_is_a_one_line_error_and_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = write_config(
        tmp_path / "cfg.toml", state_dir=blocker / "state", webhook_url="http://127.0.0.1:9/"
    )
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: state directory is not writable")
    assert str(blocker / "state") in lines[0]


def _mdwe_available() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    probe = subprocess.run(
        [sys.executable, "-c", "import ctypes,sys; sys.exit(ctypes.CDLL(None).prctl(65,1,0,0,0))"],
        capture_output=True,
        timeout=30,
    )
    return bool(libc) and probe.returncode == 0


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_MDWE is Linux-only")
def test_the_daemon_runs_under_memory_deny_write_execute(
    tmp_path: Path, notify: NotifyListener, receiver: Receiver
) -> None:
    """What MemoryDenyWriteExecute=yes enforces, via prctl(PR_SET_MDWE) (Linux >= 6.3)."""
    if not _mdwe_available():
        pytest.skip("kernel without PR_SET_MDWE")
    config = write_config(
        tmp_path / "cfg.toml", state_dir=tmp_path / "state", webhook_url=receiver.url
    )
    expected = expected_message_ids(config)
    prelude = (
        "import ctypes\n"
        "assert ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) == 0\n"
        # the stack's live-data modules must also load under the restriction
        "import curl_cffi.requests, yfinance, exchange_calendars\n"
    )
    with running(config, tmp_path / "daemon.log", notify, prelude=prelude) as daemon:
        assert wait_until(lambda: notify.seen("READY=1"), 20), daemon.log_path.read_text()
        assert wait_until(lambda: set(accepted_ids(receiver)) >= expected, 60)
        code, _ = daemon.stop()
    assert code == 0
    time.sleep(0)


def test_status_shows_the_market_cap_after_the_first_poll_not_the_first_heartbeat(
    tmp_path: Path, notify: NotifyListener, receiver: Receiver
) -> None:
    """WatchdogSec=60 means a heartbeat every 30 s: STATUS= must not wait for it. A delivery
    wake-up that finds delivery running is normal, so nothing logs APScheduler's warning."""
    config = write_config(
        tmp_path / "cfg.toml", state_dir=tmp_path / "state", webhook_url=receiver.url
    )
    with running(config, tmp_path / "daemon.log", notify, watchdog_usec=60_000_000) as daemon:
        assert wait_until(lambda: notify.seen("READY=1"), 15), daemon.log_path.read_text()
        started = time.monotonic()

        def status_with_cap() -> bool:
            # a STATUS= of its own, not one riding on a WATCHDOG=1 heartbeat
            return any(
                m.startswith("STATUS=1810.HK") and "HK$" in m and "WATCHDOG=1" not in m
                for m in list(notify.messages)
            )

        assert wait_until(status_with_cap, 20), (notify.messages, daemon.log_path.read_text())
        assert time.monotonic() - started < 25  # well before the second, 30 s, heartbeat
        assert wait_until(lambda: len(accepted_ids(receiver)) >= 5, 60)
        code, _ = daemon.stop()
    assert code == 0
    text = daemon.log_path.read_text()
    assert "maximum number of running instances" not in text
    warnings = [line for line in daemon.log_lines() if line.get("level") == "warning"]
    assert warnings == [], warnings
