"""structlog set-up, the one place: JSON lines for journald and files, a console renderer
for a terminal (the daemon, ``check``), and for one-shot commands that deliver (``outbox
flush``, ``replay --notify``, ``test-alert``) warnings only on a terminal, JSON on a pipe.

Standard-library records (APScheduler, urllib3) go through the same renderer, so every line
of the daemon's output has one shape.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
LEVELS["error"] = logging.ERROR


class _BusyJobFilter(logging.Filter):
    """APScheduler's "skipped: maximum number of running instances reached" is not a problem
    here (``max_instances=1`` is the point): demoted to a ``job_skipped_busy`` debug line."""

    MARK = "maximum number of running instances reached"

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if self.MARK not in str(record.msg):
            return True
        if self.level > logging.DEBUG:
            return False
        job = record.args[0] if isinstance(record.args, tuple) and record.args else None
        record.msg = "job_skipped_busy"
        record.args = None
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.__dict__["job"] = str(job) if job is not None else None
        return True


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging to ``stream`` (stderr) at ``level``."""
    out = sys.stderr if stream is None else stream
    numeric = LEVELS.get(level.lower(), logging.INFO)
    tty = out.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if tty:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([] if tty else [structlog.processors.format_exc_info]),
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # APScheduler logs every job run at INFO; only its warnings (misfires) matter. A wake-up
    # that finds the job still running is normal: a debug line with an event name, not a warning.
    logging.getLogger("apscheduler").setLevel(max(numeric, logging.WARNING))
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    for old_filter in list(scheduler_log.filters):
        if isinstance(old_filter, _BusyJobFilter):
            scheduler_log.removeFilter(old_filter)
    scheduler_log.addFilter(_BusyJobFilter(numeric))
    logging.getLogger("urllib3").setLevel(max(numeric, logging.WARNING))


def ensure_cli_logging(level: str = "info") -> None:
    """Log lines on stderr for a one-shot command, unless an entry point already configured
    structlog; stdout stays the command's output. On a terminal only warnings and errors at
    the default level (the command prints its own summary line; ``--log-level debug`` shows
    everything), as key=value; on a pipe or under systemd JSON lines, as the daemon logs."""
    if structlog.is_configured():
        return
    numeric = LEVELS.get(level.lower(), logging.INFO)
    tty = sys.stderr.isatty()
    if tty and numeric == logging.INFO:
        numeric = logging.WARNING
    renderer: Any = (
        structlog.processors.KeyValueRenderer(
            key_order=["timestamp", "level", "event"], drop_missing=True
        )
        if tty
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
