"""The daemon's ``Role`` on a shared PostgreSQL database: lead while holding the leadership
lease, follow otherwise, and back off while the server cannot be reached."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from monitor.errors import StoreError
from monitor.ports import RoleView
from monitor.store.leadership import DeliveryLease, Leadership, NotLeader

RETRY_CAP = 30.0  # seconds between reconnection attempts, at most


def timing(failover_after: float) -> tuple[float, float]:
    """(seconds between two lease checks, seconds of silence before a holder is ended) for a
    takeover within ``failover_after``: four checks per window, silence of half of it."""
    return max(0.05, min(5.0, failover_after / 4)), failover_after / 2


class SharedRole:
    """Leadership of one instance among several on one database (``ports.Role``)."""

    def __init__(
        self,
        leadership: Leadership,
        delivery: DeliveryLease | None = None,
        *,
        interval: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leadership = leadership
        self.delivery = delivery
        self.interval = interval
        self._monotonic = monotonic
        self._failures = 0
        self._retry_at = 0.0
        self._last = RoleView("follower", leadership.me, "", 0, None, shared=True)

    def check(self) -> RoleView:
        lead = self.leadership
        now = self._monotonic()
        if now < self._retry_at:
            return self._last
        try:
            leading = lead.try_acquire()
            if self.delivery is not None and self.delivery.held:
                self.delivery.try_acquire()  # its sign of life, even while no pass runs
            row = lead.current()
            if row is None:
                # the connection broke between the two calls: a follower until it is back
                raise StoreError("lost the connection to PostgreSQL")
        except StoreError as exc:
            self._failures += 1
            self._retry_at = now + min(self.interval * 2**self._failures, RETRY_CAP)
            self._last = RoleView(
                "follower", lead.me, "", self._last.epoch, None, shared=True, note=exc.what
            )
            return self._last
        self._failures = 0
        self._retry_at = 0.0
        role, leader = ("leader", lead.me) if leading else ("follower", row.holder)
        self._last = RoleView(role, lead.me, leader, row.epoch, row.since, shared=True)
        return self._last

    def lost(self, exc: BaseException) -> bool:
        if not isinstance(exc, (NotLeader, StoreError, psycopg.Error)):
            return False
        # give the lease up for real: holding it without being able to write would block
        # every other instance
        self.leadership.release()
        self._last = RoleView(
            "follower", self.leadership.me, "", self._last.epoch, None, shared=True
        )
        return True

    def release(self) -> None:
        self.leadership.release()
        if self.delivery is not None:
            self.delivery.release()
