"""Who polls: this instance alone (SQLite), or the leader among instances sharing one
PostgreSQL database (``store.ha.SharedRole``). The ``lead`` job checks the role on a thread of
its own; polls, housekeeping and digests run only while this instance leads."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from monitor.daemon.health import HealthState
from monitor.daemon.metrics import Metrics
from monitor.ports import RoleView
from monitor.store.values import instance_name

log = structlog.get_logger("mcap.daemon")


class SoloRole:
    """One instance on its own database: it always leads (``ports.Role``)."""

    interval = 3600.0

    def __init__(self) -> None:
        self.view = RoleView("leader", instance_name(), instance_name(), 0, datetime.now(UTC))

    def check(self) -> RoleView:
        return self.view

    def lost(self, exc: BaseException) -> bool:
        return False

    def release(self) -> None:
        return None


class RoleWatch:
    """Logs and counts role changes (once each), and publishes the role to health/metrics."""

    def __init__(self, metrics: Metrics, health: HealthState, first: RoleView) -> None:
        self.metrics = metrics
        self.health = health
        self.view = first
        self._unreachable = False
        self._publish(first)
        if first.leading:
            metrics.leader_changes.inc()

    def update(self, view: RoleView) -> bool:
        """Take ``view`` in; True when this instance just became the leader."""
        before = self.view
        self.view = view
        self._publish(view)
        if view.note and not self._unreachable:
            self._unreachable = True
            log.error("store_unreachable", error=view.note, hint="a follower until it is back")
        elif not view.note and self._unreachable:
            self._unreachable = False
            log.info("store_reconnected")
        if view.leading and not (before.leading and before.epoch == view.epoch):
            self.metrics.leader_changes.inc()
            log.info("leadership_acquired", me=view.me, epoch=view.epoch)
            return True
        if before.leading and not view.leading:
            self.metrics.leader_changes.inc()
            log.warning("leadership_lost", me=view.me, leader=view.leader or "?")
        elif not view.leading and view.leader != before.leader and view.leader:
            log.info("following", leader=view.leader, epoch=view.epoch)
        return False

    def _publish(self, view: RoleView) -> None:
        self.metrics.leader.set(1 if view.leading else 0)
        self.health.set_role(
            {
                "role": view.role,
                "instance": view.me,
                "leader": view.leader,
                "epoch": view.epoch,
                "leader_since": view.since.isoformat() if view.since else None,
            }
        )
