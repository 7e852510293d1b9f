"""``mcap-monitor run``: the scheduler, signals, systemd notifications, health and metrics."""

from monitor.daemon.app import Daemon, run_daemon

__all__ = ["Daemon", "run_daemon"]
