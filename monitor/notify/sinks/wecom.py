"""WeCom (企业微信) group robots: a markdown message of at most 4096 bytes; errors in
``errcode``."""

from __future__ import annotations

from monitor.notify.http import HttpAnswer, HttpRequest, json_body
from monitor.notify.message import Message
from monitor.notify.sinks.base import HttpSink, truncate_bytes

MAX_BYTES = 4096
RATE_LIMITED = 45009  # more than 20 messages a minute
TRANSIENT_CODES = {RATE_LIMITED, -1}


def wecom_markdown(message: Message) -> str:
    parts = [f"### {message.title}", message.text, *(f"- {line}" for line in message.lines)]
    parts.append(f"> {message.footer}")
    return truncate_bytes("\n".join(parts), MAX_BYTES)


class WeComSink(HttpSink):
    platform = "WeCom"

    def build(self, message: Message, now: float) -> HttpRequest:
        payload = {"msgtype": "markdown", "markdown": {"content": wecom_markdown(message)}}
        return HttpRequest(self.url, json_body(payload))

    def check(self, answer: HttpAnswer) -> None:
        data = answer.json()
        if not isinstance(data, dict):
            raise self.body_error("?", f"unexpected answer: {answer.text[:100]}", permanent=True)
        code = data.get("errcode", 0)
        if code == 0:
            return
        raise self.body_error(
            code,
            data.get("errmsg", ""),
            permanent=code not in TRANSIENT_CODES,
            retry_after=60.0 if code == RATE_LIMITED else None,
        )
