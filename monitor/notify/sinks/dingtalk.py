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

from monitor.notify.http import HttpAnswer, HttpRequest, json_body
from monitor.notify.message import Message
from monitor.notify.sinks.base import HttpSink

RATE_LIMITED = 130101  # more than 20 messages a minute
TRANSIENT_CODES = {RATE_LIMITED, -1}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    text = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), text, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def markdown(message: Message) -> str:
    parts = [f"#### {message.title}", message.text, *(f"- {line}" for line in message.lines)]
    parts.append(f"> {message.footer}")
    return "\n\n".join(parts)


class DingTalkSink(HttpSink):
    platform = "DingTalk"

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

    def check(self, answer: HttpAnswer) -> None:
        data = answer.json()
        if not isinstance(data, dict):
            raise self.body_error("?", f"unexpected answer: {answer.text[:100]}", permanent=True)
        code = data.get("errcode", 0)
        if code == 0:
            return
        hint = (
            "check the signing secret, the robot's keywords and its IP allow-list"
            if code == 310000
            else ""
        )
        raise self.body_error(
            code,
            data.get("errmsg", ""),
            permanent=code not in TRANSIENT_CODES,
            retry_after=60.0 if code == RATE_LIMITED else None,
            hint=hint,
        )
