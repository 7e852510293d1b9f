"""The PostgreSQL store against a real server: the same answers as SQLite's, one leader at a
time, and fencing: an instance that lost leadership cannot write."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from fakes import wait_until

from monitor.core.rules import RuleState
from monitor.errors import StoreError
from monitor.store import Store
from monitor.store.leadership import Leadership, NotLeader
from monitor.store.pg_schema import PG_MIGRATIONS
from monitor.store.postgres import PgStore
from monitor.store.schema import MIGRATIONS
from monitor.store.sqlite import LastReading

T0 = datetime(2025, 2, 3, 1, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened: Store = Store.open(tmp_path / "state.db")
    else:
        opened = PgStore.connect(request.getfixturevalue("pg_url"))
    yield opened
    opened.close()


def test_both_backends_have_the_same_numbered_migrations() -> None:
    assert len(PG_MIGRATIONS) == len(MIGRATIONS)


def test_rule_state_outbox_and_watermarks_read_back_the_same_on_both_backends(
    store: Store,
) -> None:
    state = RuleState("xiaomi-1t", "above", T0, 2, T0.date())
    with store.transaction():
        store.put_rule_states([(state, LastReading(T0, Decimal("1.01E+12"), Decimal("1E+12")))])
        assert store.enqueue("ev-1", "hook", "alert", {"id": "ev-1", "v": "1.01"}, 100.0)
        assert not store.enqueue("ev-1", "hook", "alert", {"id": "ev-1", "v": "1.01"}, 101.0)
        store.set_watermarks({"1810.HK": T0})
    assert store.rule_states() == {"xiaomi-1t": state}
    assert store.last_readings()["xiaomi-1t"].value == Decimal("1.01E+12")
    assert store.last_times() == {"1810.HK": T0}
    pending = store.outbox_pending("hook")
    assert [(r.message_id, r.payload["v"], r.created_at) for r in pending] == [
        ("ev-1", "1.01", 100.0)
    ]
    store.mark_delivered(pending[0].id, 102.0)
    assert store.outbox_counts() == {"pending": 0, "delivered": 1, "dead": 0}
    assert store.outbox_pending("hook") == []


def test_a_failed_transaction_leaves_nothing_on_both_backends(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.enqueue("ev-2", "hook", "alert", {"id": "ev-2"}, 1.0)
        raise RuntimeError("poll failed half-way")
    assert store.outbox_counts()["pending"] == 0


def test_one_leader_at_a_time_and_the_follower_takes_over_when_its_session_ends(
    pg_url: str,
) -> None:
    PgStore.connect(pg_url).close()
    a, b = Leadership(pg_url, "host-a"), Leadership(pg_url, "host-b")
    assert a.try_acquire() and a.epoch == 1
    assert not b.try_acquire()
    row = b.current()
    assert row is not None and (row.epoch, row.holder) == (1, "host-a")
    a.release()  # as a crash would: the server drops the session's lock
    assert wait_until(b.try_acquire, timeout=30)
    assert b.epoch == 2 and b.current() is not None and b.current().holder == "host-b"  # type: ignore[union-attr]
    b.release()


def test_an_old_leader_that_lost_its_session_writes_nothing(pg_url: str) -> None:
    a = Leadership(pg_url, "host-a")
    store_a = PgStore.connect(pg_url, fence=a)
    assert a.try_acquire()
    with store_a.transaction():
        store_a.set_meta("written-by", "host-a")
    # host-a freezes (SIGSTOP); its leadership session is cut, host-b takes over
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        )
    b = Leadership(pg_url, "host-b")
    assert wait_until(b.try_acquire, timeout=30)
    store_b = PgStore.connect(pg_url, fence=b)
    # host-a wakes up believing it leads: its next write is refused, and nothing lands
    with pytest.raises(NotLeader), store_a.transaction():
        store_a.set_meta("written-by", "host-a-after-wake")
    assert store_b.meta("written-by") == "host-a"
    assert not a.try_acquire()  # it becomes a follower
    with store_b.transaction():
        store_b.set_meta("written-by", "host-b")
    assert store_b.meta("written-by") == "host-b"
    for s in (store_a, store_b):
        s.close()
    b.release()


def test_a_takeover_waits_for_the_old_leaders_open_transaction(pg_url: str) -> None:
    a = Leadership(pg_url, "host-a")
    store_a = PgStore.connect(pg_url, fence=a)
    assert a.try_acquire()
    inside, done = threading.Event(), threading.Event()

    def old_leader_writes() -> None:
        with store_a.transaction():
            inside.set()
            store_a.set_meta("k", "a")
            done.wait(10)

    worker = threading.Thread(target=old_leader_writes)
    worker.start()
    assert inside.wait(10)
    a.release()
    b = Leadership(pg_url, "host-b")
    took = threading.Thread(target=lambda: wait_until(b.try_acquire, timeout=30))
    took.start()
    done.set()
    worker.join(10)
    took.join(40)
    assert b.held and b.epoch == 2
    assert store_a.meta("k") == "a"  # committed under the old epoch, before the bump
    store_a.close()
    b.release()


def test_an_unreachable_server_is_a_one_line_error_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://mon:s3cret-pw@/nodb?host={tmp_path}"
    with pytest.raises(StoreError) as caught:
        PgStore.connect(url)
    text = str(caught.value)
    assert "\n" not in text and "s3cret-pw" not in text
    assert "cannot connect to PostgreSQL" in text and "***" in text
