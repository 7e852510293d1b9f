"""Feishu / Lark custom bots: an interactive card; optional signing.

Signing: HMAC-SHA256 keyed with ``"{timestamp}\\n{secret}"`` over an empty message, base64;
``timestamp`` (seconds) and ``sign`` go in the body. Errors come as HTTP 200 with ``code``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from monitor.notify.http import HttpAnswer, HttpRequest, json_body
from monitor.notify.message import Message
from monitor.notify.sinks.base import HttpSink, direction_colour

# frequency limits: retry later; everything else in the body is a configuration problem
TRANSIENT_CODES = {11232, 9499}


def feishu_sign(secret: str, timestamp: int) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def card_colour(message: Message, colours: str = "language") -> str:
    """The card header colour: direction in the sink's convention (default: the language's)."""
    return direction_colour(message, colours) or ("grey" if message.kind == "test" else "blue")


def feishu_card(message: Message, colours: str = "language") -> dict[str, Any]:
    body = "\n".join([message.text, *message.lines])
    elements: list[dict[str, Any]] = [{"tag": "div", "text": {"tag": "lark_md", "content": body}}]
    if message.facts:
        elements.append(
            {
                "tag": "div",
                "fields": [
                    {"is_short": True, "text": {"tag": "lark_md", "content": f"**{k}**\n{v}"}}
                    for k, v in message.facts
                ],
            }
        )
    elements.append({"tag": "note", "elements": [{"tag": "plain_text", "content": message.footer}]})
    colour = card_colour(message, colours)
    return {
        "config": {"wide_screen_mode": True},
        "header": {"title": {"tag": "plain_text", "content": message.title}, "template": colour},
        "elements": elements,
    }


class FeishuSink(HttpSink):
    platform = "Feishu"

    def build(self, message: Message, now: float) -> HttpRequest:
        payload: dict[str, Any] = {
            "msg_type": "interactive",
            "card": feishu_card(message, self.config.colours),
        }
        if self.secret:
            timestamp = int(now)
            payload = {
                "timestamp": str(timestamp),
                "sign": feishu_sign(self.secret, timestamp),
            } | payload
        return HttpRequest(self.url, json_body(payload))

    def check(self, answer: HttpAnswer) -> None:
        data = answer.json()
        if not isinstance(data, dict):
            raise self.body_error("?", f"unexpected answer: {answer.text[:100]}", permanent=True)
        code = data.get("code", data.get("StatusCode", 0))
        if code in (0, None):
            return
        reason = data.get("msg") or data.get("StatusMessage") or ""
        hint = "check the signing secret" if code == 19021 else ""
        raise self.body_error(
            code,
            reason,
            permanent=code not in TRANSIENT_CODES,
            retry_after=60.0 if code in TRANSIENT_CODES else None,
            hint=hint,
        )
