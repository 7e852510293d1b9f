"""``mcap-monitor config show|validate``."""

from __future__ import annotations

import argparse
import json

from monitor import bootstrap
from monitor.settings import load_settings


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser("config", parents=[common], help="show or validate the configuration")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show", parents=[common], help="print the effective configuration, secrets redacted"
    )
    show.set_defaults(func=show_config)
    check = actions.add_parser("validate", parents=[common], help="validate and exit 0 or 2")
    check.set_defaults(func=validate_config)


def show_config(args: argparse.Namespace) -> int:
    settings, path = load_settings(args.config)
    # SecretStr fields dump as "**********": URLs, signing keys and headers stay hidden.
    data = settings.model_dump(mode="json")
    print(f"# effective configuration from {path} and MCAP_* environment variables")
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return 0


def validate_config(args: argparse.Namespace) -> int:
    settings, path = load_settings(args.config)
    # build every sink too: URLs and secrets (from env or credentials) are checked now, not at
    # the first alert
    from monitor.notify.secrets import Redactor

    bootstrap.sinks(settings, Redactor())
    print(
        f"{path}: OK ({len(settings.symbols)} symbol(s), {len(settings.rules)} rule(s), "
        f"{len(settings.sinks)} sink(s))"
    )
    return 0
