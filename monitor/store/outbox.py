"""Outbox queries: one delivery of one message to one sink, and its lifecycle."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


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


class OutboxQueries:
    """The outbox half of ``Store`` (same connection, same transactions)."""

    conn: sqlite3.Connection
    # a store for replayed history marks every alert it queues ``"mode": "replay"``
    replay_mark = False

    # -- outbox ---------------------------------------------------------------------------
    def enqueue(
        self, message_id: str, sink_id: str, kind: str, payload: dict[str, Any], now: float
    ) -> bool:
        """Add one delivery; a message already queued for that sink is not added twice."""
        if self.replay_mark:
            payload = payload | {"mode": "replay"}
        cur = self.conn.execute(
            "INSERT INTO outbox (message_id, sink_id, kind, payload, created_at, "
            "next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (message_id, sink_id) DO NOTHING",
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

    def outbox_pending_sinks(self) -> set[str]:
        """The sinks that have rows waiting."""
        return {
            str(r[0])
            for r in self.conn.execute(
                "SELECT DISTINCT sink_id FROM outbox WHERE status = 'pending'"
            )
        }

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
