"""``mcap-monitor check``: one live poll cycle, validated and evaluated, nothing notified.

Exit 0 when every input was fresh and valid, 1 when a source failed (one line saying which and
why), 2 for configuration errors (including a symbol Yahoo does not know).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from monitor import bootstrap, present
from monitor.core.evaluate import RuleReading, Skipped, distance, read_rule
from monitor.core.shares import shares_on
from monitor.core.valuation import Observation, valuate
from monitor.errors import ConfigError
from monitor.ports import PollResult
from monitor.service import build_rule
from monitor.settings import Settings

CHECK_TIMEOUT = 5.0  # seconds per request: offline, check must fail in seconds


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "check",
        parents=[common],
        help="one live poll: fetch, validate, evaluate and print (no alerts)",
        description="Fetch quotes, FX rates, share counts and the top-N cutoff once, evaluate "
        "every rule without notifying, and print the result. Exit 0 when all inputs were fresh "
        "and valid, 1 when a source failed, 2 for configuration errors.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--timeout",
        type=float,
        default=CHECK_TIMEOUT,
        help=f"seconds per request (default {CHECK_TIMEOUT:g})",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monitor.daemon.logs import configure_logging  # structlog: only when needed

    configure_logging(args.log_level if args.debug else "error")
    settings = bootstrap.settings_from(args.config)
    source = bootstrap.live_source(
        settings,
        state_dir=bootstrap.state_dir(settings),
        timeout=min(args.timeout, settings.source.timeout),
    )
    symbols = [s.symbol for s in settings.symbols]
    now = bootstrap.clock().now()
    result = source.poll(symbols, now)
    for failure in result.failures:
        if failure.kind == "not_found":
            raise ConfigError(failure.message, f"[[symbols]] symbol = {failure.subject!r}")
    report = build_report(settings, source, result, now)
    problem = first_problem(result)
    if args.json:
        # the JSON carries every failure; one ``Error:`` line on stderr for scripts
        print(json.dumps(report, indent=2, ensure_ascii=False))
        if problem:
            print(f"Error: {problem}", file=sys.stderr)
    else:
        # the table on stdout, each failure once on stderr: every reason is printed once
        table = render(report)
        if table:
            print("\n".join(table))
        for line in problem_lines(result):
            print(line, file=sys.stderr)
    return 1 if problem else 0


def problem_lines(result: PollResult) -> list[str]:
    """The text report's stderr: one ``Error:`` line per failed source, ``warning:`` for a
    share-count mismatch, or the blocked FX pair when no source failed."""
    lines = [
        f"{'warning' if f.kind == 'shares_mismatch' else 'Error'}: "
        f"{f.source} {f.subject}: {f.message}"
        for f in result.failures
    ]
    if not any(f.kind != "shares_mismatch" for f in result.failures) and result.blocked_pairs:
        pair, why = next(iter(result.blocked_pairs.items()))
        lines.append(f"Error: fx {pair}: {why}")
    return lines


def first_problem(result: PollResult) -> str:
    """One line naming the first failed source and why; empty when all was fresh and valid."""
    failures = [f for f in result.failures if f.kind != "shares_mismatch"]  # a warning
    if failures:
        f = failures[0]
        more = len(failures) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        return f"{f.source} {f.subject}: {f.message}{tail}"
    if result.blocked_pairs:
        pair, why = next(iter(result.blocked_pairs.items()))
        return f"fx {pair}: {why}"
    return ""


def _rule_line(rule_cfg: Any, rr: RuleReading | Skipped, obs: Observation) -> dict[str, Any]:
    item: dict[str, Any] = {"rule": rule_cfg.id, "label": rule_cfg.label}
    if isinstance(rr, Skipped):
        item.update(state="not evaluated", reason=rr.reason)
        return item
    reading = rr.reading
    currency = "USD" if rule_cfg.top_n is not None else str(rule_cfg.currency)
    dist = distance(reading.value, reading.threshold)
    state = "above" if reading.value >= reading.threshold else "below"
    target = present.money_short(reading.threshold, currency)
    if state == "above":
        text = f"{present.percent(dist)} above {target}"
    else:
        # the value is proportional to the price: the price that reaches the line
        needed = (obs.price * reading.threshold / reading.value).quantize(Decimal("0.01"))
        text = f"needs {present.price(needed, obs.currency)} for {target} ({present.percent(dist)})"
        item["needs_price"] = str(needed)
    item.update(
        state=state,
        value=str(reading.value),
        currency=currency,
        threshold=str(reading.threshold),
        threshold_source=rr.threshold_source,
        distance=str(dist),
        text=text,
        rank=rr.rank,
    )
    return item


def build_report(
    settings: Settings, source: Any, result: PollResult, now: datetime
) -> dict[str, Any]:
    """Everything ``check`` shows, JSON-ready (money as exact decimal strings)."""
    symbols: list[dict[str, Any]] = []
    for obs in result.observations:
        cfg = settings.symbol(obs.symbol)
        day = obs.time.astimezone().date()
        assert obs.shares is not None
        val = valuate(obs, obs.shares, day)
        caps: dict[str, Any] = {obs.currency: {"value": str(val.market_cap.amount)}}
        for cur in settings.fx.currencies:
            if cur == obs.currency:
                continue
            try:
                conv = val.value_in(cur)
            except LookupError:
                caps[cur] = {
                    "value": None,
                    "reason": result.blocked_pairs.get(f"{obs.currency}/{cur}", "no FX rate"),
                }
                continue
            caps[cur] = {
                "value": str(conv.money.amount),
                "rates": [
                    {
                        "pair": r.pair,
                        "rate": str(r.rate),
                        "source": r.source,
                        "as_of": r.as_of.isoformat(),
                    }
                    for r in conv.rates
                ],
            }
        rules = [
            _rule_line(rc, read_rule(build_rule(rc), val), obs)
            for rc in settings.rules
            if rc.symbol == obs.symbol
        ]
        detail = source.details.get(obs.symbol)
        ranking = obs.ranking
        symbols.append(
            {
                "symbol": obs.symbol,
                "name": cfg.display_name,
                "price": str(obs.price),
                "currency": obs.currency,
                "day_high": None if obs.day_high is None else str(obs.day_high),
                "quote_time": obs.time.isoformat(),
                "delayed": obs.delayed,
                "shares": obs.shares.total,
                "shares_source": obs.shares.source,
                "shares_as_of": obs.shares.as_of.isoformat() if obs.shares.as_of else None,
                "market_cap": caps,
                "ranking": None
                if ranking is None
                else {
                    "source": ranking.source,
                    "as_of": ranking.as_of.isoformat() if ranking.as_of else None,
                    "cutoffs": {
                        str(n): str(ranking.cutoff(n))
                        for n in sorted({r.top_n for r in settings.rules if r.top_n})
                        if ranking.cutoff(n) is not None
                    },
                },
                "rules": rules,
                "warnings": list(detail.warnings) if detail else [],
            }
        )
    return {
        "time": now.isoformat(),
        "ok": not first_problem(result),
        "symbols": symbols,
        "failures": [
            {"source": f.source, "subject": f.subject, "kind": f.kind, "message": f.message}
            for f in result.failures
        ],
        "stale": list(result.stale),
        "blocked_pairs": dict(result.blocked_pairs),
        "warnings": list(source.warnings),
        "quotes": quote_report(settings, source, result, now),
    }


def quote_report(
    settings: Settings, source: Any, result: PollResult, now: datetime
) -> dict[str, Any]:
    """Per symbol: every source's price and quote age, the policy's decision, share counts."""
    feed = getattr(source, "realtime", None)
    if feed is None or not feed.active:
        return {}
    out: dict[str, Any] = {}
    for cfg in settings.symbols:
        sym = cfg.symbol
        decision = feed.decisions.get(sym)
        detail = source.details.get(sym)
        sources: dict[str, Any] = {}
        for name in feed.order:
            q = feed.arrived.get(sym, {}).get(name)
            if q is None:
                failed = [f for f in result.failures if (f.source, f.subject) == (name, sym)]
                why = f"{failed[0].kind}: {failed[0].message}" if failed else "no quote"
                error = feed.errors.get(sym, {}).get(name, why)
                sources[name] = {"price": None, "error": error}
                continue
            sources[name] = {
                "price": str(q.price),
                "currency": q.currency,
                "quote_time": q.time.isoformat(),
                "age_seconds": round((now - q.time).total_seconds()),
                "delayed": q.delayed,
                "stale": decision is not None and name in decision.stale,
                "total_shares": q.total_shares,
            }
        configured = shares_on(cfg, now.astimezone(ZoneInfo(cfg.timezone)).date())
        implied = None if detail is None else detail.implied_shares
        out[sym] = {
            "decision": None if decision is None else decision.kind,
            "used": None if decision is None or decision.quote is None else decision.source,
            "confirmed_by": [] if decision is None else list(decision.confirmed_by),
            "reason": "" if decision is None else decision.reason,
            "sources": sources,
            "shares": {
                "configured": configured.total,
                "configured_source": configured.source,
                "configured_as_of": configured.as_of.isoformat() if configured.as_of else None,
                "used": None if detail is None or detail.shares is None else detail.shares.total,
                "yahoo_implied": None if implied is None else round(implied),
                **{
                    name: s["total_shares"]
                    for name, s in sources.items()
                    if s.get("total_shares") is not None
                },
            },
        }
    return out


def render_quotes(quotes: dict[str, Any]) -> list[str]:
    """The quote policy's part of the table: sources side by side, decision, share counts."""
    lines: list[str] = []
    for sym, q in quotes.items():
        what = q["decision"] or "no decision"
        if q["used"]:
            what += f" on {q['used']}"
        if q["confirmed_by"]:
            what += f", confirmed by {', '.join(q['confirmed_by'])}"
        if q["reason"]:
            what += f" ({q['reason']})"
        lines.append(f"quotes {sym}: {what}")
        for name, s in q["sources"].items():
            if s["price"] is None:
                lines.append(f"  {name:<8} -  ({s['error']})")
                continue
            when = present.local_time(datetime.fromisoformat(s["quote_time"]), "Asia/Hong_Kong")
            flags = "".join(f", {flag}" for flag in ("delayed", "stale") if s.get(flag))
            lines.append(
                f"  {name:<8} {present.price(Decimal(s['price']), s['currency'])}  at {when}, "
                f"{s['age_seconds']} s old{flags}"
            )
        sh = q["shares"]
        counts = [f"configured {sh['configured']:,} (as of {sh['configured_as_of']})"]
        counts += [
            f"{k} {v:,}" for k, v in sh.items() if k in ("tencent", "sina") and v is not None
        ]
        if sh["yahoo_implied"] is not None:
            counts.append(f"yahoo implied {sh['yahoo_implied']:,}")
        if sh["used"] is not None:
            counts.append(f"used {sh['used']:,}")
        lines.append("  shares   " + " · ".join(counts))
    return lines


def render(report: dict[str, Any]) -> list[str]:
    """The table form of a report."""
    lines: list[str] = []
    for s in report["symbols"]:
        cur = s["currency"]
        when = present.local_time(datetime.fromisoformat(s["quote_time"]), "Asia/Hong_Kong")
        delayed = " (delayed)" if s["delayed"] else ""
        lines.append(f"{s['name']} ({s['symbol']})")
        lines.append(f"  price       {present.price(Decimal(s['price']), cur)} at {when}{delayed}")
        lines.append(f"  shares      {present.shares(s['shares'])} ({s['shares_source']})")
        for code, cap in s["market_cap"].items():
            if cap["value"] is None:
                lines.append(f"  market cap  {code}: not available ({cap['reason']})")
                continue
            text = present.money_long(Decimal(cap["value"]), code)
            rates = "; ".join(
                f"{r['pair']} {r['rate']} [{r['source']}, {r['as_of'][:16]}]"
                for r in cap.get("rates", [])
            )
            lines.append(f"  market cap  {text}" + (f"  via {rates}" if rates else ""))
        if s["ranking"] is not None:
            r = s["ranking"]
            for n, cut in r["cutoffs"].items():
                lines.append(
                    f"  top-{n} cutoff {present.money_long(Decimal(cut), 'USD')} "
                    f"[{r['source']}, {(r['as_of'] or '')[:16]}]"
                )
        for rule in s["rules"]:
            if rule["state"] == "not evaluated":
                lines.append(f"  rule {rule['rule']:<14} not evaluated: {rule['reason']}")
                continue
            rank = f", rank {rule['rank']}" if rule.get("rank") else ""
            lines.append(f"  rule {rule['rule']:<14} {rule['state']:<5} {rule['text']}{rank}")
        lines.extend(f"  warning: {w}" for w in s["warnings"])
    lines.extend(f"warning: {w}" for w in report["warnings"])
    lines.extend(render_quotes(report.get("quotes") or {}))
    return lines  # failures go to stderr (``problem_lines``), not into the table
