"""The composition root: builds settings, the store and adapters from arguments and config."""

from __future__ import annotations

import os
from pathlib import Path

from monitor.settings import Settings, load_settings
from monitor.store import Store

DB_NAME = "mcap-monitor.db"
BUNDLED_TAPE = Path(__file__).parent / "data" / "xiaomi_2025-01-20_2025-03-10.csv"


def settings_from(config: Path | None) -> Settings:
    """Load and validate the configuration (``ConfigError`` on any problem)."""
    settings, _ = load_settings(config)
    return settings


def state_dir(settings: Settings) -> Path:
    """``$STATE_DIRECTORY`` (systemd), else ``daemon.state_dir``, else the XDG state dir."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    if settings.daemon.state_dir is not None:
        return settings.daemon.state_dir
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "mcap-monitor"


def state_db_path(settings: Settings, explicit: Path | None) -> Path:
    """The state database: ``--state-db``, else ``state_db`` in config, else in the state dir."""
    if explicit is not None:
        return explicit
    if settings.state_db is not None:
        return settings.state_db
    return state_dir(settings) / DB_NAME


def open_store(settings: Settings, explicit: Path | None) -> Store:
    return Store.open(state_db_path(settings, explicit))
