"""The composition root: the only place that constructs adapters.

Every command and the daemon get their clock, HTTP sessions, sources, stores, sinks,
dispatcher and engine from here, built from the frozen settings. Heavy adapters (yfinance,
APScheduler, the delivery stack) are imported inside the functions that build them, so a
command pays only for what it uses; mypy still sees every edge.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from monitor import __version__
from monitor.clock import SystemClock
from monitor.errors import ConfigError
from monitor.ports import BatchQuoteSource, Clock, Dispatcher, ObservationSource
from monitor.settings import Settings, StoreConfig, load_settings
from monitor.store import Store
from monitor.store.location import DB_NAME as DB_NAME
from monitor.store.location import check_state_dir as check_state_dir
from monitor.store.location import state_db_path as state_db_path
from monitor.store.location import state_dir as state_dir

if TYPE_CHECKING:
    import requests

    from monitor.daemon.app import Daemon
    from monitor.daemon.metrics import Metrics
    from monitor.daemon.sdnotify import SystemdNotifier
    from monitor.notify.backoff import Backoff
    from monitor.notify.flush import TestResult
    from monitor.notify.outbox import OutboxDispatcher
    from monitor.notify.secrets import Redactor
    from monitor.ports import Sink
    from monitor.sources import ranking as rk
    from monitor.sources.live import LiveSource
    from monitor.sources.yahoo import YahooChart
    from monitor.store.ha import SharedRole
    from monitor.store.leadership import DeliveryLease, Leadership
    from monitor.store.postgres import PgStore

BUNDLED_TAPE = Path(__file__).parent / "data" / "xiaomi_2025-01-20_2025-03-10.csv"


# -- settings and state ------------------------------------------------------------------------
def settings_from(config: Path | None) -> Settings:
    """Load and validate the configuration (``ConfigError`` on any problem)."""
    settings, _ = load_settings(config)
    return settings


def clock() -> Clock:
    """The real clock."""
    return SystemClock()


def open_store(
    settings: Settings, explicit: Path | None, *, read_only: bool = False, existing: bool = False
) -> Store:
    """``read_only``: an existing db, nothing created (a ``ConfigError`` naming the daemon's);
    ``existing``: the same check, then opened for writing (``outbox retry``/``flush``).
    With ``[store] url = "postgresql://..."`` (and no ``--state-db``): that database."""
    if explicit is None and settings.store.postgres_url is not None:
        return pg_store(settings)
    path = state_db_path(settings, explicit)
    if read_only or existing:
        store = Store.open_read_only(path, daemon_db=state_db_path(settings, None))
        if read_only:
            return store
        store.close()
    return Store.open(path)


def store_at(config: StoreConfig, *, read_only: bool = False) -> Store:
    """The store at a url of its own (``store copy``): SQLite read-only or created, or
    PostgreSQL (password from the url, ``PG*`` variables or ``~/.pgpass``)."""
    url = config.postgres_url
    if url is not None:
        _need_psycopg()
        from monitor.store.postgres import PgStore

        return PgStore.connect(url)
    path = config.sqlite_path
    assert path is not None
    return Store.open_read_only(path) if read_only else Store.open(path)


def pg_password(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    """The PostgreSQL password from ``[store] password_credential``, if set (else the url's,
    ``PGPASSWORD`` or ``~/.pgpass``, as libpq finds them)."""
    import os

    from monitor.notify.secrets import read_credential

    name = settings.store.password_credential
    if name is None:
        return None
    return read_credential(
        name, "store.password_credential", os.environ if environ is None else environ
    )


def _need_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigError(
            "a postgresql:// store needs psycopg 3, which is not installed",
            "store.url",
            "pip install 'mcap-monitor[postgres]'",
        ) from None


def pg_store(settings: Settings, fence: Leadership | None = None) -> PgStore:
    """A connection to the ``[store] url`` database, fenced by ``fence`` when given."""
    _need_psycopg()
    from monitor.store.postgres import PgStore

    url = settings.store.postgres_url
    assert url is not None
    return PgStore.connect(url, fence, password=pg_password(settings))


def failover_after(settings: Settings) -> float:
    """``[store] failover_after``, else 2 poll intervals; never under one second."""
    configured = settings.store.failover_after
    return max(1.0, configured if configured is not None else 2 * settings.daemon.poll_interval)


def shared_role(settings: Settings) -> SharedRole:
    """Leadership (and the delivery lease) among the instances on the ``[store] url`` db."""
    _need_psycopg()
    from monitor.store.ha import SharedRole, timing
    from monitor.store.leadership import DeliveryLease, Leadership

    url = settings.store.postgres_url
    assert url is not None
    password = pg_password(settings)
    interval, silent = timing(failover_after(settings))
    return SharedRole(
        Leadership(url, stale_after=silent, password=password),
        DeliveryLease(url, stale_after=silent, password=password),
        interval=interval,
    )


def http_session(purpose: str = "daemon") -> requests.Session:
    """A ``requests.Session`` naming the program in its User-Agent."""
    import requests

    session = requests.Session()
    session.headers["User-Agent"] = f"mcap-monitor/{__version__} (+{purpose})"
    return session


# -- sources -----------------------------------------------------------------------------------
def yahoo_chart(
    settings: Settings, *, timeout: float | None = None, session: object = None
) -> YahooChart:
    """A Yahoo chart client on its own curl session (or ``session``, a test's fake)."""
    from monitor.sources.yahoo import YahooChart, YahooSession

    src = settings.source
    timeout = timeout or src.timeout
    yahoo = session or YahooSession(timeout=timeout, base_url=src.yahoo_base_url)
    return YahooChart(
        yahoo, timeout=timeout, timezones={s.symbol: s.timezone for s in settings.symbols}
    )


def live_source(
    settings: Settings,
    *,
    session: requests.Session | None = None,
    yahoo_session: object = None,
    state_dir: Path | None = None,
    universe_cap: rk.CapLookup | None = None,
    universe_session: object = None,
    check_shares: bool = True,
    timeout: float | None = None,
    last_prices: Mapping[str, Decimal] | None = None,
) -> LiveSource:
    """Yahoo quotes, FX checked against the ECB, the ranking: the live ``ObservationSource``.

    ``yahoo_session``/``universe_session`` replace the curl sessions (the tests' one seam);
    ``state_dir`` holds yfinance's and the ranking's caches.
    """
    from monitor.sources import ranking as rk
    from monitor.sources.ecb import EcbSource
    from monitor.sources.live import LiveSource
    from monitor.sources.yahoo import YahooChart, YahooSession, configure_yfinance

    src = settings.source
    timeout = timeout or src.timeout
    cache_dir = src.cache_dir or (state_dir / "yfinance" if state_dir else None)
    configure_yfinance(cache_dir)
    if session is None:
        import requests

        session = requests.Session()
    http = session
    fx = settings.fx
    ecb = EcbSource(
        http, fx.ecb_base_url, timeout=timeout, refresh=timedelta(seconds=fx.ecb_refresh)
    )
    rcfg = settings.ranking
    cmc = rk.CompaniesMarketCap(
        http,
        rcfg.base_url,
        cache_file=rcfg.cache_file or (state_dir / "companiesmarketcap.csv" if state_dir else None),
        refresh=timedelta(hours=float(rcfg.refresh_hours)),
        timeout=timeout,
        user_agent=rcfg.user_agent or rk.USER_AGENT,
    )

    def universe_chart() -> YahooChart:
        # a new session per refresh: curl sessions are not shared across threads
        yahoo = universe_session or YahooSession(timeout=src.timeout, base_url=src.yahoo_base_url)
        return YahooChart(yahoo, timeout=src.timeout)

    return LiveSource(
        settings,
        chart=yahoo_chart(settings, timeout=timeout, session=yahoo_session),
        ecb=ecb,
        ranking=cmc,
        universe_chart=universe_chart,
        universe_cap=universe_cap,
        check_shares=check_shares,
        realtime=realtime_sources(settings, http, timeout),
        last_prices=last_prices,
    )


def realtime_sources(
    settings: Settings, session: requests.Session, timeout: float
) -> dict[str, BatchQuoteSource]:
    """The configured real-time HK quote sources (Tencent, Sina), each capped at ``timeout``."""
    from monitor.sources.sina import SinaQuotes
    from monitor.sources.tencent import TencentQuotes

    src = settings.source
    out: dict[str, BatchQuoteSource] = {}
    if "tencent" in src.quotes:
        out["tencent"] = TencentQuotes(
            session, src.tencent_base_url, timeout=min(timeout, src.tencent_timeout or timeout)
        )
    if "sina" in src.quotes:
        out["sina"] = SinaQuotes(
            session, src.sina_base_url, timeout=min(timeout, src.sina_timeout or timeout)
        )
    return out


def observation_source(
    settings: Settings,
    resume_after: Mapping[str, datetime],
    state_dir: Path | None = None,
    session: requests.Session | None = None,
    last_prices: Mapping[str, Decimal] | None = None,
) -> ObservationSource:
    """The tape (``source.kind = "tape"``) or the live sources; ``last_prices`` (the db's)
    seed the spike check."""
    from monitor.sources.tape_source import TapeSource

    cfg = settings.source
    if cfg.kind == "tape":
        assert cfg.path is not None
        if not cfg.path.is_file():
            raise ConfigError(
                "tape not found", f"source.path = {cfg.path}", "check the path of the CSV tape"
            )
        jumps = {s.symbol: s.max_jump for s in settings.symbols}  # live quality checks
        checks = jumps if cfg.tape_quality_checks else None
        return TapeSource(cfg.path, cfg.speed, resume_after, checks, last_prices)
    return live_source(settings, session=session, state_dir=state_dir, last_prices=last_prices)


# -- delivery ----------------------------------------------------------------------------------
def sinks(
    settings: Settings,
    redactor: Redactor,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> dict[str, Sink]:
    """Every configured sink by id (``ConfigError`` for a missing or unreadable secret)."""
    from monitor.notify.sinks.registry import build_sinks

    return build_sinks(settings, redactor, environ=environ, out=out)


def dispatcher(
    settings: Settings,
    store: Store,
    session: requests.Session,
    clock: Clock,
    *,
    backoff: Backoff | None = None,
    max_age: float | None = None,
    rng: random.Random | None = None,
    pass_timeout: float | None = 1.0,
    batch: int = 100,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    redactor: Redactor | None = None,
    lease: DeliveryLease | None = None,
) -> OutboxDispatcher:
    """The outbox dispatcher over the configured sinks.

    A file-backed ``store`` is opened a second time, so the dispatcher's writes never join a
    transaction of the caller's connection, and only one process delivers from a db file.
    On PostgreSQL only the holder of the delivery lease (``lease``, or a new one) sends.
    """
    from monitor.notify.dblock import DeliveryLock
    from monitor.notify.outbox import OutboxDispatcher
    from monitor.notify.secrets import Redactor

    redact = redactor or Redactor()
    built = sinks(settings, redact, environ=environ, out=out)
    own = store.path is not None
    lock: DeliveryLock | DeliveryLease | None = None
    if store.path is not None:
        lock = DeliveryLock(store.path)
    elif lease is not None:
        lock = lease
    elif settings.store.postgres_url is not None:
        from monitor.store.leadership import DeliveryLease
        from monitor.store.postgres import PgStore

        if isinstance(store, PgStore):
            lock = DeliveryLease(store.url, password=pg_password(settings))
    return OutboxDispatcher(
        settings,
        Store.open(store.path) if store.path is not None else store,
        session,
        clock,
        sinks=built,
        redactor=redact,
        lock=lock,
        own_store=own,
        backoff=backoff,
        max_age=max_age,
        rng=rng,
        pass_timeout=pass_timeout,
        batch=batch,
    )


def deliver_now(
    settings: Settings,
    store: Store,
    *,
    wait: float | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Clock | None = None,
    log_level: str | None = None,
) -> int:
    """Deliver what is pending now, retrying transient failures for up to ``wait`` seconds
    (default ``$MCAP_NOTIFY_WAIT`` or 30); a one-line summary on stderr; 0 when nothing is
    left pending, else 1 (``outbox flush``, ``replay --notify``). ``log_level``: the
    command's ``--log-level``."""
    import sys

    from monitor.daemon.logs import ensure_cli_logging
    from monitor.notify.backoff import CLI_SCHEDULE, Backoff
    from monitor.notify.flush import default_wait, flush, flush_summary

    ensure_cli_logging(log_level or "info")
    with (
        http_session("delivery") as session,
        dispatcher(
            settings,
            store,
            session,
            clock or SystemClock(),
            backoff=Backoff(CLI_SCHEDULE, jitter=0.1),
            pass_timeout=None,
            out=out,
        ) as built,
    ):
        code = flush(built, default_wait() if wait is None else wait)
        line = flush_summary(built)
    print(line, file=err or sys.stderr)
    return code


def test_alerts(
    settings: Settings,
    sink_ids: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> list[TestResult]:
    """Send a marked test message to each sink (all, or ``sink_ids``) and report each."""
    from monitor.notify.flush import send_test_alerts, wanted_sinks
    from monitor.notify.secrets import Redactor
    from monitor.notify.sinks.registry import build_sink

    known = {s.id: s for s in settings.sinks}
    redact = Redactor()
    built: dict[str, Sink | ConfigError] = {}
    for sid in wanted_sinks(settings.sinks, sink_ids):
        try:
            built[sid] = build_sink(known[sid], redact, environ=environ, out=out)
        except ConfigError as exc:
            built[sid] = exc
    with http_session("test-alert") as session:
        return send_test_alerts(built, session, SystemClock(), redact)


# -- the daemon --------------------------------------------------------------------------------
class DaemonWiring:
    """What the daemon rebuilds from new settings on reload: its source and its dispatcher."""

    def __init__(
        self,
        session: requests.Session,
        clock: Clock,
        state_dir: Path | None,
        store: Store,
        lease: DeliveryLease | None = None,
    ) -> None:
        self.session = session
        self.clock = clock
        self.state_dir = state_dir
        self.store = store  # the delivery connection
        self.lease = lease  # on a shared db: the delivery lease the role keeps alive

    def source(self, settings: Settings, resume_after: Mapping[str, datetime]) -> ObservationSource:
        prices = self.store.last_prices()
        return observation_source(settings, resume_after, self.state_dir, self.session, prices)

    def dispatcher(self, settings: Settings) -> Dispatcher:
        return dispatcher(settings, self.store, self.session, self.clock, lease=self.lease)

    def status_store(self, settings: Settings) -> Store:
        """A read-only connection of its own, for the status page (never the poll's)."""
        return open_store(settings, None, read_only=True)


def build_daemon(
    settings: Settings,
    store: Store,
    delivery_store: Store,
    *,
    clock: Clock,
    session: requests.Session,
    config_path: Path | None = None,
    state_dir: Path | None = None,
    notifier: SystemdNotifier | None = None,
    metrics: Metrics | None = None,
    source: ObservationSource | None = None,
    dispatcher: Dispatcher | None = None,
    rng: random.Random | None = None,
    role: SharedRole | None = None,
) -> Daemon:
    """A daemon over two connections to one db (polls and delivery never share one);
    ``role``: leadership among the instances sharing a PostgreSQL db."""
    from monitor.daemon.app import Daemon

    lease = role.delivery if role is not None else None
    return Daemon(
        settings,
        store,
        delivery_store,
        wiring=DaemonWiring(session, clock, state_dir, delivery_store, lease),
        config_path=config_path,
        clock=clock,
        wall=SystemClock(),
        session=session,
        notifier=notifier,
        metrics=metrics,
        source=source,
        dispatcher=dispatcher,
        rng=rng,
        role=role,
    )


def run_service(config: Path | None, state_db: Path | None) -> int:
    """``mcap-monitor run``: the daemon under systemd (or a terminal) until SIGTERM."""
    from monitor.daemon import run_daemon
    from monitor.daemon.sdnotify import SystemdNotifier
    from monitor.store.replay import ReplayStore

    settings, path = load_settings(config)
    tape = settings.source.kind == "tape"
    if state_db is None and settings.store.postgres_url is not None:
        # several instances on one database: the leader polls, any one delivers
        role = shared_role(settings)
        store, delivery = pg_store(settings, role.leadership), pg_store(settings)
        # a tape is recorded history: its alerts are marked as a replay, as `replay --notify`'s
        store.replay_mark = delivery.replay_mark = tape
        daemon = build_daemon(
            settings,
            store,
            delivery,
            config_path=path,
            clock=SystemClock(),
            session=http_session(),
            notifier=SystemdNotifier(),
            role=role,
        )
        return run_daemon(daemon)
    db = state_db_path(settings, state_db)
    check_state_dir(db.parent)
    opened = ReplayStore if tape else Store
    daemon = build_daemon(
        settings,
        opened.open(db),
        opened.open(db),
        config_path=path,
        clock=SystemClock(),
        session=http_session(),
        notifier=SystemdNotifier(),
    )
    return run_daemon(daemon)
