"""The long-running service: lifecycle, signals and the scheduler.

Threads: the main thread waits for signals; APScheduler runs jobs on three single-thread
executors: ``default`` (polls, off-hours refresh, ranking, housekeeping, reload: they share
the engine, so they never overlap), ``delivery`` (the outbox, on its own database
connection, so a slow sink never delays a poll) and ``beat`` (the heartbeat behind the
systemd watchdog). The job bodies are in ``jobs``, the reload in ``reload``, what the daemon
reports about itself in ``telemetry``.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import requests
import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.daemon.digest import Valuer
from monitor.daemon.health import HealthServer, HealthState, parse_listen
from monitor.daemon.jobs import Jobs
from monitor.daemon.metrics import Metrics
from monitor.daemon.reload import Reload
from monitor.daemon.roles import RoleWatch, SoloRole
from monitor.daemon.sdnotify import SystemdNotifier, watchdog_interval
from monitor.daemon.status_page.api import page_for
from monitor.daemon.telemetry import Telemetry
from monitor.daemon.trading_calendar import PollPlanner, build_calendars
from monitor.errors import ConfigError
from monitor.ports import Clock, Dispatcher, ObservationSource, Role, RoleView, Store
from monitor.service import Engine
from monitor.settings import Settings

log = structlog.get_logger("mcap.daemon")

STOP_DEADLINE = 8.0  # seconds from SIGTERM to exit; systemd's default is 90, ours 10
DEFAULT_BEAT = 10.0  # heartbeat period without a systemd watchdog


class Wiring(Protocol):
    """Builds what a (re)loaded configuration needs (``bootstrap.DaemonWiring``)."""

    def source(
        self, settings: Settings, resume_after: Mapping[str, datetime]
    ) -> ObservationSource: ...

    def dispatcher(self, settings: Settings) -> Dispatcher: ...

    def status_store(self, settings: Settings) -> Store: ...


@dataclass
class Parts:
    """Everything rebuilt when the configuration is reloaded."""

    settings: Settings
    engine: Engine
    source: ObservationSource
    planner: PollPlanner
    dispatcher: Dispatcher
    valuer: Valuer


class Daemon(Jobs, Reload):
    """One ``mcap-monitor run`` process (built by ``bootstrap.build_daemon``).

    ``clock`` is the time the jobs act on (a fake one in tests); ``wall`` is the real time
    the scheduler, the heartbeat and /healthz run on.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        delivery_store: Store,
        *,
        wiring: Wiring,
        clock: Clock,
        wall: Clock,
        session: requests.Session,
        config_path: Path | None = None,
        notifier: SystemdNotifier | None = None,
        metrics: Metrics | None = None,
        source: ObservationSource | None = None,
        dispatcher: Dispatcher | None = None,
        rng: random.Random | None = None,
        role: Role | None = None,
    ) -> None:
        self.config_path = config_path
        self.exit_code = 0
        self.store = store
        self.delivery_store = delivery_store
        self.wiring = wiring
        self.clock = clock
        self.wall = wall
        self.session = session
        self.notifier = notifier or SystemdNotifier("")
        self.metrics = metrics or Metrics()
        self.rng = rng or random.Random()
        self.beat_interval = watchdog_interval() or DEFAULT_BEAT
        self.health = HealthState(
            [s.symbol for s in settings.symbols], heartbeat_max_age=3 * self.beat_interval + 5
        )
        self.parts = self._build(settings, source=source, dispatcher=dispatcher)
        self.scheduler: BackgroundScheduler | None = None
        self.health_server: HealthServer | None = None
        self._stop_requested = False
        self._reload_requested = False
        self._running: dict[str, float] = {}
        self._running_lock = threading.Lock()
        self._deliver_again = threading.Event()
        self._tape_done_logged = False
        self._stuck_logged = False
        self.telemetry = Telemetry(self.metrics, self.health, delivery_store)
        self.role: Role = role or SoloRole()
        solo = isinstance(self.role, SoloRole)
        self.roles = RoleWatch(
            self.metrics,
            self.health,
            self.role.check() if solo else RoleView("follower", "", "", 0, None, shared=True),
        )
        # the leader epoch the engine's state was read under (a takeover reads it again)
        self._state_epoch: int | None = self.roles.view.epoch if solo else None

    # -- composition ----------------------------------------------------------------------
    def _build(
        self,
        settings: Settings,
        previous: Parts | None = None,
        *,
        source: ObservationSource | None = None,
        dispatcher: Dispatcher | None = None,
    ) -> Parts:
        engine = Engine(settings, self.store)
        tape = settings.source.kind == "tape"
        exchanges = {s.symbol: ("ALWAYS" if tape else s.exchange) for s in settings.symbols}
        now = self.clock.now()
        if (
            previous is not None
            and previous.settings.source == settings.source
            and set(previous.planner.calendars) == set(exchanges.values())
        ):
            calendars = previous.planner.calendars
            taken = previous.planner.closes_taken
        else:
            calendars = build_calendars(exchanges.values(), now, always_open=tape)
            taken = {}
        planner = PollPlanner(
            calendars, exchanges, close_delay=settings.daemon.close_poll_delay, closes_taken=taken
        )
        if source is None:
            if previous is not None and previous.settings.source == settings.source:
                source = previous.source
            else:
                source = self.wiring.source(settings, engine.last_times)
        if dispatcher is None:
            if previous is not None and previous.settings.sinks == settings.sinks:
                dispatcher = previous.dispatcher
            else:
                dispatcher = self.wiring.dispatcher(settings)
                if previous is not None:
                    _close_later(previous.dispatcher)
        return Parts(settings, engine, source, planner, dispatcher, Valuer(settings))

    # -- the scheduler --------------------------------------------------------------------
    def _job(self, name: str, fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            if self._stop_requested:
                return
            with self._running_lock:
                self._running[name] = time.monotonic()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - a failing job is logged, never fatal
                if name in _STATE_JOBS and self.role.lost(exc):
                    # fenced out, or the database went away: a follower, never a crash loop
                    self._on_role(dataclass_replace(self.roles.view, role="follower", leader=""))
                    self.health.record_job(name, None)
                    return
                self.metrics.job_failures.labels(name).inc()
                self.health.record_job(name, f"{type(exc).__name__}: {exc}")
                log.error("job_failed", job=name, error=f"{type(exc).__name__}: {exc}")
            else:
                self.health.record_job(name, None)
            finally:
                with self._running_lock:
                    self._running.pop(name, None)

        return run

    def _aligned(self, interval: float) -> datetime:
        """The next multiple of ``interval`` plus this instance's offset (no herd at :00)."""
        jitter = min(self.settings.daemon.jitter, interval / 4)
        offset = self.rng.uniform(0, jitter) if jitter > 0 else 0.0
        now = self.wall.now().timestamp()
        start = (now // interval + 1) * interval + offset
        return datetime.fromtimestamp(start, UTC)

    def _trigger(self, interval: float) -> IntervalTrigger:
        return IntervalTrigger(seconds=interval, start_date=self._aligned(interval), timezone=UTC)

    def _schedule_intervals(self) -> None:
        sched = self.scheduler
        if sched is None:
            return
        d = self.settings.daemon
        for job_id, interval in (
            ("poll", d.poll_interval),
            ("offhours", d.offhours_interval),
            ("ranking", d.ranking_interval),
            ("deliver", d.dispatch_interval),
        ):
            job = sched.get_job(job_id)
            current = getattr(job.trigger, "interval", None) if job is not None else None
            if job is not None and current != timedelta(seconds=interval):
                sched.reschedule_job(job_id, trigger=self._trigger(interval))

    def _wall_time(self) -> float:
        return self.wall.now().timestamp()

    def start(self) -> None:
        """Bind health, start the scheduler and tell systemd we are ready."""
        health = self.settings.health
        if health.enabled:
            listen = parse_listen(health.listen)
            status, access = page_for(
                listen[0],
                lambda: self.settings,
                lambda: self.wiring.status_store(self.settings),
                self.health,
                self._wall_time,
            )
            try:
                self.health_server = HealthServer(
                    listen, self.health, self.metrics, self._wall_time, status=status, access=access
                )
            except OSError as exc:
                raise ConfigError(
                    f"cannot listen for /healthz: {exc.strerror}",
                    f"health.listen = {health.listen}",
                    "choose a free port or set [health] enabled = false",
                ) from None
            self.health_server.start()
        sched = BackgroundScheduler(
            executors={
                "default": ThreadPoolExecutor(1),
                "delivery": ThreadPoolExecutor(1),
                "beat": ThreadPoolExecutor(1),
                "lead": ThreadPoolExecutor(1),
            },
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self._on_role(self.role.check())  # the first instance up leads from its first poll
        d = self.settings.daemon
        now = self.wall.now()
        grace = max(1, int(d.poll_interval))
        jobs: list[tuple[str, Callable[[], object], float, str, datetime | None]] = [
            ("poll", self.poll, d.poll_interval, "default", now),
            ("offhours", self.offhours, d.offhours_interval, "default", None),
            ("ranking", self.ranking, d.ranking_interval, "default", None),
            ("housekeeping", self.housekeeping, 86400, "default", now + timedelta(seconds=60)),
            ("deliver", self.deliver, d.dispatch_interval, "delivery", now),
            ("heartbeat", self.heartbeat, self.beat_interval, "beat", now),
            ("lead", self.lead, self.role.interval, "lead", now),
        ]
        for job_id, fn, interval, executor, first in jobs:
            extra: dict[str, Any] = {} if first is None else {"next_run_time": first}
            # steady periods, not aligned: the watchdog's feed, the leader's sign of life
            beat = job_id in ("heartbeat", "lead")
            sched.add_job(
                self._job(job_id, fn),
                trigger=IntervalTrigger(seconds=interval) if beat else self._trigger(interval),
                id=job_id,
                name=job_id,
                executor=executor,
                misfire_grace_time=grace if job_id == "poll" else max(grace, int(interval)),
                **extra,
            )
        self.scheduler = sched
        sched.start()
        # a one-shot check on its own thread: a run-once APScheduler job races the scheduler's
        # own clean-up at shutdown (JobLookupError in the scheduler thread)
        threading.Thread(
            target=self._job("verify", self.verify), name="mcap-verify", daemon=True
        ).start()
        listen_at = self.health_server.address if self.health_server else None
        log.info(
            "daemon_started",
            pid=os.getpid(),
            symbols=len(self.settings.symbols),
            rules=len(self.settings.rules),
            source=self.settings.source.kind,
            health=f"{listen_at[0]}:{listen_at[1]}" if listen_at else None,
            watchdog_interval=self.beat_interval,
        )
        self.telemetry.update_status(self.settings)
        self.notifier.ready(self.telemetry.status)

    # -- signals and stopping -------------------------------------------------------------
    def install_signals(self) -> None:
        def on_stop(signum: int, frame: FrameType | None) -> None:
            self._stop_requested = True

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self._reload_requested = True

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT; return the exit code."""
        while not self._stop_requested:
            # Signal handlers only set flags: waking a Condition from a handler can deadlock.
            time.sleep(0.2)
            if self._reload_requested and not self._stop_requested:
                self._reload_requested = False
                assert self.scheduler is not None
                self.scheduler.add_job(
                    self._job("reload", self.reload),
                    id="reload",
                    executor="default",
                    replace_existing=True,
                    misfire_grace_time=None,
                )
        return self.stop()

    def stop(self) -> int:
        """Finish the running transaction, leave pending deliveries, and exit."""
        deadline = time.monotonic() + STOP_DEADLINE
        self._stop_requested = True
        self.notifier.stopping("stopping")
        log.info("daemon_stopping")
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        while time.monotonic() < deadline:
            with self._running_lock:
                busy = list(self._running)
            if not busy:
                break
            time.sleep(0.05)
        else:
            log.error("stop_timeout", jobs=busy, hint="exiting; the open transaction rolls back")
            self._close_servers()
            # Worker threads cannot be interrupted; nothing half-done survives a rollback.
            os._exit(0)
        self._close_servers()
        _close_later(self.parts.dispatcher)
        self.role.release()
        self.store.close()
        self.delivery_store.close()
        log.info("daemon_stopped")
        return self.exit_code

    def _close_servers(self) -> None:
        if self.health_server is not None:
            self.health_server.close()
            self.health_server = None
        self.notifier.close()


_STATE_JOBS = ("poll", "housekeeping", "offhours", "ranking")  # jobs that write the state


def _close_later(dispatcher: Dispatcher) -> None:
    """Close a dispatcher without waiting for a request it may have in flight."""
    threading.Thread(target=dispatcher.close, name="mcap-dispatcher-close", daemon=True).start()


def run_daemon(daemon: Daemon) -> int:
    """Serve until stopped; never linger past the stop deadline on a stuck request."""
    daemon.install_signals()
    daemon.start()
    code = daemon.serve()
    time.sleep(0.1)  # let the dispatcher's close finish if it can
    lingering = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if lingering:
        # A sink request still in flight: its row stays pending and is sent after restart.
        logging.shutdown()
        os._exit(code)
    return code
