"""Microsoft Teams via a Power Automate / Workflows webhook: an Adaptive Card; 200 or 202 is
success."""

from __future__ import annotations

from typing import Any

from monitor.notify.http import HttpRequest, json_body
from monitor.notify.message import Message
from monitor.notify.sinks.base import HttpSink, direction_colour

# Adaptive Card colours: "Good" is green, "Attention" red
CARD_COLOURS = {"green": "Good", "red": "Attention"}


def adaptive_card(message: Message, colours: str = "language") -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": message.title,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
        {"type": "TextBlock", "text": message.text, "wrap": True},
    ]
    colour = direction_colour(message, colours)
    if colour:  # the headline in the direction's colour
        body[0]["color"] = CARD_COLOURS[colour]
    body += [{"type": "TextBlock", "text": line, "wrap": True} for line in message.lines]
    if message.facts:
        body.append(
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in message.facts]}
        )
    body.append(
        {
            "type": "TextBlock",
            "text": message.footer,
            "isSubtle": True,
            "size": "Small",
            "wrap": True,
        }
    )
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }
        ],
    }


class TeamsSink(HttpSink):
    platform = "Teams"

    def build(self, message: Message, now: float) -> HttpRequest:
        return HttpRequest(self.url, json_body(adaptive_card(message, self.config.colours)))
