"""``mcap-monitor backtest`` and ``mcap-monitor report``: rules over history, with a chart."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from monitor import bootstrap, present
from monitor.commands.args import positive_int
from monitor.core.events import event_to_dict
from monitor.errors import ConfigError, InputError
from monitor.history import backtest
from monitor.history.prices import detect_interval
from monitor.history.tapebuild import Bar, EcbHistory, read_yahoo_csv
from monitor.settings import Settings, SymbolConfig


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    b = sub.add_parser(
        "backtest", parents=[common], help="would the rules have fired? run them over history",
        description="Run the configured rules over price, FX and share-count history in a "
        "fresh in-memory state and print the events they would have sent, with a summary "
        "per rule. Downloads through yfinance and the ECB unless --prices/--fx-history "
        "name local files.",
    )  # fmt: skip
    b.add_argument("symbol", help="a configured symbol, e.g. 1810.HK")
    b.add_argument("--from", dest="start", type=_date, required=True, help="first day, YYYY-MM-DD")
    b.add_argument("--to", dest="end", type=_date, required=True, help="last day, YYYY-MM-DD")
    b.add_argument(
        "--interval", choices=list(backtest.INTERVALS), default=None,
        help="bar size (default 1d, evaluated once per day at the close; with --prices: the "
        "file's own bar size, which --interval must match)",
    )  # fmt: skip
    b.add_argument("--prices", type=Path, help="Yahoo history CSV instead of downloading")
    b.add_argument("--fx-history", type=Path, help="ECB eurofxref-hist.csv instead of downloading")
    b.add_argument(
        "--shares", type=positive_int, metavar="N",
        help="count these shares on every day (default: shares_history)",
    )  # fmt: skip
    b.add_argument("--json", action="store_true", help="print one JSON document")
    b.add_argument("--plot", type=Path, help="also draw a chart to this file (.png, .svg or .pdf)")
    b.set_defaults(func=run_backtest)

    r = sub.add_parser(
        "report", parents=[common], help="the backtest view of the daemon's stored history",
        description="Read the state database (never creating it) and print the events "
        "recorded since --since, with a summary per rule, as a backtest prints them.",
    )  # fmt: skip
    r.add_argument(
        "--since", default="30d", help="how far back: 30d, 12h, 2w or YYYY-MM-DD (default 30d)"
    )
    r.add_argument("--state-db", type=Path, help="state database (default: the daemon's)")
    r.add_argument("--json", action="store_true", help="print one JSON document")
    r.add_argument("--plot", type=Path, help="also draw a chart to this file (.png, .svg or .pdf)")
    r.set_defaults(func=run_report)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def parse_since(text: str, now: datetime) -> datetime:
    """``30d``, ``12h``, ``2w`` before ``now``, or a date (midnight UTC)."""
    m = re.fullmatch(r"\s*(\d+)\s*([hdw])\s*", text)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        hours = {"h": 1, "d": 24, "w": 24 * 7}[unit] * n
        return now - timedelta(hours=hours)
    try:
        return datetime.combine(date.fromisoformat(text.strip()), datetime.min.time(), UTC)
    except ValueError:
        raise InputError(
            f"bad --since {text!r}", "--since", "use e.g. 30d, 12h, 2w or 2025-02-01"
        ) from None


def _symbol(settings: Settings, symbol: str) -> SymbolConfig:
    try:
        return settings.symbol(symbol)
    except KeyError:
        known = ", ".join(s.symbol for s in settings.symbols)
        raise ConfigError(
            f"symbol {symbol!r} is not configured", "[[symbols]]",
            f"add it to the config or use one of: {known}",
        ) from None  # fmt: skip


def run_backtest(args: argparse.Namespace) -> int:
    settings = bootstrap.settings_from(args.config)
    sym = _symbol(settings, args.symbol)
    if args.plot:
        from monitor.history.plot import require_matplotlib

        require_matplotlib(args.plot)  # before any download
    if args.end < args.start:
        raise InputError("--to is before --from", f"{args.start}..{args.end}", "swap them")
    progress = backtest.Progress()
    if args.prices is not None:
        bars = list(read_yahoo_csv(args.prices))
        args.interval = _file_interval(args.prices, bars, args.interval)
        prices_src = f"Yahoo history CSV {args.prices.name} ({args.interval} bars)"
    else:
        args.interval = args.interval or "1d"
        from monitor.sources.yahoo import YahooSession, configure_yfinance

        configure_yfinance(bootstrap.state_dir(settings) / "yfinance")
        progress.update("downloading prices", 0, 2)
        with YahooSession(timeout=settings.source.timeout) as session:
            bars = backtest.fetch_yahoo_bars(
                sym.symbol, args.start, args.end, args.interval, session
            )
        prices_src = f"Yahoo chart API ({args.interval} bars, yfinance)"
    ecb: EcbHistory | None = None
    fx_src = "none needed"
    if backtest.fx_quotes(settings, sym):
        if args.fx_history is not None:
            ecb = EcbHistory.from_csv(args.fx_history)
            fx_src = f"ECB reference rates {args.fx_history.name}"
        else:
            import requests

            progress.update("downloading FX history", 1, 2)
            with requests.Session() as http:
                ecb = backtest.fetch_ecb_history(http, settings.fx.ecb_base_url)
            fx_src = "ECB reference rates (eurofxref-hist.zip)"
    progress.done()
    placeholders: list[date] = []
    stale: list[date] = []
    obs = backtest.observations(
        settings, sym, bars, ecb, start=args.start, end=args.end, interval=args.interval,
        shares=args.shares, placeholders=placeholders, stale_fx=stale,
        source="yahoo-csv" if args.prices is not None else "yahoo-history",
    )  # fmt: skip
    sources = {
        "prices": prices_src,
        "fx": fx_src,
        "shares": f"--shares {args.shares}" if args.shares else "config shares_history",
    }
    result = backtest.run(
        settings, obs, symbol=sym.symbol, start=args.start, end=args.end,
        interval=args.interval, sources=sources, placeholders=placeholders,
        now=bootstrap.clock().now().timestamp(), progress=progress,
    )  # fmt: skip
    result.stale_fx, result.max_age_days = stale, float(settings.fx.max_age_days)
    try:
        if args.json:
            print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        else:
            print_human(result.to_json(), sym)
        for line in result.skipped:
            print(f"warning: {line}", file=sys.stderr)
        for day in placeholders:
            print(f"warning: skipped placeholder bar {day} (O=H=L=C, volume 0)", file=sys.stderr)
        if args.plot:
            from monitor.history.plot import plot_backtest

            plot_backtest(result, args.plot, sym.display_name)
            print(f"wrote chart {args.plot}", file=sys.stderr)
    finally:
        result.store.close()
    return 0


def run_report(args: argparse.Namespace) -> int:
    settings = bootstrap.settings_from(args.config)
    now = bootstrap.clock().now()
    since = parse_since(args.since, now)
    if args.plot:
        from monitor.history.plot import require_matplotlib

        require_matplotlib(args.plot)
    store = bootstrap.open_store(settings, args.state_db, read_only=True)
    print(f"state db: {store.where}", file=sys.stderr)
    try:
        series = backtest.rule_series(settings, store, since)
        events = sorted((e for s in series for e in s.events), key=lambda e: e.time)
        doc: dict[str, object] = {
            "since": since.isoformat(),
            "events": [event_to_dict(e) for e in events],
            "summary": [backtest.summarise(s) for s in series],
        }
        if args.json:
            print(json.dumps(doc | {"state_db": str(store.path)}, indent=2, ensure_ascii=False))
        else:
            print(f"Report: events recorded since {since:%Y-%m-%d %H:%M} UTC ({args.since})")
            print_human(doc, None)
            if not events:
                print(_since_hint(since, now))
        if args.plot:
            from monitor.history.plot import plot_report

            plot_report(settings, store, args.plot, since)
            print(f"wrote chart {args.plot}", file=sys.stderr)
    finally:
        store.close()
    return 0


def _since_hint(since: datetime, now: datetime) -> str:
    """A hint at windows further back than the one asked for (never the same one again)."""
    wider = [w for w in ("90d", "365d", "1825d") if parse_since(w, now) < since]
    if not wider:
        return (
            "hint: nothing was recorded in this window; an earlier --since date looks further back"
        )
    return "hint: " + " or ".join(f"--since {w}" for w in wider[:2]) + " looks further back"


def print_human(doc: dict[str, object], sym: SymbolConfig | None) -> None:
    """The timeline, then one summary line per rule, then data warnings."""
    from monitor.core.events import event_from_dict

    if sym is not None:
        print(
            f"Backtest {sym.symbol} {sym.display_name} {doc['from']} to {doc['to']} "
            f"({doc['interval']} bars)"
        )
        sources = doc["sources"]
        assert isinstance(sources, dict)
        print("sources: " + "; ".join(f"{k}: {v}" for k, v in sources.items()))
    events = doc["events"]
    assert isinstance(events, list)
    print()
    print(present.EVENT_HEADER)
    for item in events:
        print(present.event_line(event_from_dict(item)))
    if not events:
        print("(no events)")
    print()
    print("Summary")
    summary = doc["summary"]
    assert isinstance(summary, list)
    for item in summary:
        print(summary_line(item))
    warnings = doc.get("warnings")
    if isinstance(warnings, dict) and warnings.get("stale_fx_days"):
        stale = [date.fromisoformat(str(d)) for d in warnings["stale_fx_days"]]
        print(stale_fx_line(stale, float(warnings["fx_max_age_days"])))
    if isinstance(warnings, dict) and warnings.get("placeholder_bars"):
        days = ", ".join(str(d) for d in warnings["placeholder_days"])
        print(
            f"data: {warnings['placeholder_bars']} placeholder bar(s) skipped "
            f"(O=H=L=C, volume 0): {days}"
        )


def stale_fx_line(days: list[date], max_age: float) -> str:
    """The summary line about days whose newest ECB rate was too old to use."""
    span = f"{days[0]}" if len(days) == 1 else f"{days[0]} to {days[-1]}"
    return (
        f"fx: on {len(days)} day(s) ({span}) the newest ECB rate was older than "
        f"fx.max_age_days ({max_age:g} days): rules needing it were not evaluated on them"
    )


def _file_interval(path: Path, bars: list[Bar], asked: str | None) -> str:
    """The bar size of a prices file; an ``InputError`` when ``--interval`` says otherwise."""
    found = detect_interval(bars)
    if asked is None:
        return found or "1d"
    if found is not None and found != asked:
        raise InputError(
            f"--interval {asked} but the prices file holds {found} bars",
            str(path),
            f"use --interval {found} (or leave it out)",
        )
    return asked


def summary_line(item: dict[str, object]) -> str:
    """``hkd-1t  HK$1 trillion: first touched 2025-02-04, first crossed above ...``."""
    head = f"{item['rule']:<14} {item['label']!s:<16}"
    if not item.get("observations"):
        return f"{head} not evaluated on any bar ({item.get('unevaluated', 0)} skipped)"
    parts = [
        f"first touched {item['first_touched_above'] or '-'}",
        f"first crossed above {item['first_crossed_above'] or '-'}",
        f"above on {item['days_above']}/{item['days']} days",
    ]
    cur = str(item["currency"])
    value = present.money_long(Decimal(str(item["last_value"])), cur)
    dist = present.percent(Decimal(str(item["distance"])))
    parts.append(f"now {item['position']} at {value} ({dist} from the line)")
    if item.get("unevaluated"):
        parts.append(f"{item['unevaluated']} bar(s) not evaluated")
    return f"{head} " + ", ".join(parts)
