"""Leases among instances sharing one PostgreSQL database: who leads, who delivers.

A lease is a session advisory lock held on a connection of its own: the server drops it when
that session ends (crash, ``kill -9``, a network loss noticed by TCP keepalives), so another
instance's next ``try_acquire`` takes over. The holder's connection runs a query on every
``try_acquire`` (its sign of life, ``pg_stat_activity.state_change``); a session that stays
silent past ``stale_after`` (a paused process, a half-open connection) is ended by the
instance waiting for the lease, with every other session of that instance, so a process
woken after a ``SIGSTOP`` finds its connections gone. Each leadership takeover bumps the
``leader`` row's epoch; fenced store transactions compare it (``PgStore``), so only the
current leader writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import structlog

from monitor.errors import StoreError
from monitor.settings.store import redact_url
from monitor.store.values import instance_name

log = structlog.get_logger("mcap.store")

LEADER_LOCK = 0x6D636170_0001  # advisory key of the leadership lease
DELIVERY_LOCK = 0x6D636170_0002  # advisory key of the one delivering instance

# a dead peer is noticed within seconds, not the kernel's two hours
_KEEPALIVE: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 2,
    "keepalives_interval": 1,
    "keepalives_count": 2,
    "tcp_user_timeout": 5000,
    "connect_timeout": 5,
}

__all__ = [
    "DELIVERY_LOCK",
    "LEADER_LOCK",
    "DeliveryLease",
    "LeaderRow",
    "Leadership",
    "Lease",
    "NotLeader",
    "connect",
    "holder_session",
    "instance_name",
    "redact_url",
]


class NotLeader(StoreError):
    """Raised by a fenced transaction when another instance has taken over leadership."""


def connect(
    url: str, *, password: str | None = None, app: str | None = None
) -> psycopg.Connection[Any]:
    """An autocommit connection to ``url`` (``StoreError``, password redacted, on failure).

    ``password`` (from a credential) overrides the url's; ``app`` names the session in
    ``pg_stat_activity``, which is how another instance finds all of this one's sessions.
    """
    extra: dict[str, Any] = dict(_KEEPALIVE)
    extra["application_name"] = f"mcap-monitor {app or instance_name()}"[:63]
    if password is not None:
        extra["password"] = password
    try:
        return psycopg.connect(url, autocommit=True, **extra)
    except psycopg.Error as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        if password:
            first = first.replace(password, "***")
        raise StoreError(
            f"cannot connect to PostgreSQL: {first.replace(url, redact_url(url))}",
            redact_url(url),
            "check [store] url, that the server runs, and the credentials",
        ) from None


@dataclass(frozen=True)
class LeaderRow:
    """Who leads (as the ``leader`` row says) and since when."""

    epoch: int
    holder: str
    since: datetime


def holder_session(conn: psycopg.Connection[Any], key: int) -> tuple[int, str, float] | None:
    """(pid, application_name, seconds silent) of the session holding advisory lock ``key``
    in this database, ``None`` when nobody holds it."""
    row = conn.execute(
        "SELECT a.pid, a.application_name,"
        " EXTRACT(EPOCH FROM clock_timestamp() - COALESCE(a.state_change, a.backend_start))"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND l.classid::bigint = %s AND l.objid::bigint = %s",
        (key >> 32, key & 0xFFFFFFFF),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), float(row[2]))


class Lease:
    """One advisory-lock lease: ``try_acquire`` on every retry; ``held`` in between."""

    what = "leader"
    key = LEADER_LOCK

    def __init__(
        self,
        url: str,
        me: str | None = None,
        *,
        stale_after: float | None = None,
        password: str | None = None,
    ) -> None:
        self.url = url
        self.me = me or instance_name()
        self.stale_after = stale_after
        self.password = password
        self.held = False
        self._holder = "?"  # who held it at the last failed try
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        """Hold the lease if no live session of another instance does; True while held.

        A lost connection makes this instance lose the lease (``held`` False); the next call
        reconnects. ``StoreError`` only when the server cannot be reached at all.
        """
        try:
            conn = self._connection()
            if self.held:
                conn.execute("SELECT 1")  # the sign of life the others watch
                return True
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            if not (row and row[0]):
                self._busy(conn)
                return False
            self._acquired(conn)
            self.held = True
            return True
        except psycopg.Error:
            self._lost()
            return False

    def _acquired(self, conn: psycopg.Connection[Any]) -> None:
        """What taking the lease writes (the leader bumps the epoch)."""

    def holder(self) -> str:
        """The instance that held the lease at the last failed ``try_acquire`` (``host:pid``),
        ``?`` when unknown."""
        return self._holder

    def _busy(self, conn: psycopg.Connection[Any]) -> None:
        """Note who holds the lease; end its sessions if it has been silent past
        ``stale_after``."""
        found = holder_session(conn, self.key)
        self._holder = "?" if found is None else found[1].removeprefix("mcap-monitor ")
        if found is None or self.stale_after is None or found[2] < self.stale_after:
            return
        pid, app, silent = found
        ended = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND (pid = %s OR (application_name = %s AND application_name <> ''))",
            (pid, app),
        ).fetchone()
        log.warning(
            "silent_holder_ended",
            lease=self.what,
            holder=self._holder,
            silent_seconds=round(silent, 1),
            sessions=int(ended[0]) if ended else 0,
        )

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url, password=self.password, app=self.me)
        return self._conn

    def _lost(self) -> None:
        self.held = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def release(self) -> None:
        """Give the lease up (closing the session drops the lock)."""
        self._lost()


class Leadership(Lease):
    """This instance's claim to lead; ``epoch`` is the leader row's while ``held``."""

    epoch = 0

    def _acquired(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            bumped = conn.execute(
                "UPDATE leader SET epoch = epoch + 1, holder = %s, since = now() "
                "WHERE id = 1 RETURNING epoch",
                (self.me,),
            ).fetchone()
        self.epoch = int(bumped[0]) if bumped else 0

    def current(self) -> LeaderRow | None:
        """The leader row as stored (``None`` when unreadable)."""
        try:
            row = (
                self._connection()
                .execute("SELECT epoch, holder, since FROM leader WHERE id = 1")
                .fetchone()
            )
        except (psycopg.Error, StoreError):
            self._lost()
            return None
        return None if row is None else LeaderRow(int(row[0]), str(row[1]), row[2])


class DeliveryLease(Lease):
    """The one instance delivering from the shared outbox (the dispatcher's ``lock``)."""

    what = "delivery"
    key = DELIVERY_LOCK
