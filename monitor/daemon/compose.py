"""Wiring for ``mcap-monitor run``: the clock, the state directory, sources and dispatcher.

Live sources and sinks are imported lazily: tape mode needs neither yfinance nor the
delivery stack, and either can be missing while it is being built.
"""

from __future__ import annotations

import importlib
import inspect
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import structlog

from monitor.errors import ConfigError
from monitor.ports import DeliveryStats, Dispatcher, ObservationSource
from monitor.settings import Settings
from monitor.sources.tape_source import TapeSource
from monitor.store import Store

log = structlog.get_logger("mcap.daemon")

# Where the delivery engineer's dispatcher may live, most specific first.
DISPATCHER_CANDIDATES = (
    ("monitor.notify.dispatcher", "OutboxDispatcher"),
    ("monitor.notify.dispatcher", "Dispatcher"),
    ("monitor.notify.outbox", "OutboxDispatcher"),
    ("monitor.notify.outbox", "Dispatcher"),
    ("monitor.notify", "OutboxDispatcher"),
)


class SystemClock:
    """The real time, timezone-aware (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def check_state_dir(directory: Path) -> None:
    """Create ``directory`` if needed and prove it is writable, or raise ``ConfigError``."""
    hint = (
        "set daemon.state_dir (or $STATE_DIRECTORY, systemd's StateDirectory=) "
        "to a writable directory"
    )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"state directory is not writable: {reason}", str(directory), hint
        ) from None


def build_source(
    settings: Settings,
    session: requests.Session,
    clock: Any,
    resume_after: Mapping[str, datetime],
    state_dir: Path | None = None,
) -> ObservationSource:
    """The tape (``source.kind = "tape"``) or the live sources."""
    cfg = settings.source
    if cfg.kind == "tape":
        assert cfg.path is not None
        if not cfg.path.is_file():
            raise ConfigError(
                "tape not found", f"source.path = {cfg.path}", "check the path of the CSV tape"
            )
        return TapeSource(cfg.path, cfg.speed, resume_after)
    try:
        live = importlib.import_module("monitor.sources.live")
    except ImportError as exc:
        raise ConfigError(
            f"live sources are not available in this build: {exc}",
            'source.kind = "yahoo"',
            'use source.kind = "tape" or install the live-data dependencies',
        ) from None
    return _construct(live.LiveSource, settings, session=session, clock=clock, state_dir=state_dir)  # type: ignore[no-any-return]


class NullDispatcher:
    """Stands in when no delivery stack is installed: rows stay pending in the outbox."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def deliver_due(self, now: float) -> DeliveryStats:
        return DeliveryStats(pending=self.store.outbox_counts().get("pending", 0))


def build_dispatcher(
    settings: Settings, store: Store, session: requests.Session, clock: Any
) -> Dispatcher:
    """The outbox dispatcher of ``monitor.notify``; a ``NullDispatcher`` if there is none."""
    for module_name, attr in DISPATCHER_CANDIDATES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        factory = getattr(module, attr, None)
        if factory is not None:
            return _construct(factory, settings, store=store, session=session, clock=clock)  # type: ignore[no-any-return]
    log.warning("dispatcher_unavailable", hint="deliveries stay pending in the outbox")
    return NullDispatcher(store)


def _construct(factory: Any, settings: Settings, **deps: Any) -> Any:
    """Call ``factory(settings, ...)`` passing only the dependencies it declares."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return factory(settings, **deps)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in deps.items() if takes_any or k in params}
    return factory(settings, **kwargs)


def http_session() -> requests.Session:
    """A ``requests.Session`` for the heartbeat ping and sinks."""
    session = requests.Session()
    session.headers["User-Agent"] = f"mcap-monitor/{_version()} (+daemon)"
    return session


def _version() -> str:
    from monitor import __version__

    return __version__
