"""What every sink is: something that delivers one ``Message`` or raises ``DeliveryError``."""

from __future__ import annotations

import requests

from monitor.errors import DeliveryError
from monitor.notify.http import HttpAnswer, HttpRequest, classify_status, post
from monitor.notify.message import Message
from monitor.notify.secrets import Redactor, redact_url
from monitor.settings import SinkConfig


class HttpSink:
    """A sink that POSTs JSON to a webhook URL; platforms override ``build`` and ``check``."""

    platform = "webhook"

    def __init__(self, config: SinkConfig, url: str, secret: str | None, redact: Redactor):
        self.config = config
        self.url = url
        self.secret = secret
        self.redact = redact
        self.where = f"sink {config.id!r}, {redact_url(url, config.type)}"

    def build(self, message: Message, now: float) -> HttpRequest:
        raise NotImplementedError

    def check(self, answer: HttpAnswer) -> None:
        """Judge a 2xx answer; platforms with errors in the body override this."""

    def retry_after(self, answer: HttpAnswer) -> float | None:
        """A platform's own rate-limit answer in the body (seconds), if any."""
        return None

    def deliver(self, message: Message, session: requests.Session, now: float) -> str:
        request = self.build(message, now)
        answer = post(
            session, request, timeout=self.config.timeout, where=self.where, redact=self.redact
        )
        classify_status(
            answer,
            where=self.where,
            redact=self.redact,
            now=now,
            retry_after=self.retry_after(answer),
        )
        self.check(answer)
        return f"HTTP {answer.status}"

    def body_error(
        self,
        code: object,
        text: object,
        *,
        permanent: bool,
        retry_after: float | None = None,
        hint: str = "",
    ) -> DeliveryError:
        """A platform error reported in a 2xx body."""
        reason = self.redact(str(text))[:200]
        return DeliveryError(
            f"{self.platform} error {code}: {reason}",
            self.where,
            hint or ("fix the sink's settings" if permanent else "retrying later"),
            permanent=permanent,
            retry_after=retry_after,
        )


# Direction colours: in Chinese markets red means up and green down, in English-language
# (Western) ones green means up. A sink's ``colours`` key picks the convention: "language" (the
# message language's, the default), "red_up" or "green_up".
UP_KINDS = ("crossed_above", "touched_above")
DOWN_KINDS = ("crossed_below",)


def direction_colour(message: Message, colours: str = "language") -> str | None:
    """``"red"`` or ``"green"`` for an alert with a direction, else None."""
    if message.kind not in UP_KINDS and message.kind not in DOWN_KINDS:
        return None
    red_up = colours == "red_up" or (colours == "language" and message.language == "zh")
    up, down = ("red", "green") if red_up else ("green", "red")
    return up if message.kind in UP_KINDS else down


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def truncate_bytes(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes without splitting a character."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    cut = raw[: limit - len("…".encode())].decode("utf-8", errors="ignore")
    return cut + "…"


def markdown_text(message: Message, heading: str, separator: str) -> str:
    """Title as a ``heading`` line, the text, one bullet per fact (the replay mark first) and
    per line, the footer as a quote."""
    parts = [
        f"{heading} {message.title}",
        message.text,
        *(f"- **{key}**: {value}" for key, value in message.facts),
        *(f"- {line}" for line in message.lines),
    ]
    parts.append(f"> {message.footer}")
    return separator.join(parts)


class ErrcodeSink(HttpSink):
    """Chinese robot APIs (DingTalk, WeCom): HTTP 200 with ``errcode``/``errmsg`` in the body;
    ``rate_limited`` and -1 (busy) are transient, every other code permanent."""

    rate_limited = 0

    def errcode_hint(self, code: object) -> str:
        """What to check for a given error code."""
        return ""

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
            permanent=code not in (self.rate_limited, -1),
            retry_after=60.0 if code == self.rate_limited else None,
            hint=self.errcode_hint(code),
        )
