"""PostgreSQL state (psycopg 3): the same ``Store`` as SQLite's, shared by several hosts.

The queries are the SQLite store's: a thin connection wrapper turns ``?`` placeholders into
psycopg's and the one aggregate in SQLite's own dialect is overridden here. A store built
with a ``Leadership`` is *fenced*: every ``transaction()`` first reads the leader row
``FOR SHARE`` and refuses (``NotLeader``) unless this instance holds the current epoch, so a
paused old leader that wakes up cannot write (a takeover's epoch bump waits for, or follows,
every fenced transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg

from monitor.errors import StoreError
from monitor.settings.store import redact_url
from monitor.store.leadership import (
    LEADER_LOCK,
    Leadership,
    NotLeader,
    connect,
    holder_session,
)
from monitor.store.pg_schema import PG_MIGRATIONS
from monitor.store.sqlite import Store

_MIGRATE_LOCK = 0x6D636170_0000  # advisory key: one instance migrates, the others wait


class _Conn:
    """The slice of ``sqlite3.Connection`` the store's queries use, over a psycopg one.

    A connection the server ended (a takeover, a restart, a network loss) is replaced by a
    new one on the next statement; the statement that found it broken fails, so a
    transaction never continues on another session.
    """

    def __init__(self, raw: psycopg.Connection[Any], reopen: Callable[[], Any] | None) -> None:
        self.raw = raw
        self._reopen = reopen

    def live(self) -> psycopg.Connection[Any]:
        """The session, reopened first if the server ended it."""
        if (self.raw.closed or self.raw.broken) and self._reopen is not None:
            self.raw = self._reopen()
        return self.raw

    def execute(self, sql: str, params: Sequence[object] = ()) -> psycopg.Cursor[Any]:
        raw = self.live()
        # no parameters: sent as is (a migration holds several statements)
        if not params:
            return raw.execute(sql)
        return raw.execute(sql.replace("?", "%s"), tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        with self.live().cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])

    def close(self) -> None:
        self._reopen = None
        self.raw.close()


class PgStore(Store):
    """The state database on a PostgreSQL server; ``fence``: writes prove leadership."""

    def __init__(self, conn: _Conn, url: str, fence: Leadership | None = None) -> None:
        # the queries inherited from ``Store`` need only ``execute``/``executemany``
        super().__init__(conn, None)  # type: ignore[arg-type]
        self._pg = conn
        self.url = url
        self.fence = fence

    @classmethod
    def connect(
        cls,
        url: str,
        fence: Leadership | None = None,
        *,
        password: str | None = None,
        app: str | None = None,
    ) -> PgStore:
        """Connect to ``url`` and migrate the schema forward (``StoreError`` when unreachable).

        ``password``: from a credential, over the url's; ``app``: this instance's name (the
        fence's, when fenced), so a takeover can end all of its sessions."""
        name = app or (fence.me if fence is not None else None)

        def reopen() -> psycopg.Connection[Any]:
            return connect(url, password=password, app=name)

        store = cls(_Conn(reopen(), reopen), url, fence)
        try:
            store._migrate()
        except psycopg.Error as exc:
            store.close()
            raise StoreError(
                f"cannot migrate the PostgreSQL schema: {type(exc).__name__}",
                redact_url(url),
                "check the database user may create tables",
            ) from None
        return store

    @property
    def where(self) -> str:
        """The server as shown in messages (password removed)."""
        return redact_url(self.url)

    def _migrate(self) -> None:
        conn = self.conn
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        if self._version() == len(PG_MIGRATIONS):
            return
        conn.execute("BEGIN")
        try:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATE_LOCK,))
            version = self._version()
            for number in range(version, len(PG_MIGRATIONS)):
                conn.execute(PG_MIGRATIONS[number])
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version VALUES (?)", (len(PG_MIGRATIONS),))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _version(self) -> int:
        row = self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        version = int(row[0]) if row and row[0] is not None else 0
        if version > len(PG_MIGRATIONS):
            raise StoreError(
                f"database schema v{version} is newer than this program (v{len(PG_MIGRATIONS)})",
                self.where,
                "upgrade mcap-monitor on this host",
            )
        return version

    def _begin(self) -> None:
        """BEGIN, fenced by the leader epoch when built with a ``Leadership``."""
        self.conn.execute("BEGIN")
        if self.fence is None:
            return
        try:
            self._prove_leadership(self.fence)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def _prove_leadership(self, fence: Leadership) -> None:
        row = self.conn.execute(
            "SELECT epoch, holder FROM leader WHERE id = 1 FOR SHARE"
        ).fetchone()
        if not fence.held or row is None or int(row[0]) != fence.epoch:
            holder = "" if row is None else str(row[1])
            raise NotLeader(
                f"not the leader any more (epoch {fence.epoch}; now {holder or '?'})",
                self.where,
                "this instance stays a follower; the leader writes",
            )

    def leader(self) -> dict[str, object] | None:
        """The leader row, and whether its lease is held now (``live``)."""
        row = self.conn.execute("SELECT epoch, holder, since FROM leader WHERE id = 1").fetchone()
        live = holder_session(self._pg.live(), LEADER_LOCK) is not None
        if row is None:
            return None
        return {
            "epoch": int(row[0]),
            "holder": str(row[1]),
            "since": row[2].isoformat(timespec="seconds"),
            "live": live,
        }

    def advance_identities(self) -> None:
        """Move each identity past the ids a copy inserted (``store copy``)."""
        identities = (
            ("events", "seq"),
            ("outbox", "id"),
            ("observations", "id"),
            ("observation_blocks", "id"),
        )
        for table, column in identities:
            self.conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                f" COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
            )

    # -- statements in SQLite's own dialect ----------------------------------------------
    def _table_sources(self) -> tuple[str, str]:
        row = self.conn.execute(
            "SELECT string_agg(DISTINCT source, ','), string_agg(DISTINCT shares_source, ',') "
            "FROM observations"
        ).fetchone()
        return (row[0] or "", row[1] or "")

    def close(self) -> None:
        self.conn.close()


__all__ = ["NotLeader", "PgStore"]
