"""Readings for metrics and the daily digest: each rule's value, line and distance.

The digest is the daemon's proof of life in the channel itself: after each close one message
per sink with ``digest = true``, e.g. "1810.HK closed at HK$1.081T, +1.2 %; above HK$1T,
1.1 % below CN¥1T, rank 112".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from monitor.core.evaluate import RuleReading, read_rule
from monitor.core.events import stable_id
from monitor.core.rules import RankRule, Rule, RuleState
from monitor.core.shares import shares_on
from monitor.core.valuation import Observation, SharesCount, valuate
from monitor.notify.messages.en import digest_line
from monitor.service import build_rule
from monitor.settings import Settings


@dataclass(frozen=True, slots=True)
class RuleView:
    """One rule at one observation."""

    rule_id: str
    label: str
    currency: str
    value: Decimal
    threshold: Decimal
    position: str | None
    rank: int | None
    top_n: int | None

    @property
    def distance(self) -> Decimal:
        """``value / threshold - 1``: positive above the line."""
        return self.value / self.threshold - 1


@dataclass(frozen=True, slots=True)
class SymbolView:
    observation: Observation
    market_cap: Decimal
    rules: tuple[RuleView, ...]


class Valuer:
    """Values observations and reads every rule of their symbol, for display only."""

    def __init__(self, settings: Settings) -> None:
        self._symbols = {s.symbol: s for s in settings.symbols}
        self._zones = {s.symbol: ZoneInfo(s.timezone) for s in settings.symbols}
        self._rules: dict[str, list[tuple[Rule, str]]] = {}
        for cfg in settings.rules:
            self._rules.setdefault(cfg.symbol, []).append((build_rule(cfg), cfg.label or cfg.id))
        self._shares: dict[tuple[str, date], SharesCount] = {}

    def view(self, obs: Observation, states: Mapping[str, RuleState]) -> SymbolView | None:
        cfg = self._symbols.get(obs.symbol)
        if cfg is None:
            return None
        day = obs.time.astimezone(self._zones[obs.symbol]).date()
        key = (obs.symbol, day)
        shares = self._shares.get(key)
        if shares is None:
            if len(self._shares) > 10 * len(self._symbols):
                self._shares.clear()  # one entry per symbol and day: bounded
            shares = self._shares[key] = shares_on(cfg, day)
        val = valuate(obs, shares, day)
        views: list[RuleView] = []
        for rule, label in self._rules.get(obs.symbol, ()):
            read = read_rule(rule, val)
            if not isinstance(read, RuleReading) or read.reading.threshold <= 0:
                continue
            state = states.get(rule.id)
            views.append(
                RuleView(
                    rule.id,
                    label,
                    rule.currency,
                    read.reading.value,
                    read.reading.threshold,
                    state.position if state is not None else None,
                    read.rank,
                    rule.top_n if isinstance(rule, RankRule) else None,
                )
            )
        return SymbolView(obs, val.market_cap.amount, tuple(views))


def digest_payload(
    day: date,
    views: Sequence[SymbolView],
    previous_closes: Mapping[str, Decimal],
) -> dict[str, object]:
    """The outbox payload of one day's digest (kind ``digest``); its id is stable per day."""
    symbols = sorted(v.observation.symbol for v in views)
    digest_id = stable_id("dig", day.isoformat(), *symbols)
    entries: list[dict[str, object]] = []
    lines: list[str] = []
    for view in views:
        obs = view.observation
        prev = previous_closes.get(obs.symbol)
        lines.append(
            digest_line(obs.symbol, obs.currency, view.market_cap, obs.price, prev, view.rules)
        )
        entries.append(
            {
                "symbol": obs.symbol,
                "time": obs.time.isoformat(),
                "price": str(obs.price),
                "currency": obs.currency,
                "market_cap": str(view.market_cap),
                "previous_close": None if prev is None else str(prev),
                "change": None if not prev else str(obs.price / prev - 1),
                "rules": [
                    {
                        "rule": r.rule_id,
                        "label": r.label,
                        "position": r.position,
                        "value": str(r.value),
                        "currency": r.currency,
                        "threshold": str(r.threshold),
                        "distance": str(r.distance),
                        "rank": r.rank,
                    }
                    for r in view.rules
                ],
            }
        )
    return {
        "id": digest_id,
        "kind": "digest",
        "day": day.isoformat(),
        "text": "\n".join(lines),
        "symbols": entries,
    }
