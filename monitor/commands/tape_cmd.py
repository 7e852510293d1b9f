"""``mcap-monitor tape build``: write a tape from price and FX history files."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from monitor import bootstrap
from monitor.commands.args import positive_int
from monitor.errors import InputError
from monitor.history.prices import detect_interval
from monitor.history.tapebuild import EcbHistory, build_daily_tape, read_yahoo_csv


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser("tape", parents=[common], help="build tapes from history files")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser(
        "build",
        parents=[common],
        help="daily tape from a Yahoo history CSV and ECB rates",
        description="Write one tape row per daily bar (close as price, high as day high) with "
        "the ECB rates of its date; rates older than fx.max_age_days are left empty (and the "
        "days counted), placeholder bars are skipped.",
    )
    b.add_argument("--prices", type=Path, required=True, help="Yahoo history CSV (daily bars)")
    b.add_argument("--fx-history", type=Path, help="ECB eurofxref-hist.csv")
    b.add_argument(
        "--shares", type=positive_int, metavar="N", help="shares counted (written to every row)"
    )
    b.add_argument(
        "--symbol", default="1810.HK", help="symbol written to every row (default 1810.HK)"
    )
    b.add_argument("--currency", default="HKD", help="ISO 4217 code of the prices (default HKD)")
    b.add_argument(
        "--timezone",
        default="Asia/Hong_Kong",
        help="exchange time zone; rows are stamped 16:00 there (default Asia/Hong_Kong)",
    )
    b.add_argument("--from", dest="start", type=date.fromisoformat, help="first day, YYYY-MM-DD")
    b.add_argument("--to", dest="end", type=date.fromisoformat, help="last day, YYYY-MM-DD")
    b.add_argument("-o", "--output", type=Path, required=True, help="tape CSV to write")
    b.set_defaults(func=build)


def build(args: argparse.Namespace) -> int:
    max_age = float(bootstrap.settings_from(args.config).fx.max_age_days)
    bars = list(read_yahoo_csv(args.prices))
    found = detect_interval(bars)
    if found not in (None, "1d"):
        # a tape row is one trading day: an intraday file would make a tape replay rejects
        raise InputError(
            f"the prices file holds {found} bars; tape build needs daily bars",
            str(args.prices),
            "download daily history (interval 1d), or run backtest --interval "
            f"{found} on this file",
        )
    ecb = EcbHistory.from_csv(args.fx_history) if args.fx_history else None
    tmp = args.output.with_name(args.output.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        result = build_daily_tape(
            iter(bars),
            ecb,
            out,
            symbol=args.symbol,
            currency=args.currency,
            shares=args.shares,
            timezone=args.timezone,
            start=args.start,
            end=args.end,
            max_age_days=max_age,
        )
    tmp.replace(args.output)
    for day in result.placeholders or []:
        print(f"warning: skipped placeholder bar {day} (O=H=L=C, volume 0)", file=sys.stderr)
    stale = result.stale_fx or []
    if stale:
        span = f"{stale[0]}" if len(stale) == 1 else f"{stale[0]} to {stale[-1]}"
        print(
            f"warning: FX left empty on {len(stale)} row(s) ({span}): the newest ECB rate was "
            f"older than fx.max_age_days ({max_age:g} days)",
            file=sys.stderr,
        )
    print(f"wrote {result.rows} rows to {args.output}", file=sys.stderr)
    return 0
