"""The optional ``apprise`` sink (``pip install 'mcap-monitor[apprise]'``) for other services.

Apprise judges many platforms by HTTP status only, so a platform that answers 200 with an error
in the body is reported as delivered; prefer a native sink where one exists.
"""

from __future__ import annotations

import logging
import threading
import warnings
import weakref
from typing import Any

import requests

from monitor.errors import ConfigError, DeliveryError
from monitor.notify.message import Message
from monitor.notify.secrets import Redactor, redact_url
from monitor.settings import SinkConfig


class _RedactingFilter(logging.Filter):
    """Masks every apprise sink's secrets in apprise's own log records (its debug lines carry
    the full target URL, its warnings sometimes a host or token)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._redactors: weakref.WeakSet[Redactor] = weakref.WeakSet()

    def add(self, redact: Redactor) -> None:
        with self._lock:
            self._redactors.add(redact)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            redactors = list(self._redactors)
        text = record.getMessage()
        for redact in redactors:
            text = redact(text)
        record.msg, record.args = text, None
        return True


_LOG_FILTER = _RedactingFilter()
logging.getLogger("apprise").addFilter(_LOG_FILTER)


class AppriseSink:
    def __init__(self, config: SinkConfig, url: str, redact: Redactor) -> None:
        self.config = config
        self.redact = redact
        self.where = f"sink {config.id!r}, {redact_url(url, 'apprise')}"
        _LOG_FILTER.add(redact)
        # apprise loads its plugins on the first ``add``; some import deprecated modules
        # (imghdr): their warnings are not ours to fix and must not break ``-W error``.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                import apprise
            except ImportError:
                raise ConfigError(
                    "the apprise sink needs the apprise package",
                    self.where,
                    "pip install 'mcap-monitor[apprise]'",
                ) from None
            self._apprise: Any = apprise.Apprise()
            if not self._apprise.add(url):
                raise ConfigError(
                    "apprise does not understand this URL", self.where, "check the URL"
                )

    def deliver(self, message: Message, session: requests.Session, now: float) -> str:
        try:
            ok = bool(self._apprise.notify(body=message.plain(), title=message.title))
        except Exception as exc:  # noqa: BLE001 - apprise plugins raise anything; never leak it
            raise DeliveryError(
                f"apprise failed: {self.redact(type(exc).__name__ + ': ' + str(exc))}", self.where
            ) from None
        if not ok:
            raise DeliveryError("apprise reported a failed notification", self.where, "retrying")
        return "apprise ok"
