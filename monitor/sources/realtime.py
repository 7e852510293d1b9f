"""The real-time quote sources (Tencent, Sina) beside Yahoo, through the quote policy.

``LiveSource`` asks every configured ``BatchQuoteSource`` once per poll (one request per batch
of symbols), adds Yahoo's quote, and lets ``monitor.core.quote_policy.decide`` pick the quote
that is evaluated. What each source said and the decision are kept for ``check`` and health.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import structlog

from monitor.core.quote import Quote
from monitor.core.quote_policy import PolicyConfig, QuoteDecision, Streak, decide
from monitor.errors import SourceError
from monitor.ports import BatchQuoteSource, PollResult
from monitor.settings import Settings, SymbolConfig

log = structlog.get_logger("mcap.sources")

Fail = Callable[[PollResult, str, str, str, str], None]


class RealtimeQuotes:
    """Per poll: the quotes of every configured source, and the policy's decision."""

    def __init__(
        self,
        settings: Settings,
        sources: Mapping[str, BatchQuoteSource],
        counters: Counter[str],
        fail: Fail,
    ) -> None:
        src = settings.source
        self.order = tuple(n for n in src.quotes if n == "yahoo" or n in sources)
        self.sources = [sources[n] for n in self.order if n in sources]
        self.settings = settings
        self.counters = counters
        self._fail = fail
        self._streaks: dict[str, Streak] = {}
        # the last poll's, for check / health / metrics
        self.arrived: dict[str, dict[str, Quote]] = {}
        self.errors: dict[str, dict[str, str]] = {}
        self.decisions: dict[str, QuoteDecision] = {}
        self.quote_age: dict[str, float] = {}  # seconds, per source (freshest symbol)

    @property
    def active(self) -> bool:
        """True when a real-time source is configured (else Yahoo alone, as before)."""
        return bool(self.sources)

    def policy(self, cfg: SymbolConfig) -> PolicyConfig:
        src = self.settings.source
        ages = {
            "tencent": timedelta(seconds=src.tencent_max_quote_age),
            "sina": timedelta(seconds=src.sina_max_quote_age),
            "yahoo": timedelta(seconds=cfg.max_quote_age),
        }
        return PolicyConfig(
            order=self.order,
            max_age=ages,
            price_tolerance=src.price_tolerance,
            compare_window=timedelta(seconds=src.compare_window),
            confirm_single=src.confirm_single,
        )

    def fetch(self, symbols: Sequence[str], now: datetime, result: PollResult) -> None:
        """One ``quotes`` call per real-time source (each batches its own requests)."""
        self.arrived = {s: {} for s in symbols}
        self.errors = {s: {} for s in symbols}
        self.decisions = {}
        self.quote_age = {}
        for source in self.sources:
            answers = source.quotes(symbols, now)
            for sym in symbols:
                got = answers.get(sym)
                if isinstance(got, Quote):
                    self.arrived[sym][source.name] = got
                    age = (now - got.time).total_seconds()
                    self.quote_age[source.name] = min(age, self.quote_age.get(source.name, age))
                    continue
                err = got or SourceError("no answer for the symbol", kind="not_found")
                self.errors[sym][source.name] = f"{err.kind}: {err.what}"
                self._fail(result, source.name, sym, err.kind, err.what)

    def add_yahoo(self, quote: Quote, now: datetime) -> None:
        self.arrived.setdefault(quote.symbol, {})["yahoo"] = quote
        age = (now - quote.time).total_seconds()
        self.quote_age["yahoo"] = min(age, self.quote_age.get("yahoo", age))

    def decide(self, cfg: SymbolConfig, now: datetime, result: PollResult) -> QuoteDecision:
        """The policy's decision for one symbol; failures and logs for what it rejected."""
        sym = cfg.symbol
        arrived: dict[str, Quote] = {}
        for name, quote in self.arrived.get(sym, {}).items():
            if quote.currency != cfg.currency:
                self._fail(
                    result,
                    name,
                    sym,
                    "bad_data",
                    f"quote in {quote.currency}, config says {cfg.currency}",
                )
                continue
            arrived[name] = quote
        decision = decide(arrived, now, self.policy(cfg), cfg.exchange, self._streaks.get(sym))
        self._streaks[sym] = decision.streak
        self.decisions[sym] = decision
        self.counters[f"quote_{decision.kind}"] += 1
        for name in decision.stale:
            quote = arrived[name]
            age = int((now - quote.time).total_seconds())
            self._fail(
                result,
                name,
                sym,
                "stale",
                f"quote of {quote.time.isoformat()} is {age} s old during the session",
            )
        if decision.kind == "none" and decision.stale:
            result.stale.append(sym)
        if decision.kind == "disagreement":
            log.warning("quote_disagreement", symbol=sym, reason=decision.reason)
            self._fail(result, "quotes", sym, "disagreement", decision.reason)
        elif decision.kind == "single" and decision.quote is None:
            log.info("quote_single_waiting", symbol=sym, reason=decision.reason)
        return decision
