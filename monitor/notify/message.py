"""The one message type every sink renders, whatever its language or platform."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Language = Literal["en", "zh"]


@dataclass(frozen=True)
class Message:
    """One alert, ready for any sink. ``id`` is the idempotency key (stable across retries)."""

    id: str
    kind: str
    title: str
    text: str
    footer: str
    facts: tuple[tuple[str, str], ...] = ()
    lines: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    time: str = ""
    test: bool = False
    language: Language = "en"

    def plain(self) -> str:
        """The whole message as plain text (console, fallbacks)."""
        parts = [self.text, *self.lines]
        if self.footer:
            parts.append(self.footer)
        return "\n".join(parts)
