"""The console sink: one readable block per alert on stdout; works with no network."""

from __future__ import annotations

import sys
from typing import TextIO

import requests

from monitor.errors import DeliveryError
from monitor.notify.message import Message
from monitor.settings import SinkConfig


class ConsoleSink:
    """Prints alerts; the default sink."""

    def __init__(self, config: SinkConfig, out: TextIO | None = None) -> None:
        self.config = config
        self.out = out
        self.where = f"sink {config.id!r}, console"

    def deliver(self, message: Message, session: requests.Session, now: float) -> str:
        out = self.out or sys.stdout
        prefix = "[TEST] " if message.test and not message.text.startswith("[") else ""
        try:
            print(f"ALERT {prefix}{message.plain()}", file=out, flush=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot write to the console: {exc.strerror}", self.where
            ) from None
        return "printed"
