"""SQLite state (stdlib ``sqlite3``, WAL): rule states, observations, events and the outbox.

The schema is versioned with ``PRAGMA user_version`` and migrated forward on open. Writers
group everything that belongs to one evaluated batch in one ``transaction()``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from monitor.core.events import Event, event_to_dict
from monitor.core.rules import RuleState
from monitor.errors import StoreError

MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE rule_state (
        rule_id TEXT PRIMARY KEY,
        position TEXT NOT NULL CHECK (position IN ('above', 'below')),
        since TEXT NOT NULL,
        last_time TEXT NOT NULL,
        last_value TEXT NOT NULL,
        last_threshold TEXT NOT NULL,
        streak INTEGER NOT NULL DEFAULT 0,
        touched_day TEXT
    );
    CREATE TABLE observations (
        id INTEGER PRIMARY KEY,
        symbol TEXT NOT NULL,
        time TEXT NOT NULL,
        local_time TEXT NOT NULL,
        price TEXT NOT NULL,
        currency TEXT NOT NULL,
        day_high TEXT,
        shares INTEGER NOT NULL,
        shares_source TEXT NOT NULL,
        market_cap TEXT NOT NULL,
        inputs TEXT NOT NULL,
        source TEXT NOT NULL
    );
    CREATE INDEX observations_symbol_time ON observations (symbol, time);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        time TEXT NOT NULL,
        symbol TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX events_time ON events (time);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL,
        sink_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        next_attempt_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        delivered_at REAL,
        last_error TEXT,
        UNIQUE (message_id, sink_id)
    );
    CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
    """,
    # 2: outbox retry window restarts when a dead delivery is re-queued by hand
    """
    ALTER TABLE outbox ADD COLUMN retry_from REAL;
    CREATE INDEX outbox_sink ON outbox (sink_id, status, id);
    """,
)


def utc_iso(moment: datetime) -> str:
    """Sortable text form of an aware time: ISO 8601 in UTC."""
    return moment.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class LastReading:
    """A rule's most recent value and threshold (for ``status``)."""

    time: datetime
    value: Decimal
    threshold: Decimal


@dataclass(frozen=True)
class OutboxRow:
    """One delivery of one message to one sink."""

    id: int
    message_id: str
    sink_id: str
    kind: str
    payload: dict[str, Any]
    status: str
    attempts: int
    created_at: float
    next_attempt_at: float
    delivered_at: float | None
    last_error: str | None


class Store:
    """The state database. ``path=None`` keeps everything in memory (fresh state)."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None) -> None:
        self.conn = conn
        self.path = path
        self._depth = 0

    @classmethod
    def open(cls, path: Path | None) -> Store:
        """Open (creating and migrating as needed) the database at ``path``."""
        target = ":memory:" if path is None else str(path)
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                target, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA foreign_keys = ON")
            if path is not None:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            store = cls(conn, path)
            store._migrate()
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open state database: {exc}",
                str(target),
                "check the path is writable and not used by an incompatible version",
            ) from None
        except OSError as exc:
            raise StoreError(
                f"cannot create state directory: {exc.strerror}",
                str(target),
                "choose a writable --state-db path",
            ) from None
        return store

    def close(self) -> None:
        self.conn.close()

    def _migrate(self) -> None:
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(
                f"state database schema v{version} is newer than this program (v{len(MIGRATIONS)})",
                str(self.path),
                "upgrade mcap-monitor or use another --state-db",
            )
        for number in range(version, len(MIGRATIONS)):
            with self.transaction():
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {number + 1}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit; nested use joins the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")

    # -- meta -----------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- rule state -----------------------------------------------------------------------
    def rule_states(self) -> dict[str, RuleState]:
        """Every rule's state machine state."""
        return {
            row[0]: RuleState(
                row[0],
                row[1],
                datetime.fromisoformat(row[2]),
                int(row[3]),
                date.fromisoformat(row[4]) if row[4] else None,
            )
            for row in self.conn.execute(
                "SELECT rule_id, position, since, streak, touched_day FROM rule_state"
            )
        }

    def last_readings(self) -> dict[str, LastReading]:
        """Every rule's last evaluated value and threshold."""
        return {
            row[0]: LastReading(datetime.fromisoformat(row[1]), Decimal(row[2]), Decimal(row[3]))
            for row in self.conn.execute(
                "SELECT rule_id, last_time, last_value, last_threshold FROM rule_state"
            )
        }

    def put_rule_states(self, rows: Iterable[tuple[RuleState, LastReading]]) -> None:
        """Upsert rule states together with their last reading."""
        self.conn.executemany(
            "INSERT INTO rule_state VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rule_id) DO "
            "UPDATE SET position = excluded.position, since = excluded.since, "
            "last_time = excluded.last_time, last_value = excluded.last_value, "
            "last_threshold = excluded.last_threshold, streak = excluded.streak, "
            "touched_day = excluded.touched_day",
            [
                (
                    s.rule_id,
                    s.position,
                    s.since.isoformat(),
                    last.time.isoformat(),
                    str(last.value),
                    str(last.threshold),
                    s.streak,
                    s.touched_day.isoformat() if s.touched_day else None,
                )
                for s, last in rows
            ],
        )

    # -- observations ---------------------------------------------------------------------
    def last_times(self) -> dict[str, datetime]:
        """The newest observation time per symbol."""
        return {
            row[0]: datetime.fromisoformat(row[1])
            for row in self.conn.execute(
                "SELECT symbol, MAX(time) FROM observations GROUP BY symbol"
            )
        }

    def add_observations(self, rows: list[tuple[object, ...]]) -> None:
        """Insert rows shaped as ``(symbol, time, local_time, price, currency, day_high,
        shares, shares_source, market_cap, inputs_json, source)``."""
        self.conn.executemany(
            "INSERT INTO observations (symbol, time, local_time, price, currency, day_high, "
            "shares, shares_source, market_cap, inputs, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def latest_observations(self) -> dict[str, dict[str, Any]]:
        """The newest observation per symbol, as a dict of its columns."""
        cur = self.conn.execute(
            "SELECT o.* FROM observations o JOIN (SELECT symbol, MAX(id) AS id FROM observations "
            "GROUP BY symbol) m ON o.id = m.id"
        )
        names = [d[0] for d in cur.description]
        return {row[1]: dict(zip(names, row, strict=True)) for row in cur}

    def observations(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Stored observations, oldest first."""
        cur = self.conn.execute(
            "SELECT * FROM observations WHERE time >= ? ORDER BY time, id",
            (utc_iso(since) if since else "",),
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

    def last_price_before(self, symbol: str, moment: datetime) -> Decimal | None:
        """The newest stored price of ``symbol`` strictly before ``moment`` (a previous close)."""
        row = self.conn.execute(
            "SELECT price FROM observations WHERE symbol = ? AND time < ? "
            "ORDER BY time DESC, id DESC LIMIT 1",
            (symbol, utc_iso(moment)),
        ).fetchone()
        return None if row is None else Decimal(row[0])

    def prune_observations(self, before: datetime) -> int:
        """Delete observations older than ``before``; return how many went."""
        cur = self.conn.execute("DELETE FROM observations WHERE time < ?", (utc_iso(before),))
        return cur.rowcount

    # -- events ---------------------------------------------------------------------------
    def add_events(self, events: Iterable[Event]) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO events (id, time, symbol, rule_id, kind, payload) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (e.id, utc_iso(e.time), e.symbol, e.rule_id, e.kind, json.dumps(event_to_dict(e)))
                for e in events
            ],
        )

    def events(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Recorded events (as dicts), oldest first; ``limit`` keeps the newest ones."""
        sql = "SELECT payload FROM events WHERE time >= ? ORDER BY seq DESC"
        params: list[object] = [utc_iso(since) if since else ""]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = [json.loads(r[0]) for r in self.conn.execute(sql, params)]
        rows.reverse()
        return rows

    # -- outbox ---------------------------------------------------------------------------
    def enqueue(
        self, message_id: str, sink_id: str, kind: str, payload: dict[str, Any], now: float
    ) -> bool:
        """Add one delivery; a message already queued for that sink is not added twice."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO outbox (message_id, sink_id, kind, payload, created_at, "
            "next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (message_id, sink_id, kind, json.dumps(payload), now, now, now),
        )
        return cur.rowcount == 1

    def _outbox_rows(self, sql: str, params: tuple[object, ...]) -> list[OutboxRow]:
        return [
            OutboxRow(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7], r[8], r[9], r[10])
            for r in self.conn.execute(
                "SELECT id, message_id, sink_id, kind, payload, status, attempts, created_at, "
                "next_attempt_at, delivered_at, last_error FROM outbox " + sql,
                params,
            )
        ]

    def outbox_due(self, now: float, limit: int = 100) -> list[OutboxRow]:
        """Pending deliveries whose next attempt is due, oldest first."""
        return self._outbox_rows(
            "WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?", (now, limit)
        )

    def outbox_list(self, status: str | None = None) -> list[OutboxRow]:
        if status is None:
            return self._outbox_rows("ORDER BY id", ())
        return self._outbox_rows("WHERE status = ? ORDER BY id", (status,))

    def outbox_counts_by_sink(self) -> dict[tuple[str, str], int]:
        """``(sink, status) -> rows`` and ``(sink, "attempts") -> attempts made``, per sink."""
        out: dict[tuple[str, str], int] = {}
        for sink, status, n, attempts in self.conn.execute(
            "SELECT sink_id, status, COUNT(*), COALESCE(SUM(attempts), 0) FROM outbox "
            "GROUP BY sink_id, status"
        ):
            out[(str(sink), str(status))] = int(n)
            out[(str(sink), "attempts")] = out.get((str(sink), "attempts"), 0) + int(attempts)
        return out

    def outbox_counts(self) -> dict[str, int]:
        counts = {"pending": 0, "delivered": 0, "dead": 0}
        for status, n in self.conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status"):
            counts[str(status)] = int(n)
        return counts

    def outbox_pending(self, sink_id: str, limit: int = 100) -> list[OutboxRow]:
        """One sink's pending deliveries in the order they were enqueued."""
        return self._outbox_rows(
            "WHERE status = 'pending' AND sink_id = ? ORDER BY id LIMIT ?", (sink_id, limit)
        )

    def outbox_row(self, row_id: int) -> OutboxRow | None:
        rows = self._outbox_rows("WHERE id = ?", (row_id,))
        return rows[0] if rows else None

    def outbox_age_base(self, row_id: int) -> float:
        """When the row's retry window began: enqueue time, or its last manual re-queue."""
        row = self.conn.execute(
            "SELECT COALESCE(retry_from, created_at) FROM outbox WHERE id = ?", (row_id,)
        ).fetchone()
        return 0.0 if row is None else float(row[0])

    def outbox_next_due(self) -> dict[str, float]:
        """Per sink, the earliest next attempt of its pending deliveries."""
        return {
            str(sink): float(due)
            for sink, due in self.conn.execute(
                "SELECT sink_id, MIN(next_attempt_at) FROM outbox WHERE status = 'pending' "
                "GROUP BY sink_id"
            )
        }

    def mark_delivered(self, row_id: int, now: float) -> None:
        """Record the receiver's success: the row is never sent again."""
        self.conn.execute(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, "
            "updated_at = ?, last_error = NULL WHERE id = ? AND status = 'pending'",
            (now, now, row_id),
        )

    def mark_failed(self, row_id: int, now: float, error: str, next_attempt_at: float) -> None:
        """Record a transient failure; the row stays pending until ``next_attempt_at``."""
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
            "updated_at = ? WHERE id = ? AND status = 'pending'",
            (error, next_attempt_at, now, row_id),
        )

    def mark_dead(self, row_id: int, now: float, error: str, *, attempted: bool = True) -> None:
        """Give up on a row (permanent failure or too old); it stays listed with the reason."""
        self.conn.execute(
            "UPDATE outbox SET status = 'dead', attempts = attempts + ?, last_error = ?, "
            "updated_at = ? WHERE id = ? AND status = 'pending'",
            (1 if attempted else 0, error, now, row_id),
        )

    def hold(self, row_id: int, until: float, now: float) -> None:
        """Postpone a row without counting an attempt (quiet hours)."""
        self.conn.execute(
            "UPDATE outbox SET next_attempt_at = ?, updated_at = ? "
            "WHERE id = ? AND status = 'pending'",
            (until, now, row_id),
        )

    def requeue(self, row_ids: Iterable[int] | None, now: float) -> int:
        """Make dead (or waiting) rows pending and due now; ``None`` re-queues every dead row.

        The retry window restarts at ``now``; delivered rows are never re-queued.
        """
        sql = (
            "UPDATE outbox SET status = 'pending', next_attempt_at = ?, retry_from = ?, "
            "updated_at = ? WHERE status != 'delivered'"
        )
        if row_ids is None:
            return self.conn.execute(sql + " AND status = 'dead'", (now, now, now)).rowcount
        total = 0
        for row_id in row_ids:
            total += self.conn.execute(sql + " AND id = ?", (now, now, now, row_id)).rowcount
        return total
