"""Command-line entry point: parses arguments and dispatches; the work lives elsewhere."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from monitor import __version__
from monitor.commands import (
    backtest_cmd,
    check,
    completion_cmd,
    config_cmd,
    outbox_cmd,
    replay,
    run_cmd,
    status_cmd,
    store_cmd,
    tape_cmd,
)
from monitor.errors import MonitorError

# Each module registers its sub-commands with ``register(subparsers)`` and sets ``func``.
COMMAND_MODULES = (
    replay,
    status_cmd,
    config_cmd,
    tape_cmd,
    outbox_cmd,
    run_cmd,
    backtest_cmd,
    check,
    store_cmd,
    completion_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="config file (default: $MCAP_CONFIG, else config/mcap-monitor.toml)",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks on errors",
    )
    common.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        choices=["debug", "info", "warning", "error"],
        help="log verbosity (default: info)",
    )
    parser = argparse.ArgumentParser(
        prog="mcap-monitor",
        description="Watch market capitalisations and alert when they cross milestones.",
        parents=[common],
    )
    parser.add_argument("-V", "--version", action="version", version=f"mcap-monitor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code (0 ok, 1 runtime failure, 2 usage/input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, default in (("config", None), ("debug", False), ("log_level", "info")):
        if not hasattr(args, name):
            setattr(args, name, default)
    try:
        code: int = args.func(args)
        return code
    except MonitorError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"Error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except ArithmeticError as exc:  # decimal or date overflow: a value out of every sane range
        if args.debug:
            traceback.print_exc()
        print(
            f"Error: a number or date is out of range ({type(exc).__name__}): check the values "
            "of the input (tape, config, --since); --debug shows where",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
        if args.debug:
            traceback.print_exc()
        print(
            f"Error: unexpected {type(exc).__name__}: {exc}: run again with --debug and report it",
            file=sys.stderr,
        )
        return 1
