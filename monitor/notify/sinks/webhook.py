"""Generic JSON webhooks signed per the Standard Webhooks specification.

Headers ``webhook-id`` (the event id, identical on every retry), ``webhook-timestamp`` (unix
seconds of this attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
``"{id}.{timestamp}.{body}"`` with the base64-decoded ``whsec_`` secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from monitor.errors import ConfigError
from monitor.notify.http import HttpRequest, json_body
from monitor.notify.message import Message
from monitor.notify.secrets import Redactor
from monitor.notify.sinks.base import HttpSink
from monitor.settings import SinkConfig

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional, as in the
    reference implementations)."""
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        # strict base64: a typo must not silently become a different key
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if not key:
        raise ValueError("empty")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 signature>`` of one delivery attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_payload(message: Message) -> dict[str, Any]:
    """``{"type", "timestamp", "data"}``; ``data`` carries every input of the event."""
    data: dict[str, Any] = dict(message.data)
    data["message"] = message.text
    if message.lines:
        data["lines"] = list(message.lines)
    if message.test:
        data["test"] = True
    return {"type": message.kind, "timestamp": message.time, "data": data}


class WebhookSink(HttpSink):
    platform = "webhook"

    def __init__(self, config: SinkConfig, url: str, secret: str | None, redact: Redactor):
        super().__init__(config, url, secret, redact)
        self.key: bytes | None = None
        if secret is not None:
            try:
                if not secret.startswith(SECRET_PREFIX):
                    raise ValueError("no whsec_ prefix")  # the README promises it is required
                self.key = secret_key(secret)
            except ValueError:
                raise ConfigError(
                    "webhook secret is not a whsec_-prefixed base64 key",
                    f"sink {config.id!r}",
                    'generate one with: python -c "import base64,os;'
                    "print('whsec_'+base64.b64encode(os.urandom(32)).decode())\"",
                ) from None

    def build(self, message: Message, now: float) -> HttpRequest:
        body = json_body(webhook_payload(message))
        timestamp = int(now)
        headers = {k: v.get_secret_value() for k, v in self.config.headers.items()}
        headers["webhook-id"] = message.id
        headers["webhook-timestamp"] = str(timestamp)
        if self.key is not None:
            headers["webhook-signature"] = sign(self.key, message.id, timestamp, body)
        return HttpRequest(self.url, body, headers)
