"""``mcap-monitor store copy --from URL --to URL``: move a state to another store."""

from __future__ import annotations

import argparse
import sys

from monitor import bootstrap
from monitor.errors import ConfigError
from monitor.settings.store import StoreConfig, redact_url


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "store",
        parents=[common],
        help="copy the state to another store (SQLite to PostgreSQL)",
        description="Manage the state database.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    cp = actions.add_parser(
        "copy",
        parents=[common],
        help="copy rule states, events, outbox and observations into an empty store",
        description="Copy a whole state (rule states, resume points, events, outbox with each "
        "row's delivery status, observations) into an empty store, in one transaction, and "
        "compare the counts. Nothing delivered before is sent again. Stop the daemon first.",
    )
    cp.add_argument("--from", dest="source", required=True, metavar="URL", help="sqlite:///...")
    cp.add_argument("--to", dest="target", required=True, metavar="URL", help="postgresql://...")
    cp.set_defaults(func=copy_cmd)


def _url(value: str, flag: str) -> StoreConfig:
    try:
        return StoreConfig.model_validate({"url": value})
    except ValueError:
        raise ConfigError(
            f"not a store url: {redact_url(value)[:80]!r}",
            flag,
            "use sqlite:///absolute/path.db or postgresql://user@host/db",
        ) from None


def copy_cmd(args: argparse.Namespace) -> int:
    source = _url(args.source, "--from")
    target = _url(args.target, "--to")
    src = bootstrap.store_at(source, read_only=True)
    try:
        dst = bootstrap.store_at(target)
        try:
            from monitor.store.copy import copy_state

            copied = copy_state(src, dst)
        finally:
            dst.close()
    finally:
        src.close()
    print(f"copied from {src.where} to {dst.where}:", file=sys.stderr)
    for table, n in copied.items():
        print(f"  {table}: {n} rows (counts verified)")
    return 0


__all__ = ["copy_cmd", "register"]
