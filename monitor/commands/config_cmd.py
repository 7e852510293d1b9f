"""``mcap-monitor config show|validate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monitor import bootstrap
from monitor.errors import ConfigError
from monitor.settings import (
    Settings,
    SinkConfig,
    load_settings,
    read_toml,
    resolve_config_path,
)


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
    finds the list too short) is a consequence, not a second mistake: left out. A cross-check
    reports all its problems in one error, one a line: each is listed with its own position.
    Sinks whose table validates are built too, so their URL and secret errors join the list.
    """
    from pydantic import ValidationError

    from monitor.settings.loading import _loc, _where

    path = resolve_config_path(config)
    data = read_toml(path)
    out: list[tuple[str, str]] = []
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        locs = [tuple(err.get("loc", ())) for err in errors]
        for err, loc in zip(errors, locs, strict=True):
            if any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs):
                continue
            msgs = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            for msg in msgs.split("\n"):
                if err.get("type") == "extra_forbidden":
                    msg = "unknown key"
                key = _loc(loc)
                out.append((f"{key + ': ' if key else ''}{msg}", _where(path, loc, msg)))
        raw = data.get("sinks")
        configs = [_valid_sink(item) for item in raw] if isinstance(raw, list) else []
    else:
        configs = list(settings.sinks)
    out += sink_errors([c for c in configs if c is not None])
    return out


def _valid_sink(item: object) -> SinkConfig | None:
    from pydantic import ValidationError

    try:
        return SinkConfig.model_validate(item)
    except ValidationError:
        return None  # its errors are listed already


def sink_errors(configs: list[SinkConfig]) -> list[tuple[str, str]]:
    """Build every sink on its own (URLs, secrets from env or credentials): each failure."""
    from monitor.notify.secrets import Redactor
    from monitor.notify.sinks.registry import build_sink

    out = []
    redactor = Redactor()
    for config in configs:
        try:
            build_sink(config, redactor)
        except ConfigError as exc:
            out.append((exc.what + (f" ({exc.hint})" if exc.hint else ""), exc.where))
    return out


def validate_config(args: argparse.Namespace) -> int:
    try:
        settings, path = load_settings(args.config)
    except ConfigError as exc:
        if "more error" not in exc.what and "invalid config" not in exc.what:
            raise
        errors = all_errors(args.config)
        if not errors:
            raise
        if len(errors) == 1:
            what, where = errors[0]
            raise ConfigError(f"invalid config: {what}", where, exc.hint) from None
        _raise_listed(errors)
    # build every sink too: URLs and secrets (from env or credentials) are checked now, not at
    # the first alert
    errors = sink_errors(list(settings.sinks))
    if len(errors) == 1:
        what, where = errors[0]
        raise ConfigError(what, where)
    if errors:
        _raise_listed(errors)
    if not settings.rules:
        print(f"warning: {path}: no [[rules]]: nothing will ever alert", file=sys.stderr)
    if not settings.sinks:
        print(f"warning: {path}: no [[sinks]]: alerts go nowhere", file=sys.stderr)
    print(
        f"{path}: OK ({len(settings.symbols)} symbol(s), {len(settings.rules)} rule(s), "
        f"{len(settings.sinks)} sink(s))"
    )
    return 0


def _raise_listed(errors: list[tuple[str, str]]) -> None:
    listed = "; ".join(f"{what} ({where})" if where else what for what, where in errors)
    raise ConfigError(f"invalid config: {len(errors)} errors: {listed}", "", "fix them")
