"""Log set-up for one-shot commands when nothing else configured structlog: key=value lines on
stderr, so stdout stays the command's output."""

from __future__ import annotations

import logging
import sys

import structlog


def ensure_cli_logging(level: str = "info") -> None:
    """Configure structlog for a terminal unless an entry point already did."""
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.KeyValueRenderer(
                key_order=["timestamp", "level", "event"], drop_missing=True
            ),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
