"""Slack incoming webhooks: Block Kit with a plain ``text`` fallback; success is the body ``ok``.

Limits respected: 50 blocks per message, 3000 characters per section text, 150 per header,
10 fields per section.
"""

from __future__ import annotations

from typing import Any

from monitor.notify.http import HttpAnswer, HttpRequest, json_body
from monitor.notify.message import Message
from monitor.notify.sinks.base import HttpSink, direction_colour, truncate

MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_HEADER = 150
MAX_FIELDS = 10


def escape(text: str) -> str:
    """Slack mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(escape(text), MAX_TEXT)}}


# the colour bar of a legacy attachment (Block Kit itself has no colours)
BAR_COLOURS = {"green": "#2EB67D", "red": "#E01E5A"}


def slack_payload(message: Message, colours: str = "language") -> dict[str, Any]:
    """The Block Kit message for one alert; an alert with a direction carries its facts in an
    attachment whose colour bar shows the direction."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(message.title, MAX_HEADER)},
        },
        _section(message.text),
    ]
    tail: list[dict[str, Any]] = []
    coloured: list[dict[str, Any]] = []
    colour = direction_colour(message, colours)
    if message.facts:
        fields = [
            {"type": "mrkdwn", "text": truncate(f"*{escape(k)}*\n{escape(v)}", 2000)}
            for k, v in message.facts[:MAX_FIELDS]
        ]
        (coloured if colour else tail).append({"type": "section", "fields": fields})
    tail.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(message.footer)}]}
    )
    room = MAX_BLOCKS - len(blocks) - len(tail)
    lines = list(message.lines)
    if len(lines) > room:
        shown = lines[: room - 1]
        blocks += [_section(line) for line in shown]
        blocks.append(_section(f"…and {len(lines) - len(shown)} more"))
    else:
        blocks += [_section(line) for line in lines]
    blocks += tail
    payload: dict[str, Any] = {"text": truncate(message.plain(), MAX_TEXT), "blocks": blocks}
    if coloured and colour:
        payload["attachments"] = [{"color": BAR_COLOURS[colour], "blocks": coloured}]
    return payload


class SlackSink(HttpSink):
    platform = "Slack"

    def build(self, message: Message, now: float) -> HttpRequest:
        return HttpRequest(self.url, json_body(slack_payload(message, self.config.colours)))

    def check(self, answer: HttpAnswer) -> None:
        if answer.text.strip() != "ok":
            raise self.body_error(
                answer.status,
                answer.text or "(empty body)",
                permanent=True,
                hint="the URL does not look like a Slack incoming webhook",
            )
