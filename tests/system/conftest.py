"""The booted container fixture of tests/system (machinery in container.py), and a summary
of its checks at the end of the run, so CI's log names every check and its outcome."""

from __future__ import annotations

import pytest
from system.container import container

__all__ = ["container"]

_CHECKS: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/system/" not in report.nodeid.replace("\\", "/"):
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        name = report.nodeid.rsplit("::", 1)[-1].removeprefix("test_").replace("_", " ")
        _CHECKS.append((report.outcome.upper(), name))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _CHECKS:
        return
    terminalreporter.section("systemd checks (a real systemd PID 1 in systemd-nspawn)")
    for outcome, name in _CHECKS:
        terminalreporter.write_line(f"{outcome:7} {name}")
