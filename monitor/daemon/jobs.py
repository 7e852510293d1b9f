"""The daemon's periodic jobs: poll, deliver, the daily digest, housekeeping, heartbeat, and
the source's own hooks (start-up check, off-hours refresh, ranking refresh)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import requests
import structlog
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from monitor.daemon.digest import digest_payload
from monitor.daemon.health import HealthState
from monitor.daemon.metrics import Metrics
from monitor.daemon.sdnotify import SystemdNotifier
from monitor.daemon.telemetry import Telemetry
from monitor.daemon.trading_calendar import PollPlan, Session, build_calendars
from monitor.errors import ConfigError, MonitorError
from monitor.ports import Clock, DeliveryStats, Role, RoleView, Store
from monitor.service import Engine
from monitor.settings import Settings

if TYPE_CHECKING:
    from monitor.daemon.app import Parts, Wiring
    from monitor.daemon.roles import RoleWatch

log = structlog.get_logger("mcap.daemon")


class Jobs:
    """The job bodies; ``Daemon`` provides the state they work on."""

    parts: Parts
    store: Store
    clock: Clock
    wall: Clock
    session: requests.Session
    notifier: SystemdNotifier
    metrics: Metrics
    health: HealthState
    telemetry: Telemetry
    scheduler: BackgroundScheduler | None
    beat_interval: float
    exit_code: int
    _stop_requested: bool
    _deliver_again: threading.Event
    _running: dict[str, float]
    _running_lock: threading.Lock
    _tape_done_logged: bool
    _stuck_logged: bool
    role: Role
    roles: RoleWatch
    wiring: Wiring
    _state_epoch: int | None

    @property
    def settings(self) -> Settings:
        return self.parts.settings

    # -- leadership -----------------------------------------------------------------------
    def lead(self) -> RoleView:
        """Take or keep leadership (the leader's sign of life); publish what this instance is."""
        view = self.role.check()
        self._on_role(view)
        return view

    def _on_role(self, view: RoleView) -> None:
        before = self.roles.view
        self.roles.update(view)
        if (view.leading, view.leader, view.note) != (before.leading, before.leader, before.note):
            self.telemetry.role = view.describe() if view.shared else ""
            self.telemetry.update_status(self.settings)
            self.notifier.status(self.telemetry.status)

    def _leading(self) -> bool:
        """Whether this instance leads; after a takeover, the state is read again first (the
        previous leader moved it on)."""
        view = self.roles.view
        if not view.leading:
            return False
        if self._state_epoch != view.epoch:
            parts = self.parts
            engine = Engine(parts.settings, self.store)
            source = self.wiring.source(parts.settings, engine.last_times)
            self.parts = replace(parts, engine=engine, source=source)
            self._state_epoch = view.epoch
            log.info("state_loaded", epoch=view.epoch, rules=len(engine.states))
        return True

    def poll(self) -> PollPlan:
        """One poll tick: ask the calendar, fetch, evaluate, persist, enqueue, wake delivery."""
        now = self.clock.now()
        t = now.timestamp()
        parts = self.parts
        plan = parts.planner.plan(t)
        self.health.set_session(parts.planner.in_session(t))
        if not plan or not self._leading():
            return plan
        parts = self.parts
        started = time.perf_counter()
        try:
            result = parts.source.poll(plan.symbols, now)
            batch = parts.engine.process(result.observations, t)
        except Exception as exc:
            self.metrics.polls.labels("error").inc()
            self.health.record_poll_error(t, plan.symbols, f"{type(exc).__name__}: {exc}")
            raise
        elapsed = time.perf_counter() - started
        self.metrics.poll_duration.observe(elapsed)
        self.telemetry.account_poll(
            t,
            plan.symbols,
            result,
            parts.source.gauges(),
            parts.engine.states,
            parts.valuer,
            parts.settings,
        )
        # systemctl status shows the new figure now, not at the next watchdog heartbeat.
        self.notifier.status(self.telemetry.status)
        for event in batch.events:
            self.metrics.events.labels(event.kind).inc()
            log.info(
                "rule_event",
                kind=event.kind,
                symbol=event.symbol,
                rule=event.rule_id,
                value=str(event.value),
                threshold=str(event.threshold),
                currency=event.currency,
                event_id=event.id,
            )
        if batch.enqueued:
            self.telemetry.account_events(t, batch.events)
            self.wake_delivery()
        if result.observations:
            self._ping_heartbeat_url()
        if plan.closed_sessions:
            self._digest(plan.closed_sessions, t)
        if parts.source.exhausted and not self._tape_done_logged:
            self._tape_done_logged = True
            log.info("tape_exhausted", hint="the daemon keeps running; stop it with SIGTERM")
        log.debug(
            "poll_done",
            symbols=len(plan.symbols),
            observations=batch.observations,
            events=len(batch.events),
            seconds=round(elapsed, 4),
        )
        return plan

    def _ping_heartbeat_url(self) -> None:
        url = self.settings.daemon.heartbeat_url
        if url is None:
            return
        try:
            resp = self.session.get(
                url.get_secret_value(),
                timeout=self.settings.daemon.heartbeat_timeout,
                allow_redirects=False,
            )
            ok = resp.status_code < 400
            resp.close()
        except requests.RequestException as exc:
            # The URL is a secret (it authenticates the ping): log the error type only.
            log.warning("heartbeat_ping_failed", error=type(exc).__name__)
            self.metrics.heartbeat_pings.labels("failed").inc()
            return
        self.metrics.heartbeat_pings.labels("ok" if ok else "failed").inc()
        if not ok:
            log.warning("heartbeat_ping_failed", status=resp.status_code)

    def _digest(self, closed: Mapping[str, Session], now: float) -> None:
        settings = self.settings
        sinks = [s for s in settings.sinks if s.digest]
        if not sinks:
            return
        views_by_symbol = self.telemetry.views
        for code, session in closed.items():
            members = [s.symbol for s in settings.symbols if s.exchange == code]
            # only symbols quoted in this session: an older quote is not this day's close
            views = [
                view
                for s in members
                if (view := views_by_symbol.get(s)) is not None
                and view.observation.time.timestamp() >= session.open
            ]
            if not views:
                log.warning("digest_skipped", exchange=code, day=session.day.isoformat())
                continue
            # the previous close comes from the db, so it survives a restart
            opened = datetime.fromtimestamp(session.open, UTC)
            previous = {
                view.observation.symbol: price
                for view in views
                if (price := self.store.last_price_before(view.observation.symbol, opened))
                is not None
            }
            payload = digest_payload(session.day, views, previous)
            with self.store.transaction():
                queued = sum(
                    self.store.enqueue(str(payload["id"]), sink.id, "digest", payload, now)
                    for sink in sinks
                )
            log.info("digest_enqueued", exchange=code, day=session.day.isoformat(), sinks=queued)
            if queued:
                self.wake_delivery()

    def deliver(self) -> DeliveryStats:
        """Send what is due; loop while woken or while a pass made progress."""
        total = DeliveryStats()
        while not self._stop_requested:
            self._deliver_again.clear()
            stats = self.parts.dispatcher.deliver_due(self.clock.now().timestamp())
            total = DeliveryStats(
                total.delivered + stats.delivered,
                total.failed + stats.failed,
                total.dead + stats.dead,
                stats.pending,
            )
            if not (stats.delivered or self._deliver_again.is_set()):
                break
        self.telemetry.account_deliveries()
        return total

    def wake_delivery(self) -> None:
        """Run the dispatcher now (or right after its current pass)."""
        self._deliver_again.set()
        if self.scheduler is not None and self.scheduler.running:
            # shutting down: the outbox keeps the rows for the next start
            with contextlib.suppress(JobLookupError):
                self.scheduler.modify_job("deliver", next_run_time=self.wall.now())

    def verify(self) -> None:
        """Start-up check of live symbols; an unknown symbol stops the daemon (exit 2)."""
        try:
            self.parts.source.verify_symbols(self.clock.now())
        except ConfigError as exc:
            log.error("config_invalid", error=exc.one_line())
            self.exit_code = exc.exit_code
            self._stop_requested = True
        except MonitorError as exc:
            log.warning("symbol_check_skipped", error=exc.one_line())

    def offhours(self) -> None:
        """Outside sessions: let live sources refresh FX and share counts."""
        parts = self.parts
        if parts.planner.in_session(self.clock.now().timestamp()) or not self._leading():
            return
        parts.source.refresh_offhours(self.clock.now())

    def ranking(self) -> None:
        if self._leading():
            self.parts.source.refresh_ranking(self.clock.now())

    def housekeeping(self) -> None:
        """Drop observations past retention; extend the calendars before they run out."""
        if not self._leading():
            return
        now = self.clock.now()
        cutoff = now - timedelta(days=self.settings.daemon.retention_days)
        with self.store.transaction():
            pruned = self.store.prune_observations(cutoff)
        log.info("housekeeping_done", pruned_observations=pruned)
        planner = self.parts.planner
        horizon = now.timestamp() + 30 * 86400
        if any(c.covers_until < horizon for c in planner.calendars.values()):
            planner.calendars = build_calendars(planner.calendars, now)
            log.info("calendars_extended", exchanges=sorted(planner.calendars))

    def heartbeat(self) -> None:
        """Proof the scheduler runs: health, metrics and the systemd watchdog."""
        now = self.wall.now().timestamp()
        stuck = self._stuck_jobs(time.monotonic())
        self.health.heartbeat(now)
        self.metrics.heartbeat.set(now)
        if stuck:
            # Withholding WATCHDOG=1 lets systemd restart a daemon whose poll hangs.
            if not self._stuck_logged:
                log.error("job_stuck", jobs=stuck)
                self._stuck_logged = True
            return
        self._stuck_logged = False
        self.notifier.send("WATCHDOG=1", f"STATUS={self.telemetry.status}")

    def _stuck_jobs(self, mono: float) -> list[str]:
        interval = self.settings.daemon.poll_interval
        limits = {"poll": max(600.0, 10 * interval), "deliver": 1800.0}
        with self._running_lock:
            return [
                name
                for name, started in self._running.items()
                if mono - started > limits.get(name, 3600.0)
            ]
