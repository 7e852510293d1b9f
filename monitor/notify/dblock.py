"""One delivering process per state database.

Two processes sending from one outbox (a running daemon and an ``outbox flush``, say) would
both send the same due row. ``DeliveryLock`` is an exclusive ``flock`` on ``<db>.deliver.lock``:
the kernel drops it when its holder dies (even by SIGKILL), so it never goes stale. Within one
process it is shared and counted, so a dispatcher rebuilt on SIGHUP keeps it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
from pathlib import Path

from monitor.errors import StoreError

_guard = threading.Lock()
_held: dict[str, tuple[int, int]] = {}  # lock path -> (fd, holders in this process)


def _open_lock_file(path: str) -> int:
    """Open (creating 0600) the lock file without following a symlink, and refuse anything
    but a regular file of our own: the PID is written into it, so it must never be a link
    to, or a name for, some other file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreError(
                "delivery lock file is a symlink", path, "remove it; it is created on its own"
            ) from None
        raise StoreError(
            f"cannot open delivery lock file: {exc.strerror}", path, "check permissions"
        ) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1:
        os.close(fd)
        raise StoreError(
            "delivery lock file is not a regular file of this user",
            path,
            "remove it; it is created on its own",
        )
    return fd


class DeliveryLock:
    """Try-lock for delivering from the outbox of the database at ``db``."""

    def __init__(self, db: Path) -> None:
        self.path = str(db) + ".deliver.lock"
        self._mine = False

    @property
    def held(self) -> bool:
        return self._mine

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; True when this process has it."""
        if self._mine:
            return True
        with _guard:
            found = _held.get(self.path)
            if found is not None:
                _held[self.path] = (found[0], found[1] + 1)
                self._mine = True
                return True
            fd = _open_lock_file(self.path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            os.ftruncate(fd, 0)  # a regular file we own (checked on opening): safe
            os.write(fd, f"{os.getpid()}\n".encode())
            _held[self.path] = (fd, 1)
            self._mine = True
            return True

    def holder(self) -> str:
        """The pid written by the process holding the lock, if readable."""
        try:
            return Path(self.path).read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if not self._mine:
            return
        with _guard:
            fd, holders = _held[self.path]
            if holders > 1:
                _held[self.path] = (fd, holders - 1)
            else:
                del _held[self.path]
                os.close(fd)  # closing the last descriptor drops the flock
            self._mine = False
