"""``mcap-monitor replay``: feed a recorded tape through the engine and print the events."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import IO

from monitor import bootstrap, present
from monitor.core.events import Event, payload_text
from monitor.core.valuation import Observation
from monitor.errors import ConfigError
from monitor.service import Engine, describe_skips
from monitor.settings import Settings
from monitor.sources.tape import TapeCheck, TapeReader, quality_filtered
from monitor.sources.tape_block import TapeBlock
from monitor.store import Store
from monitor.store.replay import ReplayStore


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "replay",
        parents=[common],
        help="replay a recorded tape through the rules",
        description="Replay a CSV tape (default: the bundled Xiaomi 2025 tape) oldest first "
        "and print the events it produces.",
    )
    p.add_argument("tape", nargs="?", type=Path, help="tape CSV (default: bundled Xiaomi tape)")
    p.add_argument("--json", action="store_true", help="one JSON object per event per line")
    p.add_argument(
        "--state-db", type=Path, help="state database to continue from (default: fresh, in memory)"
    )
    p.add_argument(
        "--notify", action="store_true", help="deliver the events through the configured sinks"
    )
    p.add_argument("--plot", type=Path, help="also draw a chart to this file (.png, .svg or .pdf)")
    p.add_argument(
        "--no-quality-checks",
        action="store_true",
        help="evaluate every row, even a one-row price spike the live checks would hold back "
        "(for a tape you trust)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = bootstrap.settings_from(args.config)
    tape_path: Path = args.tape or bootstrap.BUNDLED_TAPE
    if args.plot:
        from monitor.history.plot import require_matplotlib

        require_matplotlib(args.plot)
        if not args.plot.absolute().parent.is_dir():
            raise ConfigError(
                f"no directory {args.plot.absolute().parent} for the chart",
                "--plot",
                "create it first or give another path",
            )
    db = None if args.state_db is None else args.state_db.absolute()
    # alerts queued from a replay carry "mode": "replay" and are marked as such in every sink
    store = (ReplayStore if args.notify else Store).open(db)
    # the events are written here as they are found, and printed once the whole tape went
    # in: a bad row late in a tape prints nothing but its error, and a long replay never
    # holds its events in memory
    spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed below)
    try:
        engine = Engine(
            settings,
            store,
            record_observations=args.state_db is not None or args.plot is not None,
            # replayed history becomes alerts only when asked to, one message per event
            notify=args.notify,
            baseline_summary=False,
            # a fresh in-memory store is thrown away: only the chart and deliveries read it
            store_events=db is not None or args.plot is not None or args.notify,
        )
        symbols = {s.symbol for s in settings.symbols}
        reader = TapeReader(tape_path, symbols=symbols)
        held: Counter[str] = Counter()
        now = bootstrap.clock().now().timestamp()
        # plainly written chunks come whole (numpy), the rest row by row: the same rows
        rows = checked(reader.blocks(), settings, held, args, store.last_prices())
        emit = spooler(spool, args.json)
        if args.state_db is None:
            result = engine.process(rows, now, emit=emit)
        else:
            # into a database: a bad row writes nothing. The whole tape is validated in a
            # second process; until it is, the batches stay in one transaction; then they
            # commit in bounded batches so a daemon beside us keeps its write lock
            result = engine.process_batched(
                rows, now, ready=TapeCheck(tape_path, symbols), emit=emit
            )
        for symbol, n in sorted(held.items()):
            print(
                f"warning: {n} row(s) of {symbol} held back as price spikes (over max_jump, "
                "not confirmed by the next row); --no-quality-checks evaluates them",
                file=sys.stderr,
            )
        if not args.json and result.emitted:
            print(present.EVENT_HEADER)
        sys.stdout.flush()
        spool.seek(0)
        shutil.copyfileobj(spool, sys.stdout)
        sys.stdout.flush()
        for line in describe_skips(result.skipped):
            print(f"warning: {line}", file=sys.stderr)
        if result.already_seen:
            print(
                f"note: {result.already_seen} row(s) at or before the state db's last "
                "observation were already processed and skipped",
                file=sys.stderr,
            )
        print(
            f"{result.observations} observation(s) from {tape_path.name}, "
            f"{result.emitted} event(s)",
            file=sys.stderr,
        )
        if args.state_db is not None:
            print(f"state db: {db}", file=sys.stderr)
        code = 0
        if args.plot:
            from monitor.history.plot import plot_replay

            plot_replay(settings, store, args.plot)
            print(f"wrote chart {args.plot}", file=sys.stderr)
        if args.notify:
            dead_before = store.outbox_counts()["dead"]
            code = bootstrap.deliver_now(settings, store, log_level=args.log_level)
            if store.outbox_counts()["dead"] > dead_before:
                code = 1  # something could not be delivered, ever: say so
    finally:
        spool.close()
        store.close()
    return code


def spooler(spool: IO[str], as_json: bool) -> Callable[[list[Event]], None]:
    """Writes events to ``spool`` as they are printed: JSON lines or the table's rows."""

    def emit(events: list[Event]) -> None:
        if as_json:
            spool.writelines(payload_text(e) + "\n" for e in events)
        else:
            spool.writelines(present.event_line(e) + "\n" for e in events)

    return emit


def checked(
    rows: Iterable[Observation | TapeBlock],
    settings: Settings,
    held: Counter[str],
    args: argparse.Namespace,
    last_prices: Mapping[str, Decimal] | None = None,
) -> Iterable[Observation | TapeBlock]:
    """The tape's rows through the live quote-quality checks, unless switched off; a resumed
    db's last prices are the reference of the first rows."""
    if args.no_quality_checks:
        return rows
    jumps = {s.symbol: s.max_jump for s in settings.symbols}
    return quality_filtered(rows, jumps, held, last_prices)
