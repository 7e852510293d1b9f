"""``mcap-monitor config show|validate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monitor import bootstrap
from monitor.errors import ConfigError
from monitor.settings import Settings, load_settings, read_toml, resolve_config_path


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "config",
        parents=[common],
        help="show or validate the configuration",
        description="The configuration is TOML (--config, else $MCAP_CONFIG, else "
        "config/mcap-monitor.toml, else the shipped default) with MCAP_* environment "
        "overrides.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show",
        parents=[common],
        help="print the effective configuration, secrets redacted",
        description="Print the effective configuration as JSON, secrets redacted, with the "
        "state database path the daemon would use.",
    )
    show.set_defaults(func=show_config)
    check = actions.add_parser(
        "validate",
        parents=[common],
        help="validate and exit 0 or 2",
        description="Validate the configuration and build every sink; list every error and "
        "exit 2, else print a summary and exit 0 (with warnings, e.g. no rules, on stderr).",
    )
    check.set_defaults(func=validate_config)


def show_config(args: argparse.Namespace) -> int:
    settings, path = load_settings(args.config)
    # SecretStr fields dump as "**********": URLs, signing keys and headers stay hidden.
    data = settings.model_dump(mode="json")
    if data.get("state_db") is None:
        data["state_db"] = str(bootstrap.state_db_path(settings, None))
    print(f"# effective configuration from {path} and MCAP_* environment variables")
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return 0


def all_errors(config: Path | None) -> list[tuple[str, str]]:
    """Every validation error of the config as ``(what, where)``, ``[]`` when it validates.

    An error about a list whose item is itself in error (pydantic drops the bad item, then
    finds the list too short) is a consequence, not a second mistake: left out.
    """
    from pydantic import ValidationError

    from monitor.settings.loading import _loc, _where

    path = resolve_config_path(config)
    try:
        Settings(**read_toml(path))
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        locs = [tuple(err.get("loc", ())) for err in errors]
        out = []
        for err, loc in zip(errors, locs, strict=True):
            if any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs):
                continue
            msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden":
                msg = "unknown key"
            key = _loc(loc)
            out.append((f"{key + ': ' if key else ''}{msg}", _where(path, loc, msg)))
        return out
    return []


def validate_config(args: argparse.Namespace) -> int:
    try:
        settings, path = load_settings(args.config)
    except ConfigError as exc:
        if "more error" not in exc.what:
            raise
        errors = all_errors(args.config)
        if not errors:
            raise
        if len(errors) == 1:
            what, where = errors[0]
            raise ConfigError(f"invalid config: {what}", where, exc.hint) from None
        listed = "; ".join(f"{what} ({where})" for what, where in errors)
        raise ConfigError(
            f"invalid config: {len(errors)} errors: {listed}", "", "fix them"
        ) from None
    # build every sink too: URLs and secrets (from env or credentials) are checked now, not at
    # the first alert
    from monitor.notify.secrets import Redactor

    bootstrap.sinks(settings, Redactor())
    if not settings.rules:
        print(f"warning: {path}: no [[rules]]: nothing will ever alert", file=sys.stderr)
    if not settings.sinks:
        print(f"warning: {path}: no [[sinks]]: alerts go nowhere", file=sys.stderr)
    print(
        f"{path}: OK ({len(settings.symbols)} symbol(s), {len(settings.rules)} rule(s), "
        f"{len(settings.sinks)} sink(s))"
    )
    return 0
