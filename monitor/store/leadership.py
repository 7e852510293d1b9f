"""Leadership among instances sharing one PostgreSQL database.

The leader holds a session advisory lock on a connection of its own: the server drops it
when that session ends (crash, ``kill -9``, network loss noticed by TCP keepalives), so a
follower's next ``try_acquire`` takes over. Each takeover bumps the ``leader`` row's epoch;
fenced store transactions compare it (``PgStore``), so only the current leader writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from monitor.errors import StoreError

LEADER_LOCK = 0x6D636170_0001  # advisory key of the leadership lock
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


class NotLeader(StoreError):
    """Raised by a fenced transaction when another instance has taken over leadership."""


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    url = re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)


def connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection to ``url`` (``StoreError``, password redacted, on failure)."""
    try:
        return psycopg.connect(url, autocommit=True, **_KEEPALIVE)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
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


class Leadership:
    """This instance's claim to lead: ``try_acquire`` each retry; ``held``/``epoch`` after."""

    def __init__(self, url: str, me: str, key: int = LEADER_LOCK) -> None:
        self.url = url
        self.me = me
        self.key = key
        self.held = False
        self.epoch = 0
        self.changes = 0
        """Times this instance became leader or stopped being one."""
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        """Lead if no other session holds the lock; True while this instance leads.

        A lost connection makes this instance a follower (``held`` False); the next call
        reconnects. ``StoreError`` only when the server cannot be reached.
        """
        try:
            conn = self._connection()
            if self.held:
                conn.execute("SELECT 1")
                return True
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            if not (row and row[0]):
                return False
            with conn.transaction():
                bumped = conn.execute(
                    "UPDATE leader SET epoch = epoch + 1, holder = %s, since = now() "
                    "WHERE id = 1 RETURNING epoch",
                    (self.me,),
                ).fetchone()
            self.epoch = int(bumped[0]) if bumped else 0
            self.held = True
            self.changes += 1
            return True
        except psycopg.Error:
            self._lost()
            return False

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url)
        return self._conn

    def _lost(self) -> None:
        if self.held:
            self.changes += 1
        self.held = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def current(self) -> LeaderRow | None:
        """The leader row as stored (``None`` when unreadable)."""
        try:
            row = (
                self._connection()
                .execute("SELECT epoch, holder, since FROM leader WHERE id = 1")
                .fetchone()
            )
        except psycopg.Error:
            self._lost()
            return None
        return None if row is None else LeaderRow(int(row[0]), str(row[1]), row[2])

    def release(self) -> None:
        """Give leadership up (closing the session drops the lock)."""
        self._lost()
