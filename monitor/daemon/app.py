"""The long-running service: APScheduler jobs, signals, sd_notify, health and metrics.

Threads: the main thread waits for signals; APScheduler runs jobs on three single-thread
executors: ``default`` (polls, off-hours refresh, ranking, housekeeping, reload: they share
the engine, so they never overlap), ``delivery`` (the outbox, on its own database
connection, so a slow sink never delays a poll) and ``beat`` (the heartbeat behind the
systemd watchdog).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import requests
import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor import present
from monitor.core.valuation import Observation
from monitor.daemon.compose import build_dispatcher, build_source
from monitor.daemon.digest import SymbolView, Valuer, digest_payload
from monitor.daemon.health import HealthServer, HealthState, parse_listen
from monitor.daemon.metrics import Metrics
from monitor.daemon.sdnotify import SystemdNotifier, watchdog_interval
from monitor.daemon.trading_calendar import PollPlan, PollPlanner, Session, build_calendars
from monitor.errors import ConfigError, MonitorError
from monitor.ports import Clock, DeliveryStats, Dispatcher, ObservationSource, PollResult
from monitor.service import Engine
from monitor.settings import Settings, load_settings
from monitor.store import Store

log = structlog.get_logger("mcap.daemon")

STOP_DEADLINE = 8.0  # seconds from SIGTERM to exit; systemd's default is 90, ours 10
DEFAULT_BEAT = 10.0  # heartbeat period without a systemd watchdog


@dataclass
class Parts:
    """Everything rebuilt when the configuration is reloaded."""

    settings: Settings
    engine: Engine
    source: ObservationSource
    planner: PollPlanner
    dispatcher: Dispatcher
    valuer: Valuer


class Daemon:
    """One ``mcap-monitor run`` process."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        delivery_store: Store,
        *,
        config_path: Path | None = None,
        state_dir: Path | None = None,
        clock: Clock,
        session: requests.Session,
        notifier: SystemdNotifier | None = None,
        metrics: Metrics | None = None,
        source: ObservationSource | None = None,
        dispatcher: Dispatcher | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config_path = config_path
        self.state_dir = state_dir
        self.exit_code = 0
        self.store = store
        self.delivery_store = delivery_store
        self.clock = clock
        self.session = session
        self.notifier = notifier or SystemdNotifier("")
        self.metrics = metrics or Metrics()
        self.rng = rng or random.Random()
        self.beat_interval = watchdog_interval() or DEFAULT_BEAT
        self.health = HealthState(
            [s.symbol for s in settings.symbols], heartbeat_max_age=3 * self.beat_interval + 5
        )
        self.parts = self._build(settings, source, dispatcher)
        self.scheduler: BackgroundScheduler | None = None
        self.health_server: HealthServer | None = None
        self._stop = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._running: dict[str, float] = {}
        self._running_lock = threading.Lock()
        self._deliver_again = threading.Event()
        self._views: dict[str, SymbolView] = {}
        self._outbox_seen: dict[tuple[str, str], int] = {}
        self._status = ""
        self._tape_done_logged = False
        self._stuck_logged = False
        self._last_outbox = {"pending": 0, "delivered": 0, "dead": 0}
        self._init_delivery_counts()

    # -- composition ----------------------------------------------------------------------
    def _build(
        self,
        settings: Settings,
        source: ObservationSource | None = None,
        dispatcher: Dispatcher | None = None,
        previous: Parts | None = None,
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
                source = build_source(
                    settings, self.session, self.clock, engine.last_times, self.state_dir
                )
        if dispatcher is None:
            if previous is not None and previous.settings.sinks == settings.sinks:
                dispatcher = previous.dispatcher
            else:
                dispatcher = build_dispatcher(
                    settings, self.delivery_store, self.session, self.clock
                )
                if previous is not None:
                    _close_later(previous.dispatcher)
        return Parts(settings, engine, source, planner, dispatcher, Valuer(settings))

    @property
    def settings(self) -> Settings:
        return self.parts.settings

    # -- jobs -----------------------------------------------------------------------------
    def poll(self) -> PollPlan:
        """One poll tick: ask the calendar, fetch, evaluate, persist, enqueue, wake delivery."""
        parts = self.parts
        now = self.clock.now()
        t = now.timestamp()
        plan = parts.planner.plan(t)
        self.health.set_session(parts.planner.in_session(t))
        if not plan:
            return plan
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
        self._account(t, plan, result)
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
            self.wake_delivery()
        if result.observations:
            self._ping_heartbeat_url()
        if plan.closed_sessions:
            self._digest(plan.closed_sessions, t)
        if getattr(parts.source, "exhausted", False) and not self._tape_done_logged:
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

    def _account(self, t: float, plan: PollPlan, result: PollResult) -> None:
        m = self.metrics
        m.polls.labels("failed" if result.failures else "ok").inc()
        for failure in result.failures:
            m.source_errors.labels(failure.source, failure.kind).inc()
            log.warning(
                "source_failed",
                source=failure.source,
                subject=failure.subject,
                kind=failure.kind,
                error=failure.message,
            )
        for symbol in result.stale:
            m.stale_quotes.labels(symbol).inc()
            log.warning("quote_stale", symbol=symbol)
        for pair, why in result.blocked_pairs.items():
            log.warning("fx_blocked", pair=pair, reason=why)
        disagreements = getattr(self.parts.source, "fx_disagreement", None)
        if isinstance(disagreements, Mapping):
            for pair, ratio in disagreements.items():
                m.fx_disagreement.labels(str(pair)).set(float(ratio))
        gaps = getattr(self.parts.source, "shares_gap", None)
        if isinstance(gaps, Mapping):
            for symbol, ratio in gaps.items():
                m.shares_gap.labels(str(symbol)).set(float(ratio))
        self.health.record_poll(t, plan.symbols, result)
        states = self.parts.engine.states
        latest: dict[str, Observation] = {}
        for obs in result.observations:
            latest[obs.symbol] = obs
        for symbol, obs in latest.items():
            view = self.parts.valuer.view(obs, states)
            if view is None:
                continue
            self._views[symbol] = view
            m.last_success.labels(symbol).set(t)
            m.market_cap.labels(symbol, obs.currency).set(float(view.market_cap))
            for rule in view.rules:
                if rule.currency != obs.currency:
                    m.market_cap.labels(symbol, rule.currency).set(float(rule.value))
                m.threshold_distance.labels(rule.rule_id, symbol).set(float(rule.distance))
                if rule.position is not None:
                    m.rule_above.labels(rule.rule_id, symbol).set(rule.position == "above")
        self._update_status()

    def _update_status(self) -> None:
        settings = self.settings
        pending = self._last_outbox.get("pending", 0)
        rules = len(settings.rules)
        if len(settings.symbols) == 1:
            symbol = settings.symbols[0].symbol
            view = self._views.get(symbol)
            cap = (
                present.money_short(view.market_cap, view.observation.currency)
                if view is not None
                else "no quote yet"
            )
            head = f"{symbol} {cap}"
        else:
            head = f"{len(self._views)}/{len(settings.symbols)} symbols quoted"
        self._status = f"{head}, {rules} rule{'s' if rules != 1 else ''}, {pending} pending"
        self.health.set_summary(self._status)

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
        for code, session in closed.items():
            members = [s.symbol for s in settings.symbols if s.exchange == code]
            # only symbols quoted in this session: an older quote is not this day's close
            views = [
                view
                for s in members
                if (view := self._views.get(s)) is not None
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
            if not _digest_supported():
                log.warning(
                    "digest_unsupported", hint="the installed notify stack cannot render it"
                )
                continue
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
        self._account_deliveries()
        return total

    def _init_delivery_counts(self) -> None:
        self._outbox_seen = self._outbox_by_sink()
        self._last_outbox = self.delivery_store.outbox_counts()
        self.metrics.set_outbox(self._last_outbox)
        self.health.set_outbox(self._last_outbox)

    def _outbox_by_sink(self) -> dict[tuple[str, str], int]:
        return self.delivery_store.outbox_counts_by_sink()

    def _account_deliveries(self) -> None:
        now = self._outbox_by_sink()
        sinks = {sink for sink, _ in now}
        for sink in sinks:
            delta = {
                k: now.get((sink, k), 0) - self._outbox_seen.get((sink, k), 0)
                for k in ("delivered", "dead", "attempts")
            }
            done = max(delta["delivered"], 0)
            dead = max(delta["dead"], 0)
            failed = max(delta["attempts"] - done - dead, 0)
            for outcome, n in (("delivered", done), ("dead", dead), ("failed", failed)):
                if n:
                    self.metrics.deliveries.labels(sink, outcome).inc(n)
        self._outbox_seen = now
        counts = {"pending": 0, "delivered": 0, "dead": 0}
        for (_, status), n in now.items():
            if status in counts:
                counts[status] += n
        self._last_outbox = counts
        self.metrics.set_outbox(counts)
        self.health.set_outbox(counts)

    def wake_delivery(self) -> None:
        """Run the dispatcher now (or right after its current pass)."""
        self._deliver_again.set()
        if self.scheduler is not None and self.scheduler.running:
            # shutting down: the outbox keeps the rows for the next start
            with contextlib.suppress(JobLookupError):
                self.scheduler.modify_job("deliver", next_run_time=datetime.now(UTC))

    def verify(self) -> None:
        """Start-up check of live symbols; an unknown symbol stops the daemon (exit 2)."""
        check = getattr(self.parts.source, "verify_symbols", None)
        if not callable(check):
            return
        try:
            check(self.clock.now())
        except ConfigError as exc:
            log.error("config_invalid", error=exc.one_line())
            self.exit_code = exc.exit_code
            self._stop_requested = True
        except MonitorError as exc:
            log.warning("symbol_check_skipped", error=exc.one_line())

    def offhours(self) -> None:
        """Outside sessions: let live sources refresh FX and share counts."""
        parts = self.parts
        if parts.planner.in_session(self.clock.now().timestamp()):
            return
        hook = getattr(parts.source, "refresh_offhours", None)
        if callable(hook):
            hook(self.clock.now())

    def ranking(self) -> None:
        hook = getattr(self.parts.source, "refresh_ranking", None)
        if callable(hook):
            hook(self.clock.now())

    def housekeeping(self) -> None:
        """Drop observations past retention; extend the calendars before they run out."""
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
        now = time.time()
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
        self.notifier.send("WATCHDOG=1", f"STATUS={self._status}")

    def _stuck_jobs(self, mono: float) -> list[str]:
        interval = self.settings.daemon.poll_interval
        limits = {"poll": max(600.0, 10 * interval), "deliver": 1800.0}
        with self._running_lock:
            return [
                name
                for name, started in self._running.items()
                if mono - started > limits.get(name, 3600.0)
            ]

    def reload(self) -> bool:
        """Re-read and re-validate the config; keep the old one if the new one is bad."""
        self.notifier.reloading()
        try:
            if self.config_path is None:
                raise ConfigError("no config file to reload", "", "start with --config")
            settings, _ = load_settings(self.config_path)
            self._check_reloadable(settings)
            parts = self._build(settings, previous=self.parts)
        except ConfigError as exc:
            log.error("config_reload_rejected", error=exc.one_line(), kept="previous config")
            self.notifier.ready(self._status)
            return False
        self.parts = parts
        self.health.set_symbols(s.symbol for s in settings.symbols)
        self._views = {
            k: v for k, v in self._views.items() if k in {s.symbol for s in settings.symbols}
        }
        self._schedule_intervals()
        self._update_status()
        log.info("config_reloaded", path=str(self.config_path))
        self.notifier.ready(self._status)
        return True

    def _check_reloadable(self, new: Settings) -> None:
        old = self.settings
        for key in ("health", "state_db"):
            if getattr(old, key) != getattr(new, key):
                log.warning("config_change_needs_restart", key=key)
        if old.daemon.state_dir != new.daemon.state_dir:
            log.warning("config_change_needs_restart", key="daemon.state_dir")

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
        now = time.time()
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

    def start(self) -> None:
        """Bind health, start the scheduler and tell systemd we are ready."""
        health = self.settings.health
        if health.enabled:
            listen = parse_listen(health.listen)
            try:
                self.health_server = HealthServer(listen, self.health, self.metrics, time.time)
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
            },
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        d = self.settings.daemon
        now = datetime.now(UTC)
        grace = max(1, int(d.poll_interval))
        jobs: list[tuple[str, Callable[[], object], float, str, datetime | None]] = [
            ("poll", self.poll, d.poll_interval, "default", now),
            ("offhours", self.offhours, d.offhours_interval, "default", None),
            ("ranking", self.ranking, d.ranking_interval, "default", None),
            ("housekeeping", self.housekeeping, 86400, "default", now + timedelta(seconds=60)),
            ("deliver", self.deliver, d.dispatch_interval, "delivery", now),
            ("heartbeat", self.heartbeat, self.beat_interval, "beat", now),
        ]
        for job_id, fn, interval, executor, first in jobs:
            extra: dict[str, Any] = {} if first is None else {"next_run_time": first}
            beat = job_id == "heartbeat"  # steady period, not aligned: it feeds the watchdog
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
        self._update_status()
        self.notifier.ready(self._status)

    def request_stop(self, *_: object) -> None:
        self._stop_requested = True

    def request_reload(self, *_: object) -> None:
        self._reload_requested = True

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
        self.store.close()
        self.delivery_store.close()
        log.info("daemon_stopped")
        return self.exit_code

    def _close_servers(self) -> None:
        if self.health_server is not None:
            self.health_server.close()
            self.health_server = None
        self.notifier.close()


def _digest_supported() -> bool:
    try:
        from monitor.notify import templates
    except ImportError:
        return False
    return hasattr(templates, "make_digest_message")


def _close_later(dispatcher: object) -> None:
    """Close a dispatcher without waiting for a request it may have in flight."""
    close = getattr(dispatcher, "close", None)
    if callable(close):
        threading.Thread(target=close, name="mcap-dispatcher-close", daemon=True).start()


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
