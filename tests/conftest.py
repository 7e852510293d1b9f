"""Shared fixtures: paths to the repo, the real reference data, and CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Real reference data, copied verbatim into the repo (provenance: tests/fixtures/data/README.md),
# so that the suite runs on a fresh clone with nothing beside it.
FIXTURE_DATA = REPO / "tests" / "fixtures" / "data"
DEFAULT_CONFIG = REPO / "config" / "mcap-monitor.toml"
BUNDLED_TAPE = REPO / "monitor" / "data" / "xiaomi_2025-01-20_2025-03-10.csv"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("MCAP_LIVE") == "1":
        return
    skip = pytest.mark.skip(reason="live test: set MCAP_LIVE=1 to talk to the real services")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m monitor ARGS`` as a subprocess, bounded by ``timeout``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MCAP_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd or REPO,
    )
