"""Discord webhooks: one embed, ``?wait=true`` so a 2xx means the message exists; a 429's
``retry_after`` is honoured."""

from __future__ import annotations

from typing import Any

from monitor.notify.backoff import server_wait
from monitor.notify.http import HttpAnswer, HttpRequest, json_body
from monitor.notify.message import Message
from monitor.notify.sinks.base import HttpSink, direction_colour, truncate

COLOURS = {"green": 0x2EB67D, "red": 0xE01E5A}
NEUTRAL = 0x5865F2


def discord_payload(message: Message, colours: str = "language") -> dict[str, Any]:
    description = "\n".join([message.text, *message.lines])
    embed: dict[str, Any] = {
        "title": truncate(message.title, 256),
        "description": truncate(description, 4000),
        "color": COLOURS.get(direction_colour(message, colours) or "", NEUTRAL),
        "footer": {"text": truncate(message.footer, 2048)},
    }
    if message.facts:
        embed["fields"] = [
            {"name": truncate(k, 256), "value": truncate(v, 1024), "inline": True}
            for k, v in message.facts[:25]
        ]
    if message.time:
        embed["timestamp"] = message.time
    return {"embeds": [embed], "allowed_mentions": {"parse": []}}


class DiscordSink(HttpSink):
    platform = "Discord"

    def build(self, message: Message, now: float) -> HttpRequest:
        sep = "&" if "?" in self.url else "?"
        url = self.url if "wait=" in self.url else f"{self.url}{sep}wait=true"
        return HttpRequest(url, json_body(discord_payload(message, self.config.colours)))

    def retry_after(self, answer: HttpAnswer) -> float | None:
        if answer.status != 429:
            return None
        data = answer.json()
        value = data.get("retry_after") if isinstance(data, dict) else None
        # NaN, negative, huge or a string: as if absent (the dispatcher's backoff applies)
        return server_wait(value) if isinstance(value, int | float) else None
