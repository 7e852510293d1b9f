"""The status page in a real browser: Debian's Chromium, headless, driven by Playwright.

A tape-mode daemon runs the bundled tape; the page must show what a person would check:
each rule, its state, its threshold, every touch and crossing as a mark on its chart, no
console errors, a refresh without reloading, and a stale warning once the daemon is gone.
The screenshot goes to ``$MCAP_SCREENSHOT_DIR`` (else the test's tmp dir).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from e2e.daemon_support import running, webhook_receiver, write_config
from fakes import Receiver, wait_until
from needs import missing

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MARKED = ("touched_above", "crossed_above", "crossed_below")
THRESHOLD_LABELS = {"hkd-1t": "HK$1T", "cny-1t": "CN¥1T"}  # the config's lines, as shown


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = webhook_receiver()
    yield hook
    hook.close()


@pytest.fixture
def chromium() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:
        missing("chromium", f"{CHROMIUM} not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("chromium", "the playwright package is not installed (pip install -e .[dev])")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_path(tmp_path: Path) -> Path:
    where = Path(os.environ.get("MCAP_SCREENSHOT_DIR") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where / "status-page.png"


def cli_json(config: Path, *args: str) -> Any:
    done = run_cli("--config", str(config), *args, "--json", cwd=config.parent)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.timeout(240)
def test_the_status_page_shows_rules_thresholds_and_every_event_in_chromium(
    tmp_path: Path, receiver: Receiver, chromium: Any
) -> None:
    config = write_config(
        tmp_path / "cfg.toml", state_dir=tmp_path / "state", webhook_url=receiver.url
    )
    with running(config, tmp_path / "daemon.log", None) as daemon:
        url = daemon.health_url()
        assert wait_until(lambda: daemon.logged("tape_exhausted"), 60), daemon.log_path.read_text()
        events = [json.loads(line) for line in cli_json(config, "events").splitlines()]
        states = {r["rule"]: r["state"] for r in json.loads(cli_json(config, "status"))["rules"]}
        marked = Counter((e["rule"], e["kind"]) for e in events if e["kind"] in MARKED)
        assert sum(marked.values()) >= 5  # the tape crosses both lines

        page = chromium.new_page(viewport={"width": 1000, "height": 900})
        page.set_default_timeout(30_000)
        problems: list[str] = []
        page.on(
            "console",
            lambda m: (
                problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None
            ),
        )
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(url + "/")
        page.wait_for_selector("svg.chart")
        assert page.locator("svg.chart").count() == len(states)

        for rule, state in states.items():
            card = page.locator(f'section.rule[data-rule="{rule}"]')
            assert card.locator(".rule-id").inner_text() == rule
            assert card.locator(".state").inner_text() == state
            assert card.locator(".thr-label").text_content() == THRESHOLD_LABELS[rule]
            assert card.locator(".needs").is_visible()
            for kind in MARKED:
                shown = card.locator(f"svg .mark.{kind}").count()
                assert shown == marked[(rule, kind)], (rule, kind)
        assert "crossed above" in page.locator("#events").inner_text()

        # it refreshes from /api/status, in place: the page is never reloaded
        page.evaluate("window.__kept = 42")
        before = page.locator("#updated").inner_text()
        page.wait_for_function(
            "t => document.getElementById('updated').textContent !== t", arg=before
        )
        assert page.evaluate("window.__kept") == 42
        assert page.locator("#stale").is_hidden()
        page.screenshot(path=str(screenshot_path(tmp_path)), full_page=True)
        assert problems == [] and failed == [], (problems, failed)

        code, _ = daemon.stop()
        assert code == 0
    # the daemon is gone: after three missed refreshes the page says its data is stale
    page.wait_for_selector("#stale", state="visible", timeout=60_000)
    page.close()
    # the only complaints since: the refreshes the stopped daemon refused
    assert all("ERR_CONNECTION_REFUSED" in p for p in problems), problems
    assert all("/api/status" in u for u in failed), failed
