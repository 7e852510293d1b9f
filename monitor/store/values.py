"""Reading stored values defensively, and creating the database's file and directories private.

A value an older version or a hand edit stored may be anything: it is decoded to ``None``
("unreadable") rather than breaking a read command.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path


def instance_name() -> str:
    """This process as other instances see it: ``host:pid`` (its sessions' application_name,
    the leader row's holder)."""
    return f"{socket.gethostname()}:{os.getpid()}"[:63]


def readable_decimal(text: object) -> Decimal | None:
    """A stored number, or ``None`` if it is unreadable: not a number, not finite, or beyond
    any figure this program writes."""
    try:
        value = Decimal(str(text))
    except ArithmeticError:
        return None
    if not value.is_finite() or (value != 0 and not -40 <= value.adjusted() <= 40):
        return None
    return value


def readable_time(text: object) -> datetime | None:
    """A stored aware time, or ``None`` if it is unreadable."""
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and every missing parent 0700 (``mkdir(parents=True)`` would
    leave the parents to the umask)."""
    missing = []
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for each in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            each.mkdir(mode=0o700)


def create_private(path: Path) -> None:
    """Create ``path``'s directories (0700) and an empty database file (0600) if missing."""
    make_private_dirs(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def no_tables(conn: sqlite3.Connection, path: Path) -> bool:
    """An empty file, or a database with no table yet: one being created this moment."""
    try:
        if path.stat().st_size == 0:
            return True
        return int(conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]) == 0
    except (OSError, sqlite3.Error):
        return False
