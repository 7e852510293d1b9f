"""``mcap-monitor replay``: feed a recorded tape through the engine and print the events."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monitor import bootstrap, present
from monitor.core.events import Event, event_to_dict
from monitor.service import Engine, describe_skips
from monitor.sources.tape import TapeReader
from monitor.store import Store


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
    p.add_argument("--plot", type=Path, help="also draw a chart to this PNG file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = bootstrap.settings_from(args.config)
    tape_path: Path = args.tape or bootstrap.BUNDLED_TAPE
    if args.plot:
        from monitor.history.plot import require_matplotlib

        require_matplotlib()
    store = Store.open(args.state_db)
    try:
        engine = Engine(
            settings,
            store,
            record_observations=args.state_db is not None or args.plot is not None,
            # replayed history becomes alerts only when asked to, one message per event
            notify=args.notify,
            baseline_summary=False,
        )
        reader = TapeReader(tape_path, symbols={s.symbol for s in settings.symbols})
        result = engine.process(reader, bootstrap.clock().now().timestamp())
        if not args.json and result.events:
            print(present.EVENT_HEADER)
        for event in result.events:
            if args.json:
                print(json.dumps(event_json(event)))
            else:
                print(present.event_line(event))
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
            f"{len(result.events)} event(s)",
            file=sys.stderr,
        )
        code = 0
        if args.plot:
            from monitor.history.plot import plot_replay

            plot_replay(settings, store, args.plot)
        if args.notify:
            dead_before = store.outbox_counts()["dead"]
            code = bootstrap.deliver_now(settings, store)
            if store.outbox_counts()["dead"] > dead_before:
                code = 1  # something could not be delivered, ever: say so
    finally:
        store.close()
    return code


def event_json(event: Event) -> dict[str, object]:
    """The ``--json`` form: every field of the event, money as exact decimal strings."""
    return event_to_dict(event)
