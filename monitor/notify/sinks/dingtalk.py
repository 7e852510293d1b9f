"""DingTalk custom robots: markdown message; optional signing.

Signing: ``timestamp`` (ms) and ``sign`` query parameters, where ``sign`` is the base64
HMAC-SHA256 (keyed with the secret) of ``"{timestamp}\\n{secret}"``, URL-encoded. Errors come
as HTTP 200 with ``errcode``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus

from monitor.notify.http import HttpRequest, json_body
from monitor.notify.message import Message
from monitor.notify.sinks.base import ErrcodeSink, markdown_text

RATE_LIMITED = 130101  # more than 20 messages a minute


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    text = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), text, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def markdown(message: Message) -> str:
    return markdown_text(message, "####", "\n\n")


class DingTalkSink(ErrcodeSink):
    platform = "DingTalk"
    rate_limited = RATE_LIMITED

    def build(self, message: Message, now: float) -> HttpRequest:
        url = self.url
        if self.secret:
            stamp = int(now * 1000)
            sep = "&" if "?" in url else "?"
            url += f"{sep}timestamp={stamp}&sign={dingtalk_sign(self.secret, stamp)}"
        payload = {
            "msgtype": "markdown",
            "markdown": {"title": message.title, "text": markdown(message)},
        }
        return HttpRequest(url, json_body(payload))

    def errcode_hint(self, code: object) -> str:
        if code == 310000:
            return "check the signing secret, the robot's keywords and its IP allow-list"
        return ""
