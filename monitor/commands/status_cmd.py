"""``mcap-monitor status`` and ``mcap-monitor events``: read the state database."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from monitor import bootstrap, present
from monitor.core.events import event_from_dict
from monitor.readings import UNREADABLE, rule_status
from monitor.settings import Settings
from monitor.store import Store


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "status",
        parents=[common],
        help="each rule's state and distance to its line",
        description="Read the state database (never creating it) and print, per rule: its "
        "state and since when, the last value with its as-of time, the distance to the line "
        "and the price that reaches it; then the outbox counts. The database read is named on "
        "stderr.",
    )
    p.add_argument("--state-db", type=Path, help="state database (default: the daemon's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=status)
    e = sub.add_parser(
        "events",
        parents=[common],
        help="the history of recorded events",
        description="Print the recorded events, newest last, from the state database (never "
        "creating it); the database read is named on stderr.",
    )
    e.add_argument("--state-db", type=Path, help="state database (default: the daemon's)")
    e.add_argument("--limit", type=int, default=50, help="newest N events (default 50)")
    e.add_argument("--json", action="store_true", help="one JSON object per line")
    e.set_defaults(func=events)


def _open(settings: Settings, explicit: Path | None) -> Store:
    store = bootstrap.open_store(settings, explicit, read_only=True)
    print(f"state db: {store.where}", file=sys.stderr)
    return store


def quote_text(quote: dict[str, object] | None) -> str:
    """``quote: tencent, confirmed by sina`` / ``quote: sina, single source``."""
    if quote is None:
        return ""
    by = quote["confirmed_by"]
    if quote["decision"] == "confirmed" and isinstance(by, list) and by:
        return f"quote: {quote['source']}, confirmed by {' and '.join(by)}"
    if quote["decision"] == "single":
        return f"quote: {quote['source']}, single source"
    return f"quote: {quote['source']}, {quote['decision']}"


def share_count_warnings(settings: Settings, today: date) -> list[str]:
    """Configured share counts older than ``shares_max_age_days`` (check the latest filing)."""
    out = []
    for sym in settings.symbols:
        if sym.shares_as_of is None:
            continue
        age = (today - sym.shares_as_of).days
        if age > sym.shares_max_age_days:
            out.append(
                f"{sym.symbol}: share count {sym.shares:,} is {age} days old "
                f"(as of {sym.shares_as_of}, {sym.shares_source}); check the latest exchange "
                "filing and update shares / shares_as_of"
            )
    return out


def quote_health(raw: str | None) -> list[str]:
    """The daemon's last degraded quotes / share counts (sources disagree, shares mismatch)."""
    if not raw:
        return []
    try:
        data = json.loads(raw)
        degraded = dict(data.get("degraded") or {})
        when = str(data.get("time", ""))[:19]
    except (ValueError, TypeError, AttributeError):
        return []
    return [f"{sym}: {why} (daemon's poll of {when} UTC)" for sym, why in degraded.items()]


def once_a_day(warnings: list[str], today: date) -> list[str]:
    """The warnings not yet shown today (a stamp per warning in the user's cache dir; the
    state db is never written). ``--json`` always carries every warning."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    stamp = Path(base) / "mcap-monitor" / "status-warnings"
    key = today.isoformat()
    try:
        seen = stamp.read_text(encoding="utf-8").splitlines()
    except OSError:
        seen = []
    shown = {line.split(" ", 1)[1] for line in seen if line.startswith(key + " ")}
    fresh = [w for w in warnings if w not in shown]
    if fresh:
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            lines = [f"{key} {w}" for w in sorted(shown | set(fresh))]
            stamp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        except OSError:
            pass  # no cache dir: warn every time rather than never
    return fresh


def status_line(item: dict[str, object]) -> str:
    if item.get("state") == "unknown":
        return f"{item['rule']:<14} {item['symbol']:<9} unknown (no observation yet)"
    if item.get("state") == UNREADABLE:
        return f"{item['rule']:<14} {item['symbol']:<9} unreadable (stored rule state)"
    cur = str(item["currency"])

    def shown(key: str, render: Callable[[Decimal], str]) -> str:
        text = str(item[key])
        return text if text == UNREADABLE else render(Decimal(text))

    value = shown("value", lambda d: present.money_long(d, cur))
    threshold = shown("threshold", lambda d: present.money_short(d, cur))
    dist = shown("distance", present.percent)
    since = datetime.fromisoformat(str(item["since"])).strftime("%Y-%m-%d %H:%M")
    line = (
        f"{item['rule']:<14} {item['symbol']:<9} {item['state']:<6} since {since}  "
        f"{value} as of {item['as_of']} ({dist} vs {threshold})"
    )
    if "needs_price" in item:
        verb = "crosses below under" if item["state"] == "above" else "needs"
        needs = present.price(Decimal(str(item["needs_price"])), str(item["price_currency"]))
        line += f", {verb} {needs}"
    elif item.get("price") == UNREADABLE:
        line += ", price unreadable"
    quote = item.get("quote")
    if isinstance(quote, dict) and quote_text(quote):
        line += f"; {quote_text(quote)}"
    return line


def status(args: argparse.Namespace) -> int:
    settings = bootstrap.settings_from(args.config)
    store = _open(settings, args.state_db)
    try:
        items = rule_status(settings, store)
        counts = store.outbox_counts()
        degraded = quote_health(store.meta("quote_health"))
        leader = store.leader()
    finally:
        store.close()
    warnings = share_count_warnings(settings, date.today()) + degraded
    if args.json:
        doc = {"state_db": store.where, "rules": items, "outbox": counts}
        if leader is not None:
            doc["leader"] = leader
        print(json.dumps(doc | {"warnings": warnings}, indent=2))
        return 0
    for item in items:
        try:
            print(status_line(item))
        except ArithmeticError:  # a stored value beyond what figures render: show it raw
            print(f"{item['rule']:<14} {item['symbol']:<9} {item.get('state')} (raw: {item})")
    for warning in once_a_day(warnings, date.today()):
        print(f"warning: {warning}")
    print(f"outbox: {counts['pending']} pending, {counts['dead']} dead")
    if leader is not None:
        who = leader["holder"] or "none yet"
        state = "leading" if leader["live"] else "not running (no instance leads now)"
        print(f"leader: {who}, {state}, epoch {leader['epoch']} since {leader['since']}")
    return 0


def events(args: argparse.Namespace) -> int:

    settings = bootstrap.settings_from(args.config)
    store = _open(settings, args.state_db)
    try:
        rows = store.events(limit=args.limit)
    finally:
        store.close()
    if not rows and not args.json and not store.unreadable_events:
        print("no events yet")
    for row in rows:
        try:
            print(json.dumps(row) if args.json else present.event_line(event_from_dict(row)))
        except (ArithmeticError, ValueError, KeyError, TypeError):
            print(f"(stored event not renderable, raw) {json.dumps(row)}")
    if store.unreadable_events:
        print(f"({store.unreadable_events} stored event(s) unreadable, left out)", file=sys.stderr)
    return 0
