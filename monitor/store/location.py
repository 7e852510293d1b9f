"""Where the state lives: ``$STATE_DIRECTORY`` (systemd), ``daemon.state_dir``, or the XDG
state directory; the database file in it, or ``--state-db``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from monitor.errors import ConfigError
from monitor.settings import Settings
from monitor.store.values import make_private_dirs

DB_NAME = "mcap-monitor.db"

__all__ = ["DB_NAME", "check_state_dir", "state_db_path", "state_dir"]


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
    """The state database: ``--state-db``, else ``[store] url = "sqlite:///..."``, else
    ``state_db`` in config, else in the state dir; always an absolute path (what the
    ``state db:`` lines print)."""
    if explicit is not None:
        return explicit.absolute()
    if settings.store.sqlite_path is not None:
        return settings.store.sqlite_path.absolute()
    if settings.state_db is not None:
        return settings.state_db.absolute()
    return (state_dir(settings) / DB_NAME).absolute()


def check_state_dir(directory: Path) -> None:
    """Create ``directory`` if needed and prove it is writable, or raise ``ConfigError``."""
    hint = (
        "set daemon.state_dir (or $STATE_DIRECTORY, systemd's StateDirectory=) "
        "to a writable directory"
    )
    try:
        make_private_dirs(directory)  # outside systemd: private, whatever the umask
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"state directory is not writable: {reason}", str(directory), hint
        ) from None
