"""``mcap-monitor run``: the long-running service (systemd ``Type=notify``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor import bootstrap
from monitor.settings import load_settings


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "run",
        parents=[common],
        help="run the monitor as a service (scheduler, health, metrics)",
        description="Poll while the exchange is in session, evaluate the rules and deliver "
        "alerts until SIGTERM. SIGHUP reloads the config. Speaks sd_notify under systemd.",
    )
    p.add_argument("--state-db", type=Path, help="state database (default: in the state directory)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monitor.daemon.logs import configure_logging  # structlog: only when needed

    configure_logging(args.log_level)
    # Heavy imports (pandas via exchange-calendars, APScheduler) only for this command.
    from monitor.daemon import Daemon, run_daemon
    from monitor.daemon.compose import SystemClock, check_state_dir, http_session
    from monitor.daemon.sdnotify import SystemdNotifier
    from monitor.store import Store

    settings, path = load_settings(args.config)
    db = bootstrap.state_db_path(settings, args.state_db)
    check_state_dir(db.parent)
    store = Store.open(db)
    delivery_store = Store.open(db)
    daemon = Daemon(
        settings,
        store,
        delivery_store,
        config_path=path,
        clock=SystemClock(),
        session=http_session(),
        notifier=SystemdNotifier(),
    )
    return run_daemon(daemon)
