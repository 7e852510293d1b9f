"""The quote policy: which of the quotes that arrived in one poll is evaluated, and why.

Pure: no I/O, no clock (``now`` comes in). Per symbol and poll, the quotes of every source
that answered are filtered (a quote older than its source's ``max_age`` of trading time is
stale), then one decision is taken:

- ``confirmed``: two independent sources agree within ``price_tolerance`` at comparable times
  (quote times at most ``compare_window`` apart): evaluate on the freshest of them;
- ``single``: one fresh source (or none comparable with it): evaluate, saying so; when more
  than one source is configured, only once the same source has been alone for
  ``confirm_single`` polls in a row (a crossing seen by one source waits like ``confirm``);
- ``disagreement``: comparable fresh quotes that do not agree: nothing is evaluated;
- ``none``: no fresh quote at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from monitor.core.quality import is_stale
from monitor.core.quote import Quote

# failure kinds (``SourceFailure.kind``) that degrade /healthz without failing it
DEGRADED_KINDS = frozenset({"disagreement", "shares_mismatch"})

DecisionKind = Literal["confirmed", "single", "disagreement", "none"]

# Regular sessions assumed for a quote whose source does not report one (exchange MIC ->
# local open, close); weekends are closed. Holidays are not known here: on one, yesterday's
# close is stale and nothing is evaluated, which changes nothing.
DEFAULT_SESSIONS = {"XHKG": (time(9, 30), time(16, 0))}


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """The ``[source]`` keys the policy needs."""

    order: tuple[str, ...]  # preference, best first
    max_age: Mapping[str, timedelta]  # per source
    price_tolerance: Decimal = Decimal("0.005")
    compare_window: timedelta = timedelta(seconds=120)
    confirm_single: int = 2


@dataclass(frozen=True, slots=True)
class Streak:
    """Consecutive polls in which only ``source`` was fresh (what ``confirm_single`` counts)."""

    source: str = ""
    polls: int = 0


@dataclass(frozen=True, slots=True)
class QuoteDecision:
    """One symbol's decision in one poll."""

    kind: DecisionKind
    quote: Quote | None  # the quote to evaluate; None: nothing is evaluated
    confirmed_by: tuple[str, ...] = ()
    dissent: tuple[str, ...] = ()  # fresh, comparable sources that disagree
    stale: tuple[str, ...] = ()
    fresh: tuple[Quote, ...] = ()
    streak: Streak = field(default_factory=Streak)
    reason: str = ""

    @property
    def source(self) -> str:
        return "" if self.quote is None else self.quote.source


def with_session(quote: Quote, now: datetime, exchange: str) -> Quote:
    """``quote`` with the day's regular session filled in when its source reports none."""
    if quote.session_start is not None and quote.session_end is not None:
        return quote
    hours = DEFAULT_SESSIONS.get(exchange)
    if hours is None:
        return quote
    tz = ZoneInfo(quote.exchange_tz)
    local = now.astimezone(tz)
    if local.weekday() >= 5:
        return quote
    start = datetime.combine(local.date(), hours[0], tz)
    end = datetime.combine(local.date(), hours[1], tz)
    return replace(quote, session_start=start, session_end=end)


def gap(a: Decimal, b: Decimal) -> Decimal:
    """Relative price difference of ``a`` from ``b``."""
    return abs(a - b) / b


def _comparable(a: Quote, b: Quote, window: timedelta) -> bool:
    return abs(a.time - b.time) <= window


def decide(
    quotes: Mapping[str, Quote],
    now: datetime,
    cfg: PolicyConfig,
    exchange: str,
    streak: Streak | None = None,
) -> QuoteDecision:
    """Decide on the quotes (by source name) that arrived for one symbol in one poll."""
    rank = {name: i for i, name in enumerate(cfg.order)}
    fresh: list[Quote] = []
    stale: list[str] = []
    for name in sorted(quotes, key=lambda n: rank.get(n, len(rank))):
        quote = quotes[name]
        max_age = cfg.max_age.get(name, timedelta(minutes=30))
        if is_stale(with_session(quote, now, exchange), now, max_age, exchange):
            stale.append(name)
        else:
            fresh.append(quote)
    if not fresh:
        why = f"no fresh quote (stale: {', '.join(stale)})" if stale else "no quote"
        return QuoteDecision("none", None, stale=tuple(stale), reason=why)
    # freshest first, ties by preference
    ordered = sorted(fresh, key=lambda q: (-q.time.timestamp(), rank.get(q.source, len(rank))))
    stale_t, fresh_t = tuple(stale), tuple(ordered)
    for cand in ordered:
        peers = [
            q for q in fresh if q.source != cand.source and _comparable(cand, q, cfg.compare_window)
        ]
        agree = [q.source for q in peers if gap(q.price, cand.price) <= cfg.price_tolerance]
        if agree:
            dissent = tuple(q.source for q in peers if q.source not in agree)
            return QuoteDecision("confirmed", cand, tuple(agree), dissent, stale_t, fresh_t)
    best = ordered[0]
    if any(_comparable(a, b, cfg.compare_window) for a in fresh for b in fresh if a is not b):
        prices = ", ".join(f"{q.source} {q.price}" for q in ordered)
        return QuoteDecision(
            "disagreement",
            None,
            dissent=tuple(q.source for q in ordered),
            stale=stale_t,
            fresh=fresh_t,
            reason=f"sources disagree by more than {cfg.price_tolerance:.1%}: {prices}",
        )
    prior = streak or Streak()
    polls = prior.polls + 1 if prior.source == best.source else 1
    new = Streak(best.source, polls)
    if len(cfg.order) > 1 and polls < cfg.confirm_single:
        return QuoteDecision(
            "single",
            None,
            streak=new,
            reason=f"only {best.source} is fresh: waiting for {cfg.confirm_single} polls in a "
            f"row (confirm_single), {polls} so far",
            stale=stale_t,
            fresh=fresh_t,
        )
    return QuoteDecision("single", best, streak=new, stale=stale_t, fresh=fresh_t)
