"""``mcap-monitor run``: the long-running service (systemd ``Type=notify``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor import bootstrap


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
    return bootstrap.run_service(args.config, args.state_db)
