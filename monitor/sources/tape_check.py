"""``python -m monitor.sources.tape_check``: read a whole tape (``{"path", "symbols"}`` as
JSON on stdin) and exit 0 when every row is good, 1 when one is not (``tape.TapeCheck``)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from monitor.errors import InputError
from monitor.sources.tape import read_through


def main() -> int:
    # below the replay it checks: it runs only on a core the replay leaves idle (Linux's
    # SCHED_IDLE), else at the lowest nice level
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(19)
    order = json.loads(sys.stdin.read())
    symbols = set(order["symbols"]) or None
    try:
        read_through(Path(order["path"]), symbols)
    except InputError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
