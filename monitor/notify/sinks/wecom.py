"""WeCom (企业微信) group robots: a markdown message of at most 4096 bytes; errors in
``errcode``."""

from __future__ import annotations

from monitor.notify.http import HttpRequest, json_body
from monitor.notify.message import Message
from monitor.notify.sinks.base import ErrcodeSink, markdown_text, truncate_bytes

MAX_BYTES = 4096
RATE_LIMITED = 45009  # more than 20 messages a minute


def wecom_markdown(message: Message) -> str:
    return truncate_bytes(markdown_text(message, "###", "\n"), MAX_BYTES)


class WeComSink(ErrcodeSink):
    platform = "WeCom"
    rate_limited = RATE_LIMITED

    def build(self, message: Message, now: float) -> HttpRequest:
        payload = {"msgtype": "markdown", "markdown": {"content": wecom_markdown(message)}}
        return HttpRequest(self.url, json_body(payload))
