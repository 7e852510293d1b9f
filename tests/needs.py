"""Tests that need a piece of the machine (root, a PostgreSQL server, Chromium, systemd-nspawn)
skip with a clear reason where it is missing, so a developer laptop still runs the rest.

On CI they must run: ``.ci/run`` sets ``MCAP_REQUIRE`` (comma-separated, e.g.
``postgres,chromium,systemd``) and a missing piece named there fails the test instead.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def required(component: str) -> bool:
    """True when CI said ``component`` must be there (``MCAP_REQUIRE``)."""
    wanted = {c.strip() for c in os.environ.get("MCAP_REQUIRE", "").split(",") if c.strip()}
    return component in wanted or "all" in wanted


def missing(component: str, why: str) -> NoReturn:
    """Skip (or, where ``MCAP_REQUIRE`` names ``component``, fail) because of ``why``."""
    if required(component):
        pytest.fail(f"{component} is required here (MCAP_REQUIRE) but cannot run: {why}")
    pytest.skip(f"{component}: {why}")
