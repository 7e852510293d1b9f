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
from monitor.store.outbox import OutboxQueries
from monitor.store.schema import MIGRATIONS


def utc_iso(moment: datetime) -> str:
    """Sortable text form of an aware time: ISO 8601 in UTC."""
    return moment.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class LastReading:
    """A rule's most recent value and threshold (for ``status``)."""

    time: datetime
    value: Decimal
    threshold: Decimal


class Store(OutboxQueries):
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

    def observation_sources(self) -> tuple[str, str]:
        """The distinct price and share-count sources of the stored observations, as text."""
        row = self.conn.execute(
            "SELECT GROUP_CONCAT(DISTINCT source), GROUP_CONCAT(DISTINCT shares_source) "
            "FROM observations"
        ).fetchone()
        return (row[0] or "", row[1] or "")

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
