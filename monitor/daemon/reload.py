"""SIGHUP: re-read and re-validate the config; keep the old one if the new one is bad."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from monitor.daemon.health import HealthState
from monitor.daemon.sdnotify import SystemdNotifier
from monitor.daemon.telemetry import Telemetry
from monitor.errors import ConfigError
from monitor.settings import Settings, load_settings

if TYPE_CHECKING:
    from monitor.daemon.app import Parts

log = structlog.get_logger("mcap.daemon")


class Reload:
    """The reload job; ``Daemon`` provides ``_build`` and the state."""

    parts: Parts
    config_path: Path | None
    notifier: SystemdNotifier
    health: HealthState
    telemetry: Telemetry

    def _build(self, settings: Settings, previous: Parts | None = None) -> Parts:
        raise NotImplementedError

    def _schedule_intervals(self) -> None:
        raise NotImplementedError

    def reload(self) -> bool:
        """Re-read and re-validate the config; keep the old one if the new one is bad."""
        self.notifier.reloading()
        status = self.telemetry.status
        try:
            if self.config_path is None:
                raise ConfigError("no config file to reload", "", "start with --config")
            settings, _ = load_settings(self.config_path)
            self._check_reloadable(settings)
            parts = self._build(settings, previous=self.parts)
        except ConfigError as exc:
            log.error("config_reload_rejected", error=exc.one_line(), kept="previous config")
            self.notifier.ready(status)
            return False
        self.parts = parts
        symbols = {s.symbol for s in settings.symbols}
        self.health.set_symbols(s.symbol for s in settings.symbols)
        self.telemetry.keep_symbols(symbols)
        self._schedule_intervals()
        self.telemetry.update_status(settings)
        log.info("config_reloaded", path=str(self.config_path))
        self.notifier.ready(self.telemetry.status)
        return True

    def _check_reloadable(self, new: Settings) -> None:
        old = self.parts.settings
        for key in ("health", "state_db"):
            if getattr(old, key) != getattr(new, key):
                log.warning("config_change_needs_restart", key=key)
        if old.daemon.state_dir != new.daemon.state_dir:
            log.warning("config_change_needs_restart", key="daemon.state_dir")
