"""``mcap-monitor outbox [retry|flush]`` and ``mcap-monitor test-alert``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from monitor import bootstrap
from monitor.errors import ConfigError
from monitor.store import OutboxRow

STATUSES = ("open", "pending", "failed", "held", "dead", "delivered", "all")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "outbox",
        parents=[common],
        help="list, re-queue or flush alert deliveries",
        description="Without an action: list deliveries that are not yet delivered "
        "(pending, failed, held for quiet hours, dead) with their last error.",
    )
    p.add_argument("--state-db", type=Path, help="state database (default: the daemon's)")
    p.add_argument(
        "--status", choices=STATUSES, default="open", help="which rows to list (default: open)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per row")
    p.set_defaults(func=list_outbox)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    retry = actions.add_parser(
        "retry", parents=[common], help="re-queue dead (or waiting) deliveries to send now"
    )
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="outbox row ids")
    retry.add_argument("--all", action="store_true", help="re-queue every dead delivery")
    retry.add_argument(
        "--state-db",
        type=Path,
        default=argparse.SUPPRESS,
        help="state database (default: the daemon's)",
    )
    retry.set_defaults(func=retry_outbox)
    flush = actions.add_parser(
        "flush",
        parents=[common],
        help="deliver what is pending now and exit (0 when nothing is left pending, else 1)",
    )
    flush.add_argument(
        "--state-db",
        type=Path,
        default=argparse.SUPPRESS,
        help="state database (default: the daemon's)",
    )
    flush.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="keep retrying transient failures for up to this long "
        "(default: $MCAP_NOTIFY_WAIT, else 30)",
    )
    flush.set_defaults(func=flush_outbox)

    t = sub.add_parser(
        "test-alert",
        parents=[common],
        help="send a marked test message to each sink and report the result",
        description="Send one test message, marked as a test, to each configured sink (or "
        "the --sink ones) through the same code as real alerts, once, and print each sink's "
        "answer; exit 0 when every sink delivered, else 1.",
    )
    t.add_argument(
        "--sink", action="append", metavar="ID", help="only this sink (repeatable; default all)"
    )
    t.set_defaults(func=test_alert)


def _status(row: OutboxRow, now: float) -> str:
    if row.status != "pending":
        return row.status
    if row.last_error:
        return "failed"
    if row.next_attempt_at > now and row.attempts == 0:
        return "held"
    return "pending"


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def list_outbox(args: argparse.Namespace) -> int:
    settings = bootstrap.settings_from(args.config)
    store = bootstrap.open_store(settings, args.state_db, read_only=True)
    print(f"state db: {store.where}", file=sys.stderr)
    now = bootstrap.clock().now().timestamp()
    try:
        rows = store.outbox_list()
    finally:
        store.close()
    wanted = args.status
    shown = []
    for row in rows:
        status = _status(row, now)
        if wanted == "all" or status == wanted or (wanted == "open" and status != "delivered"):
            shown.append((row, status))
    if args.json:
        for row, status in shown:
            print(
                json.dumps(
                    {
                        "id": row.id,
                        "status": status,
                        "sink": row.sink_id,
                        "kind": row.kind,
                        "message_id": row.message_id,
                        "attempts": row.attempts,
                        "created_at": row.created_at,
                        "next_attempt_at": row.next_attempt_at,
                        "delivered_at": row.delivered_at,
                        "last_error": row.last_error,
                    }
                )
            )
        return 0
    if not shown:
        if wanted == "open":
            counts = {"delivered": 0, "dead": 0}
            for _, status in ((r, _status(r, now)) for r in rows):
                counts[status] = counts.get(status, 0) + 1
            print(
                f"nothing waiting: {counts['delivered']} delivered, {counts['dead']} dead "
                "(--status all lists every delivery)"
            )
        else:
            print(f"no {'' if wanted == 'all' else wanted + ' '}deliveries in the outbox")
        return 0
    print(
        f"{'id':>6}  {'status':<9} {'sink':<12} {'kind':<14} {'tries':>5}  "
        f"{'next / delivered (UTC)':<20}  message / last error"
    )
    for row, status in shown:
        when = row.delivered_at if status == "delivered" else row.next_attempt_at
        tail = row.message_id + (f"  {row.last_error}" if row.last_error else "")
        print(
            f"{row.id:>6}  {status:<9} {row.sink_id:<12} {row.kind:<14} {row.attempts:>5}  "
            f"{_when(when) if status != 'dead' else '-':<20}  {tail}"
        )
    return 0


def retry_outbox(args: argparse.Namespace) -> int:
    if not args.ids and not args.all:
        raise ConfigError(
            "nothing to re-queue",
            "outbox retry",
            "give row ids (see `mcap-monitor outbox`) or --all",
        )
    settings = bootstrap.settings_from(args.config)
    store = bootstrap.open_store(settings, args.state_db, existing=True)
    print(f"state db: {store.where}", file=sys.stderr)
    now = bootstrap.clock().now().timestamp()
    try:
        with store.transaction():
            count = store.requeue(None if args.all else args.ids, now)
    finally:
        store.close()
    print(f"re-queued {count} deliver{'y' if count == 1 else 'ies'}")
    if args.ids and count < len(args.ids):
        print(
            "note: some ids were not found or were already delivered (never sent twice)",
            file=sys.stderr,
        )
        return 1
    return 0


def flush_outbox(args: argparse.Namespace) -> int:
    settings = bootstrap.settings_from(args.config)
    store = bootstrap.open_store(settings, args.state_db, existing=True)
    print(f"state db: {store.where}", file=sys.stderr)
    try:
        return bootstrap.deliver_now(settings, store, wait=args.wait, log_level=args.log_level)
    finally:
        store.close()


def test_alert(args: argparse.Namespace) -> int:
    from monitor.daemon.logs import ensure_cli_logging

    ensure_cli_logging(args.log_level)
    settings = bootstrap.settings_from(args.config)
    results = bootstrap.test_alerts(settings, args.sink)
    width = max(len(r.sink_id) for r in results) if results else 0
    for result in results:
        if result.delivered:
            print(f"{result.sink_id:<{width}}  delivered ({result.detail})")
        else:
            kind = "permanent" if result.permanent else "transient"
            print(f"{result.sink_id:<{width}}  FAILED ({kind}): {result.detail}")
    return 0 if results and all(r.delivered for r in results) else 1
