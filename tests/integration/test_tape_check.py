"""``replay --state-db``'s whole-tape check (``sources.tape.TapeCheck``): a real second
process (``python -m monitor.sources.tape_check``) reads the tape while the replay runs, so a
long replay may commit as it goes; a short one never starts it. The clock is injected."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.errors import InputError
from monitor.sources.tape import TapeCheck

HEADER = "time,symbol,price,currency"
T0 = datetime(2025, 2, 3, 1, 30, tzinfo=UTC)


def tape(path: Path, rows: int, bad_at: int | None = None) -> Path:
    lines = [HEADER]
    for i in range(rows):
        price = "lots" if i == bad_at else f"{40 + (i % 7) / 100:.2f}"
        lines.append(f"{(T0 + timedelta(minutes=i)).isoformat()},1810.HK,{price},HKD")
    path.write_text("\n".join(lines) + "\n")
    return path


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def settle(check: TapeCheck, deadline: float = 60.0) -> bool:
    """Ask as a replay does between batches until the check answers (or raises)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check(False):
            return True
        time.sleep(0.02)
    raise AssertionError("the tape check gave no answer in time")


def test_a_replay_that_ends_early_never_starts_the_check(tmp_path: Path) -> None:
    clock = Clock()
    check = TapeCheck(tape(tmp_path / "t.csv", 50), {"1810.HK"}, start_after=2, clock=clock)
    clock.now = 1.9
    assert check(False) is False  # not yet good to commit: the batches stay in one
    assert check(True) is True  # every row read by the replay itself: commit
    assert not check.started


def test_a_long_replay_may_commit_once_the_check_found_every_row_good(tmp_path: Path) -> None:
    clock = Clock()
    check = TapeCheck(tape(tmp_path / "t.csv", 3000), {"1810.HK"}, start_after=2, clock=clock)
    assert check(False) is False and not check.started
    clock.now = 2.0
    assert settle(check) is True
    assert check.started
    assert check(True) is True


def test_a_bad_row_found_by_the_check_is_the_readers_own_error(tmp_path: Path) -> None:
    path = tape(tmp_path / "t.csv", 3000, bad_at=2500)
    check = TapeCheck(path, {"1810.HK"}, start_after=0)
    with pytest.raises(InputError) as caught:
        settle(check)
    assert caught.value.where == f"{path}:2502:3"  # the header is line 1; price is column 3
    assert "lots" in str(caught.value)


def test_a_replay_that_ended_stops_a_check_still_reading(tmp_path: Path) -> None:
    check = TapeCheck(tape(tmp_path / "t.csv", 200_000), {"1810.HK"}, start_after=0)
    assert check(False) is False  # started, still reading its 200,000 rows
    child = check._child
    assert child is not None and child.poll() is None
    assert check(True) is True
    assert child.wait(timeout=30) != 0  # killed, not waited for
